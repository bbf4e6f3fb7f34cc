package gateway_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/internal/eventauth"
	"github.com/wasmbed/wasmbed/internal/testenv"

	"github.com/wasmbed/wasmbed/api/digest"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/api/protocol"
	"github.com/wasmbed/wasmbed/gateway"
	"github.com/wasmbed/wasmbed/internal/artifacts"
	"github.com/wasmbed/wasmbed/internal/devicesim"
	"github.com/wasmbed/wasmbed/internal/pki"
	"github.com/wasmbed/wasmbed/internal/wasmhost"
)

const gatewayName = "wasmbed-system/gw-test"

var gatewayRef = v1.Ref{Namespace: "wasmbed-system", Name: "gw-test"}

// syncBuffer is a log destination safe for concurrent writes.
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

// recorder is an event sink that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []cloudevents.Event
}

func (r *recorder) Emit(e cloudevents.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// count returns how many events of type t match f (nil matches all).
func (r *recorder) count(t events.Type, f func(cloudevents.Event) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Type() == string(t) && (f == nil || f(e)) {
			n++
		}
	}
	return n
}

func (r *recorder) all(t events.Type) []cloudevents.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []cloudevents.Event
	for _, e := range r.events {
		if e.Type() == string(t) {
			out = append(out, e)
		}
	}
	return out
}

type harness struct {
	t       *testing.T
	ca      *pki.CA
	cert    tls.Certificate
	srv     *gateway.Server
	addr    string
	reg     *prometheus.Registry
	logs    *syncBuffer
	events  *recorder
	store   *artifacts.Dir
	apiURL  string // the deploy API (ServeAPI)
	opsURL  string // health and metrics (ServeOps)
	auth    string // the Authorization header of the gateway's Trigger
	host    *wasmhost.Host
	cfg     gateway.Config
	stopped bool
}

var (
	sharedCA     *pki.CA
	sharedCAOnce sync.Once
	// env is a real apiserver: it issues the test Trigger's tokens and reviews them.
	env *testenv.Env
)

// trigger is the gateway's own Trigger, the one sender its deploy API admits
// (eventauth.GatewayAllow), and its Authorization header.
func trigger(t testing.TB) (testenv.Sender, string) {
	t.Helper()
	s := env.NewSender(t, gatewayRef.Namespace, eventauth.TriggerServiceAccount(gatewayRef.Name), events.GatewayAudience(gatewayRef.Namespace, gatewayRef.Name))
	tok, err := s.Tokens.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s, "Bearer " + tok
}

func testCA(t testing.TB) *pki.CA {
	sharedCAOnce.Do(func() {
		ca, err := pki.NewCA("test ca", time.Hour)
		if err != nil {
			panic(err)
		}
		sharedCA = ca
	})
	return sharedCA
}

// gatewayCert returns a server certificate for localhost and 127.0.0.1 from the test CA.
func gatewayCert(t testing.TB) tls.Certificate {
	t.Helper()
	certPEM, keyPEM, err := testCA(t).IssueServer([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// newHarness starts a gateway on a loopback port with a recorder sink, a directory
// artifact store and an in-memory desired state; opts adjust the configuration.
func newHarness(t *testing.T, opts ...func(gateway.Config) gateway.Config) *harness {
	t.Helper()
	ca := testCA(t)
	cert := gatewayCert(t)
	store, err := artifacts.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, ca: ca, cert: cert, reg: prometheus.NewRegistry(), logs: &syncBuffer{}, events: &recorder{}, store: store}
	_, h.auth = trigger(t)
	policy, err := eventauth.NewReceiverPolicy(env.Client, events.GatewayAudience(gatewayRef.Namespace, gatewayRef.Name),
		eventauth.GatewayAllow(gatewayRef.Namespace, gatewayRef.Name))
	if err != nil {
		t.Fatal(err)
	}
	cfg := gateway.NewConfig(ca.Pool(), cert).
		WithName(gatewayName).
		WithEventAuth(policy).
		WithArtifacts(store).
		WithSink(h.events).
		WithRegisterer(h.reg).
		WithLogger(slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))).
		WithHeartbeat(time.Second, 5*time.Second).
		// Every test device connects from 127.0.0.1, like a fleet behind one NAT: the
		// per-source limit is the admission tests' business.
		WithMaxPendingPerSource(0)
	for _, o := range opts {
		cfg = o(cfg)
	}
	h.cfg = cfg
	h.start()
	// Up to 1,000 devices share this host on a loaded CI machine: like devicesim's own
	// host, give each call a second of wall clock rather than the default 100 ms, which
	// starved devices ran over ("fuel exhausted") while other test packages ran.
	host, err := wasmhost.NewHost(context.Background(), wasmhost.NewHostConfig().WithCallBudget(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	h.host = host
	t.Cleanup(func() {
		h.stop()
		host.Close(context.Background())
	})
	return h
}

func (h *harness) start() {
	h.t.Helper()
	srv, err := gateway.New(h.cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	h.srv, h.addr, h.stopped = srv, l.Addr().String(), false
	go srv.Serve(l)
	h.apiURL = "http://" + h.serveHTTP(srv.ServeAPI)
	h.opsURL = "http://" + h.serveHTTP(srv.ServeOps)
}

// serveHTTP runs serve on a loopback listener until Shutdown and returns its address.
func (h *harness) serveHTTP(serve func(net.Listener) error) string {
	h.t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	go func() {
		if err := serve(l); !errors.Is(err, gateway.ErrServerClosed) {
			h.t.Errorf("serve HTTP: %v", err)
		}
	}()
	return l.Addr().String()
}

func (h *harness) stop() {
	if h.stopped {
		return
	}
	h.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		h.t.Errorf("shutdown: %v", err)
	}
}

// fleet returns n virtual devices default/<prefix><i>, running until the test ends.
func (h *harness) fleet(prefix string, n int, opts ...func(*devicesim.Config)) *devicesim.Fleet {
	h.t.Helper()
	cfg := devicesim.Config{
		Gateway: h.addr, ServerName: "localhost", CA: h.ca, Namespace: "default", NamePrefix: prefix, Count: n,
		Host: h.host, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	}
	for _, o := range opts {
		o(&cfg)
	}
	f, err := devicesim.NewFleet(context.Background(), cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		f.Run(ctx)
		close(done)
	}()
	h.t.Cleanup(func() {
		cancel()
		<-done
	})
	return f
}

func (h *harness) counter(name, label string) float64 {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, lp := range m.GetLabel() {
				if lp.GetName()+"="+lp.GetValue() == label {
					match = true
				}
			}
			if match {
				if c := m.GetCounter(); c != nil {
					total += c.GetValue()
				} else if g := m.GetGauge(); g != nil {
					total += g.GetValue()
				}
			}
		}
	}
	return total
}

// put stores a module in the artifact store and returns its digest.
func (h *harness) put(module []byte) digest.Digest {
	h.t.Helper()
	d, err := h.store.Put(context.Background(), module)
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

// deploy posts a deployment request over HTTP (binary mode) and returns the status.
func (h *harness) deploy(app events.AppRef, digest digest.Digest, size int, devices []string, mutate ...func(*events.DeploymentRequestedData)) int {
	h.t.Helper()
	d := &events.DeploymentRequestedData{Application: app, Gateway: gatewayRef, Digest: digest, Size: int64(size), Devices: devices}
	for _, m := range mutate {
		m(d)
	}
	e, err := events.New(events.DeploymentRequested, "/test", app.Subject(), d)
	if err != nil {
		h.t.Fatal(err)
	}
	c, err := cloudevents.NewClientHTTP()
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(cloudevents.ContextWithTarget(context.Background(), h.apiURL), 30*time.Second)
	defer cancel()
	ctx = cehttp.WithCustomHeader(ctx, http.Header{"Authorization": {h.auth}})
	res := c.Send(ctx, e)
	var hr *cehttp.Result
	if cloudevents.ResultAs(res, &hr) {
		return hr.StatusCode
	}
	h.t.Fatalf("deploy: %v", res)
	return 0
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v: "+format, append([]any{timeout}, args...)...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rawDevice is a hand-driven device for protocol edge cases.
type rawDevice struct {
	t    testing.TB
	conn *tls.Conn
	r    *protocol.Reader
	w    *protocol.Writer
}

func deviceCert(t testing.TB, ca *pki.CA, id pki.Identity) tls.Certificate {
	t.Helper()
	certPEM, keyPEM, err := ca.IssueDevice(id, 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// dialRaw connects with cert (none when cert.Certificate is empty).
func (h *harness) dialRaw(cert tls.Certificate, control func(network, address string, c syscallRawConn) error) (*rawDevice, error) {
	tc := &tls.Config{RootCAs: h.ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS13}
	if len(cert.Certificate) > 0 {
		// Always present the certificate, even when the gateway's CertificateRequest
		// names another CA (a Go client would otherwise send none).
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	if control != nil {
		d.Control = func(network, address string, c syscallRawConnImpl) error { return control(network, address, c) }
	}
	c, err := tls.DialWithDialer(d, "tcp", h.addr, tc)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	rd := &rawDevice{t: h.t, conn: c, r: protocol.NewReader(c, protocol.DefaultMaxFrame), w: protocol.NewWriter(c, protocol.DefaultMaxFrame)}
	h.t.Cleanup(func() { c.Close() })
	return rd, nil
}

func helloFor(id string, maxFrame uint32, apps ...protocol.AppInfo) *protocol.Hello {
	return &protocol.Hello{DeviceID: id, Board: "virtual", Firmware: "raw/1",
		Caps: protocol.Capabilities{RAM: 1 << 18, Flash: 1 << 20, MaxModule: 1 << 18, ABI: 1, MaxFrame: maxFrame}, Apps: apps}
}

// connect opens a session as id and returns the device after Welcome.
func (h *harness) connect(id pki.Identity, maxFrame uint32, apps ...protocol.AppInfo) *rawDevice {
	h.t.Helper()
	d, err := h.dialRaw(deviceCert(h.t, h.ca, id), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	d.send(helloFor(id.String(), maxFrame, apps...))
	w := d.expect(protocol.TypeWelcome).(*protocol.Welcome)
	d.r.SetMaxBody(int(w.MaxFrame))
	d.w.SetMaxBody(int(w.MaxFrame))
	return d
}

func (d *rawDevice) send(m protocol.Message) {
	d.t.Helper()
	if err := d.w.WriteMessage(m); err != nil {
		d.t.Fatalf("send %s: %v", m.Type(), err)
	}
}

func (d *rawDevice) read() (protocol.Message, error) {
	_ = d.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	return d.r.ReadMessage()
}

// expect reads messages until one of type t arrives (heartbeat acks are skipped).
func (d *rawDevice) expect(t protocol.MessageType) protocol.Message {
	d.t.Helper()
	for {
		m, err := d.read()
		if err != nil {
			d.t.Fatalf("expecting %s: %v", t, err)
		}
		if m.Type() == t {
			return m
		}
		if m.Type() == protocol.TypeHeartbeatAck {
			continue
		}
		d.t.Fatalf("expecting %s, got %s: %+v", t, m.Type(), m)
	}
}

// expectClosed reads until the gateway closes, returning the last Error it sent.
func (d *rawDevice) expectClosed() *protocol.Error {
	d.t.Helper()
	var last *protocol.Error
	for {
		m, err := d.read()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				d.t.Fatalf("gateway did not close the session")
			}
			return last
		}
		if e, ok := m.(*protocol.Error); ok {
			last = e
		}
	}
}

func (d *rawDevice) writeRaw(b []byte) {
	d.t.Helper()
	if _, err := d.conn.Write(b); err != nil {
		d.t.Fatalf("write: %v", err)
	}
}

// padModule returns wasm grown to n bytes with a custom section, still a valid module.
func padModule(wasm []byte, n int) []byte {
	name := "pad"
	body := n - len(wasm) - 1 // section id
	// section size LEB (fixed 5 bytes) + name len + name + payload
	payload := body - 5 - 1 - len(name)
	out := append([]byte(nil), wasm...)
	out = append(out, 0)
	size := uint32(1 + len(name) + payload)
	out = append(out, byte(size)|0x80, byte(size>>7)|0x80, byte(size>>14)|0x80, byte(size>>21)|0x80, byte(size>>28))
	out = append(out, byte(len(name)))
	out = append(out, name...)
	return append(out, make([]byte, payload)...)
}

func frameHeader(n int) []byte {
	b := []byte{protocol.Version, 0, 0}
	binary.BigEndian.PutUint16(b[1:], uint16(n))
	return b
}

func id(ns, name string) pki.Identity { return pki.Identity{Namespace: ns, Name: name} }

func hasLog(h *harness, substrings ...string) bool {
	for _, line := range splitLines(h.logs.String()) {
		if hasAll(line, substrings...) {
			return true
		}
	}
	return false
}

func splitLines(s string) []string { return strings.Split(s, "\n") }

// hasAll reports whether line contains every substring.
func hasAll(line string, substrings ...string) bool {
	for _, s := range substrings {
		if !strings.Contains(line, s) {
			return false
		}
	}
	return true
}

var _ = testutil.ToFloat64
var _ = http.StatusAccepted
var _ = fmt.Sprintf
