package devicesim_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/api/abi"
	"github.com/wasmbed/wasmbed/api/protocol"
	"github.com/wasmbed/wasmbed/internal/devicesim"
	"github.com/wasmbed/wasmbed/internal/pki"
	fixtures "github.com/wasmbed/wasmbed/testdata/wasm"
)

// gatewaySide is the gateway's end of one virtual device's session, driven by the test.
type gatewaySide struct {
	t    *testing.T
	r    *protocol.Reader
	w    *protocol.Writer
	msgs chan protocol.Message
	// heartbeats are the arrival times of the device's heartbeats.
	heartbeats chan time.Time
}

// oneDevice runs a fleet of one virtual device against a TLS listener of the test, and
// returns the gateway side of its session once Welcome (heartbeat every second) is sent.
func oneDevice(t *testing.T) *gatewaySide {
	t.Helper()
	ca, err := pki.NewCA("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssueServer([]string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: ca.Pool(),
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	f, err := devicesim.NewFleet(ctx, devicesim.Config{Gateway: l.Addr().String(), ServerName: "localhost", CA: ca,
		Namespace: "default", NamePrefix: "sim-", Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		f.Close(context.Background())
	})

	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	g := &gatewaySide{t: t, r: protocol.NewReader(c, protocol.DefaultMaxFrame), w: protocol.NewWriter(c, protocol.DefaultMaxFrame),
		msgs: make(chan protocol.Message, 64), heartbeats: make(chan time.Time, 64)}
	if m, err := g.r.ReadMessage(); err != nil {
		t.Fatalf("read Hello: %v", err)
	} else if _, ok := m.(*protocol.Hello); !ok {
		t.Fatalf("first frame %v, want Hello", m.Type())
	}
	g.send(&protocol.Welcome{SessionID: 1, HeartbeatInterval: 1, HeartbeatTimeout: 5,
		ServerTime: uint64(time.Now().UnixMilli()), MaxFrame: protocol.DefaultMaxFrame})
	go func() {
		defer close(g.msgs)
		for {
			m, err := g.r.ReadMessage()
			if err != nil {
				return
			}
			if hb, ok := m.(*protocol.Heartbeat); ok {
				g.heartbeats <- time.Now()
				_ = g.w.WriteMessage(&protocol.HeartbeatAck{Seq: hb.Seq, ServerTime: uint64(time.Now().UnixMilli())})
				continue
			}
			g.msgs <- m
		}
	}()
	return g
}

func (g *gatewaySide) send(m protocol.Message) {
	g.t.Helper()
	if err := g.w.WriteMessage(m); err != nil {
		g.t.Fatalf("send %v: %v", m.Type(), err)
	}
}

// status waits for the next AppStatus of app in state want, failing on anything else
// about it (Running excepted) or after 10 s.
func (g *gatewaySide) status(app string, want protocol.AppState) *protocol.AppStatus {
	g.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-g.msgs:
			if !ok {
				g.t.Fatalf("session ended waiting for %s %v", app, want)
			}
			s, isStatus := m.(*protocol.AppStatus)
			switch {
			case isStatus && s.App == app && s.State == want:
				return s
			case isStatus && s.App == app && s.State != protocol.StateRunning:
				g.t.Fatalf("%s %v (%q), want %v", app, s.State, s.Error, want)
			}
		case <-timeout:
			g.t.Fatalf("no %s %v", app, want)
		}
	}
}

// deploy transfers module as app, in one chunk, until Received.
func (g *gatewaySide) deploy(app string, module []byte) {
	g.t.Helper()
	sum := sha256.Sum256(module)
	g.send(&protocol.Deploy{App: app, Digest: sum[:], Size: uint32(len(module)), ChunkSize: 1024, Config: map[string]string{}})
	g.send(&protocol.Chunk{App: app, Offset: 0, Data: module})
	g.status(app, protocol.StateReceived)
}

// TestSleeperOnVirtualDevice: a virtual device fails an app that sleeps past the 2 s
// time budget of a call with the firmware's reason, keeps its heartbeats while the app
// sleeps, and stops a sleeping app at once.
func TestSleeperOnVirtualDevice(t *testing.T) {
	g := oneDevice(t)
	g.deploy("sleeper", fixtures.Sleeper)
	budget := abi.CallTimeMs * time.Millisecond

	// The app sleeps 1 s twice, then its third second would end past the budget. Its
	// sleeps keep only the app's goroutine: heartbeats go on meanwhile.
	for len(g.heartbeats) > 0 { // only those of the sleep count
		<-g.heartbeats
	}
	g.send(&protocol.Start{App: "sleeper"})
	started := time.Now()
	g.status("sleeper", protocol.StateRunning)
	time.Sleep(1500 * time.Millisecond)
	if len(g.heartbeats) == 0 {
		t.Errorf("no heartbeat in the first 1.5 s of sleep (interval 1 s)")
	}
	st := g.status("sleeper", protocol.StateFailed)
	// Not before the budget: a sleep counts as asked for, however late this loaded
	// machine wakes the app from it.
	if took := time.Since(started); st.Error != abi.ReasonTimeBudget || took < budget-100*time.Millisecond || took > budget+2*time.Second {
		t.Fatalf("%q after %v, want %q within about %v", st.Error, took.Round(time.Millisecond), abi.ReasonTimeBudget, budget)
	}

	// A Stop ends a sleeping call at once.
	g.send(&protocol.Start{App: "sleeper"})
	g.status("sleeper", protocol.StateRunning)
	g.send(&protocol.Stop{App: "sleeper"})
	sent := time.Now()
	g.status("sleeper", protocol.StateStopped)
	if took := time.Since(sent); took > budget/2 {
		t.Errorf("Stopped %v after the Stop", took.Round(time.Millisecond))
	}
}
