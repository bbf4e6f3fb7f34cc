package manager

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wasmbed/wasmbed/gateway"
	"github.com/wasmbed/wasmbed/internal/pki"
)

var (
	testCAOnce sync.Once
	testCAVal  *pki.CA
)

func testCA(t testing.TB) *pki.CA {
	testCAOnce.Do(func() {
		ca, err := pki.NewCA("board manager test ca", time.Hour)
		if err != nil {
			panic(err)
		}
		testCAVal = ca
	})
	return testCAVal
}

// testGateway is a real gateway with real TLS on a loopback port that can be stopped
// and started again on the same address.
type testGateway struct {
	t    *testing.T
	cfg  gateway.Config
	addr string
	srv  *gateway.Server
	logs *syncBuffer
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newTestGateway(t *testing.T) *testGateway {
	t.Helper()
	ca := testCA(t)
	certPEM, keyPEM, err := ca.IssueServer([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	g := &testGateway{t: t, logs: &syncBuffer{}, addr: "127.0.0.1:0"}
	g.cfg = gateway.NewConfig(ca.Pool(), cert).WithName("wasmbed-system/gw-test").
		WithHeartbeat(time.Second, 5*time.Second).WithRegisterer(prometheus.NewRegistry()).
		WithLogger(slog.New(slog.NewTextHandler(g.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	g.start()
	t.Cleanup(g.stop)
	return g
}

func (g *testGateway) start() {
	g.t.Helper()
	srv, err := gateway.New(g.cfg.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		g.t.Fatal(err)
	}
	var l net.Listener
	for i := 0; ; i++ { // the same port again after a restart
		if l, err = net.Listen("tcp", g.addr); err == nil || i == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		g.t.Fatal(err)
	}
	g.addr, g.srv = l.Addr().String(), srv
	go srv.Serve(l)
}

func (g *testGateway) stop() {
	if g.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.srv.Shutdown(ctx); err != nil {
		g.t.Errorf("gateway shutdown: %v", err)
	}
	g.srv = nil
}

func (g *testGateway) connected(id pki.Identity) bool {
	return g.srv != nil && g.srv.Connected(id)
}

// testCredentials returns credentials for id holding a certificate the test CA signed
// for their key, as the operator signs an approved request: for tests of the bridge
// and the emulator, which do not enroll.
func testCredentials(t testing.TB, id pki.Identity) *Credentials {
	t.Helper()
	creds, err := NewCredentials(id)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(creds.key, id)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := pki.NewSigner(testCA(t), pki.AllowAll).Sign(context.Background(), csr, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := creds.use(certPEM, testCA(t).Pool()); err != nil {
		t.Fatal(err)
	}
	return creds
}

// deviceTLS returns a source of the client configuration of a device with a
// certificate from the test CA.
func deviceTLS(t testing.TB, id pki.Identity) func() (*tls.Config, error) {
	t.Helper()
	cert := testCredentials(t, id).Certificate()
	tc, err := pki.ClientTLSConfig(testCA(t).Pool(), *cert, "localhost", pki.TLSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return func() (*tls.Config, error) { return tc, nil }
}

func eventually(t *testing.T, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: "+format, append([]any{timeout}, args...)...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type bridgeRig struct {
	gw      *testGateway
	board   *fakeBoard
	bridge  *Bridge
	id      pki.Identity
	metrics *Metrics
	reg     *prometheus.Registry
	logs    *syncBuffer
}

func newBridgeRig(t *testing.T) *bridgeRig {
	t.Helper()
	gw := newTestGateway(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fb := startFakeBoard(l, 100*time.Millisecond)
	t.Cleanup(fb.close)
	id := pki.Identity{Namespace: "default", Name: "board-1"}
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	br, err := NewBridge(BridgeConfig{UART: l.Addr().String(), Gateway: gw.addr, TLS: deviceTLS(t, id), Identity: id,
		Board: "stm32f4-discovery", UARTRetry: 20 * time.Millisecond, MinBackoff: 20 * time.Millisecond,
		MaxBackoff: 200 * time.Millisecond, DialTimeout: 2 * time.Second, Metrics: m,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		br.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("bridge did not stop")
		}
		if t.Failed() {
			fmt.Fprintf(os.Stderr, "--- bridge logs:\n%s\n--- gateway logs:\n%s\n", logs, gw.logs)
		}
	})
	r := &bridgeRig{gw: gw, board: fb, bridge: br, id: id, metrics: m, reg: reg, logs: logs}
	r.waitConnected(t, 1)
	return r
}

// waitConnected waits for the n-th welcomed session, seen by the gateway with the
// certificate's identity.
func (r *bridgeRig) waitConnected(t *testing.T, n int) {
	t.Helper()
	eventually(t, 10*time.Second, func() bool {
		return r.bridge.Sessions() >= n && r.bridge.Connected() && r.gw.connected(r.id) && r.board.welcomes.Load() >= int64(n)
	}, "session %d: bridge sessions %d connected %v, gateway connected %v, board welcomes %d", n,
		r.bridge.Sessions(), r.bridge.Connected(), r.gw.connected(r.id), r.board.welcomes.Load())
}

func TestBridgeConnectsWithDeviceIdentity(t *testing.T) {
	r := newBridgeRig(t)
	// The board claimed a placeholder; the gateway saw the certificate's identity.
	if devs := r.gw.srv.Devices(); len(devs) != 1 || devs[0].String() != "default/board-1" {
		t.Fatalf("gateway devices = %v, want [default/board-1]", devs)
	}
	// Heartbeats flow both ways, frame by frame.
	eventually(t, 5*time.Second, func() bool {
		return testutil.ToFloat64(r.metrics.frames.WithLabelValues(ToGateway)) >= 4 &&
			testutil.ToFloat64(r.metrics.frames.WithLabelValues(ToBoard)) >= 4
	}, "frames to gateway %v, to board %v", testutil.ToFloat64(r.metrics.frames.WithLabelValues(ToGateway)),
		testutil.ToFloat64(r.metrics.frames.WithLabelValues(ToBoard)))
	if got := testutil.ToFloat64(r.metrics.sessions.WithLabelValues("welcomed")); got != 1 {
		t.Errorf("welcomed sessions metric = %v, want 1", got)
	}
	if r.bridge.FramingErrors() != 0 || r.bridge.UARTConnections() != 1 {
		t.Errorf("framing errors %d, uart connections %d; want 0 and 1", r.bridge.FramingErrors(), r.bridge.UARTConnections())
	}
}

func TestBridgeRecoversFromFramingErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		garbage []byte
	}{
		{"garbage byte", []byte{0xff}},
		{"wrong version", []byte{0x02, 0x00, 0x05, 0xa1, 0x00, 0x03, 0x00, 0x00}},
		{"oversized frame", []byte{0x01, 0xff, 0xff, 0xa1, 0x00}},
		{"empty frame", []byte{0x01, 0x00, 0x00}},
		{"hello lookalike", []byte{0x07, 0x01, 0x00, 0x10, 0xa6, 0x00, 0x01, 0x55}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newBridgeRig(t)
			if err := r.board.inject(tc.garbage); err != nil {
				t.Fatal(err)
			}
			// The gateway session closes, the board is told going_away, sends a new
			// Hello, and the bridge resynchronises on it.
			r.waitConnected(t, 2)
			if r.bridge.FramingErrors() != 1 {
				t.Errorf("framing errors = %d, want 1", r.bridge.FramingErrors())
			}
			if r.board.goingAways.Load() < 1 {
				t.Errorf("board got no going_away")
			}
			if r.bridge.UARTConnections() != 1 {
				t.Errorf("uart connections = %d, want 1: a framing error must not drop the uart link", r.bridge.UARTConnections())
			}
			if got := testutil.ToFloat64(r.metrics.frameErrors.WithLabelValues("stm32f4-discovery")); got != 1 {
				t.Errorf("framing error metric = %v, want 1", got)
			}
		})
	}
}

func TestBridgeReconnectsAfterGatewayRestart(t *testing.T) {
	r := newBridgeRig(t)
	r.gw.stop()
	eventually(t, 5*time.Second, func() bool { return !r.bridge.Connected() }, "bridge still connected after gateway shutdown")
	// The board keeps sending Hellos the bridge cannot deliver yet.
	time.Sleep(300 * time.Millisecond)
	r.gw.start()
	r.waitConnected(t, 2)
	if r.bridge.UARTConnections() != 1 {
		t.Errorf("uart connections = %d, want 1", r.bridge.UARTConnections())
	}
	if got := testutil.ToFloat64(r.metrics.sessions.WithLabelValues("failed")); got < 1 {
		t.Errorf("failed sessions metric = %v, want at least 1 while the gateway was down", got)
	}
}

func TestBridgeReconnectsUART(t *testing.T) {
	r := newBridgeRig(t)
	r.board.dropConn() // the emulator's socket closed, e.g. it restarted
	r.waitConnected(t, 2)
	if r.bridge.UARTConnections() != 2 {
		t.Errorf("uart connections = %d, want 2", r.bridge.UARTConnections())
	}
}

func TestNewBridgeErrors(t *testing.T) {
	id := pki.Identity{Namespace: "default", Name: "b"}
	tc := deviceTLS(t, id)
	for _, c := range []struct {
		name string
		cfg  BridgeConfig
	}{
		{"no uart", BridgeConfig{Gateway: "x:1", TLS: tc, Identity: id}},
		{"no gateway", BridgeConfig{UART: "x:1", TLS: tc, Identity: id}},
		{"no tls", BridgeConfig{UART: "x:1", Gateway: "x:1", Identity: id}},
		{"bad identity", BridgeConfig{UART: "x:1", Gateway: "x:1", TLS: tc, Identity: pki.Identity{Namespace: "A", Name: "b"}}},
	} {
		if _, err := NewBridge(c.cfg); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
}
