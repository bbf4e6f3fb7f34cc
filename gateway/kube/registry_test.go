package kube_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wasmbedv1alpha1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/gateway"
	"github.com/wasmbed/wasmbed/gateway/kube"
	"github.com/wasmbed/wasmbed/internal/devicesim"
	"github.com/wasmbed/wasmbed/internal/pki"
	"github.com/wasmbed/wasmbed/internal/testenv"
)

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

// TestKubeRegistry runs a gateway against a real apiserver: only devices with a Device
// object connect, and disabling or deleting the Device closes the live session.
func TestKubeRegistry(t *testing.T) {
	env := testenv.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, name := range []string{"kdev-0", "kdev-1"} {
		d := &wasmbedv1alpha1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec: wasmbedv1alpha1.DeviceSpec{Board: "virtual"}}
		if err := env.Client.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	reg, err := kube.New(env.Config, kube.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.NewCA("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, _ := ca.IssueServer([]string{"localhost"}, nil, 0)
	cert, _ := tls.X509KeyPair(certPEM, keyPEM)
	srv, err := gateway.New(gateway.NewConfig(ca.Pool(), cert).WithRegistry(reg).WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Shutdown(context.Background())

	fleet, err := devicesim.NewFleet(ctx, devicesim.Config{Gateway: l.Addr().String(), ServerName: "localhost", CA: ca,
		Namespace: "default", NamePrefix: "kdev-", Count: 3, NoRun: true, MinBackoff: 50 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	go fleet.Run(ctx)
	devs := fleet.Devices()
	eventually(t, 30*time.Second, func() bool { return devs[0].Connected() && devs[1].Connected() }, "kdev-0 and kdev-1 connected")
	if devs[2].Connected() {
		t.Fatal("kdev-2 has no Device but connected")
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
	if err := env.Client.Create(ctx, &wasmbedv1alpha1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kdev-2"},
		Spec: wasmbedv1alpha1.DeviceSpec{Board: "virtual"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, devs[2].Connected, "kdev-2 connected once its Device exists")
}
