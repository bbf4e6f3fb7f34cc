package gateway_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/api/protocol"
	"github.com/wasmbed/wasmbed/gateway"
	"github.com/wasmbed/wasmbed/internal/pki"
	wasmfix "github.com/wasmbed/wasmbed/testdata/wasm"
)

func expiredCert(t *testing.T, ca *pki.CA, id pki.Identity) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: id.String()},
		URIs: []*url.URL{id.URI()}, NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestRefusedCases drives every refused case while a bystander device keeps a live
// session: each closes only the offending connection, is counted by reason and logged.
func TestRefusedCases(t *testing.T) {
	allow := gateway.NewAllowList()
	h := newHarness(t, func(c gateway.Config) gateway.Config { return c.WithRegistry(allow) })
	otherCA, err := pki.NewCA("other ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	bystanderID := id("default", "bystander-0")
	allow.Add(bystanderID)
	for i := range 20 {
		allow.Add(id("default", "dev-"+string(rune('a'+i))))
	}
	f := h.fleet("bystander-", 1)
	bystander := f.Devices()[0]
	eventually(t, 10*time.Second, bystander.Connected, "bystander connected")

	helloed := func(t *testing.T, name string) *rawDevice { return h.connect(id("default", name), 2048) }

	cases := []struct {
		name string
		// run provokes the refusal; metric and label name the counter that must grow.
		run    func(t *testing.T)
		metric string
		label  string
		log    string
	}{
		{"no client cert", func(t *testing.T) {
			d, err := h.dialRaw(tls.Certificate{}, nil)
			if err == nil {
				_ = d.w.WriteMessage(helloFor("default/dev-a", 2048))
				if _, err := d.read(); err == nil {
					t.Fatal("session without a client certificate")
				}
			}
		}, gateway.MetricHandshakes, "result=no-client-cert", "reason=no-client-cert"},
		{"wrong ca", func(t *testing.T) {
			d, err := h.dialRaw(deviceCert(t, otherCA, id("default", "dev-b")), nil)
			if err == nil {
				_ = d.w.WriteMessage(helloFor("default/dev-b", 2048))
				if _, err := d.read(); err == nil {
					t.Fatal("session with a certificate of another ca")
				}
			}
		}, gateway.MetricHandshakes, "result=unknown-authority", "reason=unknown-authority"},
		{"expired cert", func(t *testing.T) {
			d, err := h.dialRaw(expiredCert(t, h.ca, id("default", "dev-c")), nil)
			if err == nil {
				_ = d.w.WriteMessage(helloFor("default/dev-c", 2048))
				if _, err := d.read(); err == nil {
					t.Fatal("session with an expired certificate")
				}
			}
		}, gateway.MetricHandshakes, "result=expired", "reason=expired"},
		{"device not allowed", func(t *testing.T) {
			d, err := h.dialRaw(deviceCert(t, h.ca, id("default", "stranger")), nil)
			if err != nil {
				t.Fatal(err)
			}
			_ = d.w.WriteMessage(helloFor("default/stranger", 2048))
			if e := d.expectClosed(); e == nil || e.Code != protocol.CodeUnauthorized {
				t.Fatalf("got %v, want unauthorized", e)
			}
		}, gateway.MetricCloses, "reason=not-allowed", "reason=not-allowed"},
		{"identity mismatch", func(t *testing.T) {
			d, err := h.dialRaw(deviceCert(t, h.ca, id("default", "dev-d")), nil)
			if err != nil {
				t.Fatal(err)
			}
			d.send(helloFor("default/bystander-0", 2048))
			if e := d.expectClosed(); e == nil || e.Code != protocol.CodeUnauthorized {
				t.Fatalf("got %v, want unauthorized", e)
			}
		}, gateway.MetricCloses, "reason=unauthorized", "reason=unauthorized"},
		{"first message not hello", func(t *testing.T) {
			d, err := h.dialRaw(deviceCert(t, h.ca, id("default", "dev-e")), nil)
			if err != nil {
				t.Fatal(err)
			}
			d.send(&protocol.Heartbeat{Seq: 1})
			if e := d.expectClosed(); e == nil || e.Code != protocol.CodeUnexpectedMessage {
				t.Fatalf("got %v, want unexpected_message", e)
			}
		}, gateway.MetricCloses, "reason=unexpected-message", "reason=unexpected-message"},
		{"oversized frame", func(t *testing.T) {
			d := helloed(t, "dev-f")
			d.writeRaw(append(frameHeader(4000), make([]byte, 16)...))
			if e := d.expectClosed(); e == nil || e.Code != protocol.CodeFrameTooLarge {
				t.Fatalf("got %v, want frame_too_large", e)
			}
		}, gateway.MetricCloses, "reason=frame-too-large", "reason=frame-too-large"},
		{"garbage bytes", func(t *testing.T) {
			d := helloed(t, "dev-g")
			d.writeRaw([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
			if e := d.expectClosed(); e == nil || e.Code != protocol.CodeUnsupportedVersion {
				t.Fatalf("got %v, want unsupported_version", e)
			}
		}, gateway.MetricCloses, "reason=unsupported-version", "reason=unsupported-version"},
		{"truncated frame", func(t *testing.T) {
			d := helloed(t, "dev-h")
			d.writeRaw(append(frameHeader(40), 0xa1, 0x00))
			_ = d.conn.CloseWrite()
			d.expectClosed()
		}, gateway.MetricCloses, "reason=truncated", "reason=truncated"},
		{"empty frame", func(t *testing.T) {
			d := helloed(t, "dev-i")
			d.writeRaw(frameHeader(0))
			if e := d.expectClosed(); e == nil || e.Code != protocol.CodeMalformed {
				t.Fatalf("got %v, want malformed", e)
			}
		}, gateway.MetricCloses, "reason=malformed", "reason=malformed"},
		{"unknown message type keeps the session", func(t *testing.T) {
			d := helloed(t, "dev-j")
			d.writeRaw(append(frameHeader(4), 0xa1, 0x00, 0x18, 0x63)) // {0: 99}
			if e := d.expect(protocol.TypeError).(*protocol.Error); e.Code != protocol.CodeUnknownMessage {
				t.Fatalf("got %v, want unknown_message", e)
			}
			d.send(&protocol.Heartbeat{Seq: 7})
			if a := d.expect(protocol.TypeHeartbeatAck).(*protocol.HeartbeatAck); a.Seq != 7 {
				t.Fatalf("ack %d", a.Seq)
			}
		}, gateway.MetricProtocolErrors, "code=unknown_message", "code=unknown_message"},
		{"unknown message type before hello", func(t *testing.T) {
			d, err := h.dialRaw(deviceCert(t, h.ca, id("default", "dev-k")), nil)
			if err != nil {
				t.Fatal(err)
			}
			d.writeRaw(append(frameHeader(4), 0xa1, 0x00, 0x18, 0x63))
			if e := d.expectClosed(); e == nil || e.Code != protocol.CodeUnknownMessage {
				t.Fatalf("got %v, want unknown_message", e)
			}
		}, gateway.MetricCloses, "reason=unknown-message", "reason=unknown-message"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := h.counter(tc.metric, tc.label)
			sessions := bystander.Sessions()
			tc.run(t)
			eventually(t, 5*time.Second, func() bool { return h.counter(tc.metric, tc.label) > before },
				"%s{%s} to grow; logs:\n%s", tc.metric, tc.label, h.logs.String())
			eventually(t, 5*time.Second, func() bool { return hasLog(h, tc.log) }, "a log line with %q", tc.log)
			if !bystander.Connected() || bystander.Sessions() != sessions || !h.srv.Connected(bystanderID) {
				t.Fatalf("the bystander lost its session")
			}
		})
	}
	// The bystander still works end to end.
	digest := h.put(wasmfix.Blink)
	h.deploy(events.AppRef{Namespace: "default", Name: "blink", Generation: 1}, digest, len(wasmfix.Blink), []string{"bystander-0"})
	eventually(t, 10*time.Second, func() bool { st, _ := bystander.AppState("blink"); return st == protocol.StateRunning }, "bystander runs blink")
}

// TestRevocationClosesLiveSession removes a connected device from the allow-list.
func TestRevocationClosesLiveSession(t *testing.T) {
	allow := gateway.NewAllowList(id("default", "rev-0"), id("default", "rev-1"))
	h := newHarness(t, func(c gateway.Config) gateway.Config { return c.WithRegistry(allow) })
	f := h.fleet("rev-", 2)
	eventually(t, 10*time.Second, func() bool { return h.srv.Sessions() == 2 }, "two sessions")
	allow.Remove(id("default", "rev-0"))
	eventually(t, 5*time.Second, func() bool { return !h.srv.Connected(id("default", "rev-0")) }, "rev-0 closed")
	eventually(t, 5*time.Second, func() bool { return h.counter(gateway.MetricCloses, "reason=revoked") == 1 }, "revoked counted")
	if !hasLog(h, "device=default/rev-0", "reason=revoked") {
		t.Error("no log line for the revocation")
	}
	// It cannot come back; the other device is untouched.
	eventually(t, 5*time.Second, func() bool { return h.counter(gateway.MetricCloses, "reason=not-allowed") >= 1 }, "reconnect refused")
	if !f.Devices()[1].Connected() || f.Devices()[1].Sessions() != 1 {
		t.Fatal("rev-1 lost its session")
	}
	if h.events.count(events.DeviceDisconnected, nil) < 1 {
		t.Error("no device.disconnected event")
	}
}
