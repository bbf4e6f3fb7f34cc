package gateway_test

import (
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/api/protocol"
	"github.com/wasmbed/wasmbed/gateway"
	"github.com/wasmbed/wasmbed/internal/pki"
)

// dialFrom opens a TCP connection to addr from the loopback address src
// ("127.0.0.2"): every address of 127.0.0.0/8 is a distinct source to the gateway.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedAtOnce reports whether the gateway closed c without a word: a read ends in
// EOF or a reset, not in the read deadline.
func closedAtOnce(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// connectFrom opens a session as id from src and returns it after Welcome.
func (h *harness) connectFrom(src string, id pki.Identity) *rawDevice {
	h.t.Helper()
	cert := deviceCert(h.t, h.ca, id)
	raw := dialFrom(h.t, src, h.addr)
	c := tls.Client(raw, &tls.Config{RootCAs: h.ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }})
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.Handshake(); err != nil {
		h.t.Fatalf("handshake from %s: %v", src, err)
	}
	d := &rawDevice{t: h.t, conn: c, r: protocol.NewReader(c, protocol.DefaultMaxFrame), w: protocol.NewWriter(c, protocol.DefaultMaxFrame)}
	d.send(helloFor(id.String(), 2048))
	d.expect(protocol.TypeWelcome)
	return d
}

// TestAdmission: connections over a limit are closed at once, before any TLS, and
// counted by reason; a device from another source (or once the limit frees) still
// gets a session.
func TestAdmission(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(gateway.Config) gateway.Config
		// fill takes the limit up to its edge; the connection from src is then refused
		// with reason, and a device from ok still connects.
		fill   func(t *testing.T, h *harness)
		src    string
		reason gateway.CloseReason
		ok     string
	}{
		{
			name: "pending per source",
			cfg:  func(c gateway.Config) gateway.Config { return c.WithMaxPendingPerSource(3) },
			fill: func(t *testing.T, h *harness) {
				for range 3 {
					dialFrom(t, "127.0.0.2", h.addr) // idle: never starts its handshake
				}
				eventually(t, 5*time.Second, func() bool { return h.counter(gateway.MetricPending, "") == 3 }, "3 pending")
			},
			src: "127.0.0.2", reason: gateway.ReasonSourcePending, ok: "127.0.0.3",
		},
		{
			name: "pending in total",
			cfg:  func(c gateway.Config) gateway.Config { return c.WithMaxPending(3) },
			fill: func(t *testing.T, h *harness) {
				for _, src := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
					dialFrom(t, src, h.addr)
				}
				eventually(t, 5*time.Second, func() bool { return h.counter(gateway.MetricPending, "") == 3 }, "3 pending")
			},
			src: "127.0.0.5", reason: gateway.ReasonMaxPending,
		},
		{
			name: "sessions",
			cfg:  func(c gateway.Config) gateway.Config { return c.WithMaxSessions(2) },
			fill: func(t *testing.T, h *harness) {
				h.connectFrom("127.0.0.2", id("default", "adm-a"))
				h.connectFrom("127.0.0.3", id("default", "adm-b"))
			},
			src: "127.0.0.4", reason: gateway.ReasonMaxSessions,
		},
		{
			name: "rate per source",
			// Two connections, then one per 10 s: the third comes too soon.
			cfg: func(c gateway.Config) gateway.Config { return c.WithSourceRate(0.1, 2) },
			fill: func(t *testing.T, h *harness) {
				h.connectFrom("127.0.0.2", id("default", "adm-a"))
				dialFrom(t, "127.0.0.2", h.addr).Close()
			},
			src: "127.0.0.2", reason: gateway.ReasonSourceRate, ok: "127.0.0.3",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.cfg)
			tc.fill(t, h)
			label := "reason=" + string(tc.reason)
			before := h.counter(gateway.MetricCloses, label)
			if c := dialFrom(t, tc.src, h.addr); !closedAtOnce(c) {
				t.Fatalf("the connection from %s over the limit was not closed", tc.src)
			}
			eventually(t, 5*time.Second, func() bool { return h.counter(gateway.MetricCloses, label) == before+1 },
				"%s{%s} to count the refusal", gateway.MetricCloses, label)
			// The refusal is counted, then logged: wait for the line too.
			eventually(t, 5*time.Second, func() bool { return hasLog(h, "connection refused", label, "remote="+tc.src) },
				"a log line for the refusal")
			if tc.ok != "" {
				h.connectFrom(tc.ok, id("default", "adm-ok"))
			}
		})
	}
}

// TestRefusalLogsAreRateLimited: a flood of refused connections logs one line per
// period, not one per connection, and counts every refusal.
func TestRefusalLogsAreRateLimited(t *testing.T) {
	h := newHarness(t, func(c gateway.Config) gateway.Config { return c.WithMaxPendingPerSource(1) })
	dialFrom(t, "127.0.0.2", h.addr)
	eventually(t, 5*time.Second, func() bool { return h.counter(gateway.MetricPending, "") == 1 }, "1 pending")
	for range 20 {
		if !closedAtOnce(dialFrom(t, "127.0.0.2", h.addr)) {
			t.Fatal("a connection over the limit was not closed")
		}
	}
	label := "reason=" + string(gateway.ReasonSourcePending)
	eventually(t, 5*time.Second, func() bool { return h.counter(gateway.MetricCloses, label) == 20 }, "20 refusals counted")
	lines := 0
	for _, l := range splitLines(h.logs.String()) {
		if hasAll(l, "connection refused", label) {
			lines++
		}
	}
	if lines != 1 {
		t.Errorf("%d log lines for 20 refusals, want 1; logs:\n%s", lines, h.logs.String())
	}
}
