package kube_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	wasmbedv1alpha1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/gateway"
	"github.com/wasmbed/wasmbed/gateway/kube"
	"github.com/wasmbed/wasmbed/internal/devicesim"
	"github.com/wasmbed/wasmbed/internal/pki"
	"github.com/wasmbed/wasmbed/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

func eventually(t *testing.T, d time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logBuffer is a log destination safe for concurrent writes.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// has reports whether a line contains every substring.
func (b *logBuffer) has(substrings ...string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, line := range strings.Split(b.buf.String(), "\n") {
		ok := true
		for _, s := range substrings {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			return true
		}
	}
	return false
}

// testGateway is a gateway with the Kubernetes registry reading Devices with cfg.
type testGateway struct {
	srv  *gateway.Server
	addr string
	ca   *pki.CA
	reg  *prometheus.Registry
	logs *logBuffer
}

func startGateway(t *testing.T, cfg *rest.Config) *testGateway {
	t.Helper()
	reg, err := kube.New(cfg, kube.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.NewCA("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, _ := ca.IssueServer([]string{"localhost"}, nil, 0)
	cert, _ := tls.X509KeyPair(certPEM, keyPEM)
	g := &testGateway{ca: ca, reg: prometheus.NewRegistry(), logs: &logBuffer{}}
	g.srv, err = gateway.New(gateway.NewConfig(ca.Pool(), cert).WithRegistry(reg).WithRegistryTimeout(2 * time.Second).
		WithRegisterer(g.reg).WithLogger(slog.New(slog.NewTextHandler(g.logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.addr = l.Addr().String()
	go g.srv.Serve(l)
	t.Cleanup(func() { _ = g.srv.Shutdown(context.Background()) })
	return g
}

// fleet runs count devices default/<prefix><i> until the test ends.
func (g *testGateway) fleet(t *testing.T, prefix string, count int) []*devicesim.Device {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	fleet, err := devicesim.NewFleet(ctx, devicesim.Config{Gateway: g.addr, ServerName: "localhost", CA: g.ca,
		Namespace: "default", NamePrefix: prefix, Count: count, NoRun: true, MinBackoff: 50 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		fleet.Run(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return fleet.Devices()
}

func (g *testGateway) closes(reason gateway.CloseReason) float64 {
	mfs, _ := g.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != gateway.MetricCloses {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "reason" && lp.GetValue() == string(reason) {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func createDevice(t *testing.T, name string, disabled bool) {
	t.Helper()
	d := &wasmbedv1alpha1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: wasmbedv1alpha1.DeviceSpec{Board: "virtual", Disabled: disabled}}
	if err := env.Client.Create(context.Background(), d); err != nil {
		t.Fatal(err)
	}
}

// TestKubeRegistry runs a gateway against a real apiserver: only devices with a Device
// object that is not disabled connect, and disabling or deleting the Device closes the
// live session and refuses the device from then on.
func TestKubeRegistry(t *testing.T) {
	ctx := context.Background()
	createDevice(t, "kdev-0", false)
	createDevice(t, "kdev-1", false)
	createDevice(t, "kdev-3", true)
	g := startGateway(t, env.Config)
	devs := g.fleet(t, "kdev-", 4)
	srv := g.srv
	eventually(t, 30*time.Second, func() bool { return devs[0].Connected() && devs[1].Connected() }, "kdev-0 and kdev-1 connected")
	if devs[2].Connected() {
		t.Fatal("kdev-2 has no Device but connected")
	}
	eventually(t, 10*time.Second, func() bool { return g.logs.has("connection refused", "device=default/kdev-3", "reason=not-allowed") },
		"kdev-3, created disabled, refused")
	if devs[3].Connected() {
		t.Fatal("kdev-3 is disabled but connected")
	}

	// Disable kdev-0: its live session closes and it stays out.
	var d wasmbedv1alpha1.Device
	if err := env.Client.Get(ctx, keyOf("kdev-0"), &d); err != nil {
		t.Fatal(err)
	}
	d.Spec.Disabled = true
	if err := env.Client.Update(ctx, &d); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool { return !srv.Connected(pki.Identity{Namespace: "default", Name: "kdev-0"}) }, "kdev-0 closed")
	eventually(t, 10*time.Second, func() bool { return g.logs.has("connection refused", "device=default/kdev-0", "reason=not-allowed") },
		"kdev-0 refused when it reconnects")
	if g.closes(gateway.ReasonRevoked) < 1 {
		t.Error("the disabled device's session was not closed as revoked")
	}

	// Delete kdev-1: same.
	if err := env.Client.Delete(ctx, &wasmbedv1alpha1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kdev-1"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool { return !srv.Connected(pki.Identity{Namespace: "default", Name: "kdev-1"}) }, "kdev-1 closed")
	time.Sleep(300 * time.Millisecond) // reconnect attempts are refused
	if srv.Sessions() != 0 {
		t.Fatalf("%d sessions, want 0", srv.Sessions())
	}
	// Creating the Device for kdev-2 lets it in.
	createDevice(t, "kdev-2", false)
	eventually(t, 30*time.Second, devs[2].Connected, "kdev-2 connected once its Device exists")
}

// TestKubeRegistryFailsClosed: a registry that cannot read Devices (no apiserver, or
// no permission to list them) refuses every device, counted as registry-unavailable,
// although their Devices exist and are enabled.
func TestKubeRegistryFailsClosed(t *testing.T) {
	createDevice(t, "closed-0", false)
	// An address where nothing listens.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nothing := l.Addr().String()
	l.Close()
	for _, tc := range []struct {
		name string
		cfg  func() *rest.Config
	}{
		{"apiserver unreachable", func() *rest.Config {
			c := rest.CopyConfig(env.Config)
			c.Host = "https://" + nothing
			return c
		}},
		{"forbidden to list Devices", func() *rest.Config {
			c := rest.CopyConfig(env.Config)
			c.Impersonate = rest.ImpersonationConfig{UserName: "wasmbed-test-nobody"}
			return c
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := startGateway(t, tc.cfg())
			devs := g.fleet(t, "closed-", 1)
			eventually(t, 20*time.Second, func() bool { return g.closes(gateway.ReasonRegistryUnavailable) >= 2 },
				"two refusals as registry-unavailable")
			if devs[0].Connected() || g.srv.Sessions() != 0 {
				t.Fatal("a device connected while the registry could not answer")
			}
			if !g.logs.has("connection refused", "device=default/closed-0", "reason=registry-unavailable") {
				t.Error("no log line for the refusal")
			}
		})
	}
}
