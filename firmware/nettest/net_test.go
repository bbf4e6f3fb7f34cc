package nettest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/api/protocol"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/builder"
	"github.com/wasmbed/wasmbed/firmware/internal/fwbuild"
	"github.com/wasmbed/wasmbed/firmware/netboot"
	"github.com/wasmbed/wasmbed/firmware/provision"
	"github.com/wasmbed/wasmbed/gateway"
	"github.com/wasmbed/wasmbed/gateway/kube"
	"github.com/wasmbed/wasmbed/internal/artifacts"
	"github.com/wasmbed/wasmbed/internal/pki"
	"github.com/wasmbed/wasmbed/internal/testenv"
)

const (
	gatewayName = "wasmbed-system/gw-net"
	serverName  = "gateway.wasmbed.test"
	// The ports the board dials on netboot.GuestGateway, the one address it reaches:
	// QEMU forwards them to the gateway's loopback ports, and nothing else leaves the guest.
	devicePort = 8443
	enrollPort = 8080
)

var gatewayRef = v1.Ref{Namespace: "wasmbed-system", Name: "gw-net"}

func requireTools(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"qemu-system-arm", "arm-none-eabi-gcc", "make", "socat"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: run hack/deps.sh", tool)
		}
	}
}

// sink keeps the gateway's events.
type sink struct {
	mu     sync.Mutex
	events []cloudevents.Event
}

func (s *sink) Emit(e cloudevents.Event) {
	s.mu.Lock()
	s.events = append(s.events, e)
	s.mu.Unlock()
}

// count returns how many events of type t mention every one of want in their data.
func (s *sink) count(t events.Type, want ...string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.events {
		if e.Type() != string(t) {
			continue
		}
		ok := true
		for _, w := range want {
			ok = ok && bytes.Contains(e.Data(), []byte(w))
		}
		if ok {
			n++
		}
	}
	return n
}

// keys is the gateway's registry in this test: it records the public key of each
// certificate a device presents, then admits it as the registry it wraps decides (none:
// every device with a valid certificate, as --registry=none); and the enrollment
// approver's record of the keys it let the CA sign.
type keys struct {
	inner    gateway.Registry
	mu       sync.Mutex
	sessions []*ecdsa.PublicKey
	signed   []*ecdsa.PublicKey
}

func (k *keys) Check(ctx context.Context, id pki.Identity, cert *x509.Certificate) error {
	k.mu.Lock()
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); ok {
		k.sessions = append(k.sessions, pub)
	}
	k.mu.Unlock()
	if k.inner != nil {
		return k.inner.Check(ctx, id, cert)
	}
	return nil
}

func (k *keys) Watch(ctx context.Context, revoked func(pki.Identity)) error {
	if k.inner != nil {
		return k.inner.Watch(ctx, revoked)
	}
	<-ctx.Done()
	return nil
}

func (k *keys) snapshot() (sessions, signed []*ecdsa.PublicKey) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]*ecdsa.PublicKey(nil), k.sessions...), append([]*ecdsa.PublicKey(nil), k.signed...)
}

// gw is a real gateway (the gateway package, as cmd/gateway assembles it with
// --tls12 --http-tls --enroll-ca-dir --enroll-tokens) on two loopback ports, with its
// state in a directory that outlives a restart.
type gw struct {
	t        testing.TB
	ca       *pki.CA
	state    string
	tokens   string // the token file
	key      *pki.SigningKey
	keys     *keys
	events   *sink
	store    *artifacts.Dir
	dev, api net.Listener
	srv      *gateway.Server
	tok      *gateway.Tokens
	logs     *logBuffer
	done     chan struct{}
	// serverName is the DNS name in the gateway's certificate.
	serverName string
}

// gwOption changes a test gateway before it starts.
type gwOption func(*gw)

// withRegistry has the gateway admit devices as r decides.
func withRegistry(r gateway.Registry) gwOption { return func(g *gw) { g.keys.inner = r } }

// withServerName has the gateway's certificate name host instead of serverName.
func withServerName(host string) gwOption { return func(g *gw) { g.serverName = host } }

// newGateway starts a gateway of ca with the deployment key and the bootstrap tokens (a
// token file's text).
func newGateway(t testing.TB, ca *pki.CA, key *pki.SigningKey, tokens string, opts ...gwOption) *gw {
	t.Helper()
	g := &gw{t: t, ca: ca, state: t.TempDir(), key: key, keys: &keys{}, events: &sink{}, serverName: serverName}
	for _, o := range opts {
		o(g)
	}
	g.tokens = filepath.Join(g.state, "tokens")
	if err := os.WriteFile(g.tokens, []byte(tokens), 0o600); err != nil {
		t.Fatal(err)
	}
	var err error
	if g.store, err = artifacts.NewDir(filepath.Join(g.state, "artifacts")); err != nil {
		t.Fatal(err)
	}
	g.start("127.0.0.1:0", "127.0.0.1:0")
	t.Cleanup(g.stop)
	return g
}

func (g *gw) start(devAddr, apiAddr string) {
	t := g.t
	t.Helper()
	certPEM, keyPEM, err := g.ca.IssueServer([]string{g.serverName}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	desired, err := gateway.NewDirDesired(filepath.Join(g.state, "desired"))
	if err != nil {
		t.Fatal(err)
	}
	g.logs = &logBuffer{}
	apiTLS, err := pki.APITLSConfig(cert, pki.TLSOptions{AllowTLS12: true}) // cmd/gateway --http-tls --tls12
	if err != nil {
		t.Fatal(err)
	}
	cfg := gateway.NewConfig(g.ca.Pool(), cert).WithName(gatewayName).WithTLS12(true).
		WithDeploymentKey(g.key.Public()).WithDesired(desired).WithArtifacts(g.store).
		WithSink(g.events).WithRegistry(g.keys).WithRegisterer(prometheus.NewRegistry()).
		WithHeartbeat(2*time.Second, 10*time.Second).
		WithLogger(slog.New(slog.NewTextHandler(g.logs, nil))).
		WithAPITLS(apiTLS)
	if g.srv, err = gateway.New(cfg); err != nil {
		t.Fatal(err)
	}
	if g.tok, err = gateway.OpenTokens(filepath.Join(g.state, "enroll"), time.Hour); err != nil {
		t.Fatal(err)
	}
	list, err := gateway.ParseTokenFile([]byte(mustRead(t, g.tokens)))
	if err == nil {
		err = g.tok.Add(list...)
	}
	if err != nil {
		t.Fatal(err)
	}
	// The approver is the tokens, as in cmd/gateway; the wrapper records which key the
	// CA is asked to sign (a CSR's self-signature is checked before it gets here).
	approve := pki.ApproverFunc(func(ctx context.Context, req pki.SignRequest) error {
		err := g.tok.Approve(ctx, req)
		if pub, ok := req.CSR.PublicKey.(*ecdsa.PublicKey); ok && err == nil {
			g.keys.mu.Lock()
			g.keys.signed = append(g.keys.signed, pub)
			g.keys.mu.Unlock()
		}
		return err
	})
	g.srv.SetEnroller(gateway.NewEnroller(pki.NewSigner(g.ca, approve), g.tok, g.ca.CertPEM(), gateway.EnrollerOptions{}))
	if g.dev, err = net.Listen("tcp", devAddr); err != nil {
		t.Fatal(err)
	}
	if g.api, err = net.Listen("tcp", apiAddr); err != nil {
		t.Fatal(err)
	}
	g.done = make(chan struct{}, 2)
	srv, dev, api := g.srv, g.dev, g.api
	go func() { _ = srv.Serve(dev); g.done <- struct{}{} }()
	go func() { _ = srv.ServeAPI(api); g.done <- struct{}{} }()
}

func (g *gw) stop() {
	if g.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = g.srv.Shutdown(ctx)
	g.dev.Close()
	g.api.Close()
	<-g.done
	<-g.done
	g.tok.Close()
	g.srv = nil
}

// enroll posts a CSR for a key of its own with token to the gateway's /enroll, as a
// device would, and returns the HTTP status.
func (g *gw) enroll(ctx context.Context, token string, id pki.Identity) int {
	t := g.t
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(k, id)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"token": token, "csr": string(csr)})
	url := fmt.Sprintf("https://127.0.0.1:%d/enroll", g.apiPort())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: g.ca.Pool(), ServerName: g.serverName, MinVersion: tls.VersionTLS13}}}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("enroll: %v", err)
	}
	res.Body.Close()
	return res.StatusCode
}

// restart stops the gateway and starts a new one on the same ports and state.
func (g *gw) restart() {
	dev, api := g.dev.Addr().String(), g.api.Addr().String()
	g.stop()
	g.start(dev, api)
}

func (g *gw) devicePort() int { return g.dev.Addr().(*net.TCPAddr).Port }
func (g *gw) apiPort() int    { return g.api.Addr().(*net.TCPAddr).Port }

// deploy records a signed deployment of module for device, as dispatch's request does, at
// generation (and manifest version) generation.
func (g *gw) deploy(ctx context.Context, app, device string, module []byte, generation int64) {
	t := g.t
	t.Helper()
	d, err := g.store.Put(ctx, module)
	if err != nil {
		t.Fatal(err)
	}
	ref := events.AppRef{Namespace: "default", Name: app, Generation: generation, UID: "uid-" + app}
	hash, err := protocol.ConfigHash(nil)
	if err != nil {
		t.Fatal(err)
	}
	m := &protocol.Manifest{Type: protocol.ManifestType, Namespace: ref.Namespace, App: ref.Name, UID: ref.UID,
		Generation: uint64(generation), Version: uint64(generation), Digest: d.Bytes(), ConfigHash: hash}
	raw, err := protocol.EncodeManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := g.key.Sign(raw)
	if err != nil {
		t.Fatal(err)
	}
	data := &events.DeploymentRequestedData{Application: ref, Gateway: gatewayRef, Digest: d, Size: int64(len(module)),
		Devices: []string{device}, Manifest: raw, Signature: sig}
	e, err := events.New(events.DeploymentRequested, "/test", ref.Subject(), data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.srv.Handle(ctx, e); err != nil {
		t.Fatalf("deploy: %v", err)
	}
}

// logBuffer is the gateway's log, safe for its writers and the test's reads.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func mustRead(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// board is the network image running in QEMU: its UART (the console) and its QMP.
type board struct {
	t       testing.TB
	console *netboot.Console
	qmp     string
	cmd     *exec.Cmd
}

// boot starts QEMU with the LAN9118 on a user-mode network that reaches nothing but
// netboot.GuestGateway, whose two ports go to the gateway's loopback ports (one socat per
// connection, started by QEMU).
func boot(ctx context.Context, t testing.TB, elf string, g *gw, extra ...string) *board {
	t.Helper()
	dir, err := os.MkdirTemp("", "wbnet") // short: a unix socket path has ~100 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	b := &board{t: t, qmp: filepath.Join(dir, "qmp.sock")}
	lo := func(port int) netip.AddrPort {
		return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	}
	args, err := netboot.Args(elf, netboot.Forward{Port: devicePort, To: lo(g.devicePort())},
		netboot.Forward{Port: enrollPort, To: lo(g.apiPort())})
	if err != nil {
		t.Fatal(err)
	}
	args = append(append(args, "-qmp", "unix:"+b.qmp+",server=on,wait=off"), extra...)
	b.cmd = exec.CommandContext(ctx, "qemu-system-arm", args...)
	out, err := b.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	b.cmd.Stderr = b.cmd.Stdout
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start qemu-system-arm: %v", err)
	}
	b.console = netboot.Collect(out)
	t.Cleanup(func() {
		_ = b.cmd.Process.Kill()
		<-b.console.Done()
		_ = b.cmd.Wait()
		if t.Failed() {
			t.Logf("UART:\n%s", strings.Join(b.console.Lines(), "\n"))
		}
	})
	return b
}

// wait returns once the console has n lines containing s, failing after timeout.
func (b *board) wait(s string, n int, timeout time.Duration) {
	b.t.Helper()
	if err := b.console.Wait(s, n, timeout); err != nil {
		b.t.Fatal(err)
	}
}

func (b *board) count(s string) int { return b.console.Count(s) }

// warmReset resets the machine over QMP (system_reset: RAM outside the image's
// segments, where the identity and app stores live, is kept).
func (b *board) warmReset() {
	b.t.Helper()
	conn, err := net.DialTimeout("unix", b.qmp, 5*time.Second)
	if err != nil {
		b.t.Fatalf("QMP: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	dec := json.NewDecoder(conn)
	var greeting map[string]any
	if err := dec.Decode(&greeting); err != nil {
		b.t.Fatalf("QMP greeting: %v", err)
	}
	for _, cmd := range []string{"qmp_capabilities", "system_reset"} {
		if err := json.NewEncoder(conn).Encode(map[string]string{"execute": cmd}); err != nil {
			b.t.Fatalf("QMP %s: %v", cmd, err)
		}
		for {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				b.t.Fatalf("QMP %s: %v", cmd, err)
			}
			if e, ok := m["error"]; ok {
				b.t.Fatalf("QMP %s: %v", cmd, e)
			}
			if _, ok := m["return"]; ok {
				break
			}
		}
	}
}

// provisioned writes the network image provisioned for id with token and ca.
func provisioned(t testing.TB, elf string, id pki.Identity, token string, ca *pki.CA, key *pki.SigningKey) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "firmware.elf")
	err := provision.NetFile(elf, out, key.Public(), provision.Net{
		Identity: id, Gateway: netip.AddrPortFrom(netboot.GuestGateway, devicePort), EnrollPort: enrollPort,
		ServerName: serverName, Token: token, CA: ca.Cert,
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

const appSource = `#include "wasmbed.h"

WASMBED_EXPORT(loop) int32_t loop(void) {
    static const char msg[] = "net tick";
    wasmbed_log(WASMBED_LOG_INFO, msg, sizeof msg - 1);
    return 500;
}
`

// TestEnrollConnectRun is the network image's life: first boot (key, enrollment,
// session), a deployment that runs, a gateway restart, a warm reset of the board.
func TestEnrollConnectRun(t *testing.T) {
	requireTools(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	elf := fwbuild.NetImage(t, "mps2-an386")
	res, err := builder.Build(ctx, builder.Request{Language: builder.C, Source: []byte(appSource)})
	if err != nil {
		t.Fatalf("build the app (needs clang-19 and lld-19, see hack/deps.sh): %v", err)
	}
	ca, err := pki.NewCA("platform", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	id := pki.Identity{Namespace: "default", Name: "mps2-net-1"}
	token := "net-test-token-0123456789abcdef"
	g := newGateway(t, ca, key, token+" "+id.String()+"\n")
	b := boot(ctx, t, provisioned(t, elf, id, token, ca, key), g)

	b.wait("net: generated a P-256 device key", 1, 30*time.Second)
	b.wait("net: enroll: certificate for default/mps2-net-1 stored", 1, 60*time.Second)
	b.wait("net: gateway: connected, TLSv1.2, TLS-ECDHE-ECDSA-WITH-AES-", 1, 60*time.Second)
	if b.count(" 0 ethernet interrupts") != 0 {
		t.Fatal("the LAN9118 raised no interrupt on line 13 while frames arrived")
	}
	waitFor(t, 30*time.Second, func() bool { return g.srv.Connected(id) }, "the gateway holds no session of %s", id)

	// The key of the session is the key the enrollment signed: the board's, whose
	// private half only the board had (the CSR's self-signature was checked, and no
	// process here ever made or saw a key for this device).
	sessions, signed := g.keys.snapshot()
	if len(signed) != 1 || len(sessions) == 0 {
		t.Fatalf("%d key(s) signed and %d session(s): want one enrollment and a session", len(signed), len(sessions))
	}
	for _, s := range sessions {
		if !s.Equal(signed[0]) {
			t.Fatal("a session presented another key than the one the enrollment signed")
		}
	}

	g.deploy(ctx, "tick", id.Name, res.Module, 1)
	waitFor(t, 60*time.Second, func() bool {
		return g.events.count(events.DeploymentSucceeded, `"device":"mps2-net-1"`, "Running") > 0
	}, "no Running report from the board; gateway log:\n%s", g.logs)

	// A gateway restart: same state directory (spent token, desired state), same ports.
	g.restart()
	b.wait("net: gateway: connected", 2, 60*time.Second)
	if status := g.enroll(ctx, token, id); status != http.StatusForbidden {
		t.Fatalf("the board's token enrolled another key after the restart (HTTP %d): it was not kept spent", status)
	}
	waitFor(t, 30*time.Second, func() bool { return g.srv.Connected(id) }, "no session after the gateway's restart")

	// A warm reset of the board: key and certificate from its identity store, no new
	// enrollment (the token is spent and stays spent).
	// Every frame the gateway sent found room in the LAN9118's receive FIFO (a drop is a
	// retransmission timeout: the receive window must fit the FIFO, net/lwipopts.h).
	if n := b.count("Failed to send packet"); n != 0 {
		t.Fatalf("QEMU dropped %d frame(s) to the board: its receive FIFO overflowed", n)
	}
	ticks := strings.Count(g.logs.String(), `app=tick message="net tick"`)
	b.warmReset()
	b.wait("net: using the stored certificate for default/mps2-net-1", 1, 30*time.Second)
	b.wait("net: gateway: connected", 3, 60*time.Second)
	if n := b.count("net: generated a P-256 device key"); n != 1 {
		t.Fatalf("the board generated %d keys, want 1", n)
	}
	if n := b.count("net: enroll: POST"); n != 1 {
		t.Fatalf("the board enrolled %d times, want 1", n)
	}
	sessions, signed = g.keys.snapshot()
	if len(signed) != 1 || !sessions[len(sessions)-1].Equal(signed[0]) {
		t.Fatal("after the reset the board presented another key than the enrolled one")
	}
	// The app came back from the board's app store and runs: its log lines reach the
	// gateway over the new session.
	waitFor(t, 60*time.Second, func() bool {
		return strings.Count(g.logs.String(), `app=tick message="net tick"`) > ticks+2
	}, "the app does not run after the reset; gateway log:\n%s", g.logs)
	t.Logf("UART:\n%s", strings.Join(b.console.Lines(), "\n"))
}

// TestRefusesGateway: a gateway whose certificate another CA signed, or that names
// another host than the provisioned one, is refused in the handshake; the board says why
// on its console, and the gateway signs nothing.
func TestRefusesGateway(t *testing.T) {
	requireTools(t)
	elf := fwbuild.NetImage(t, "mps2-an386")
	platform, err := pki.NewCA("platform", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewCA("another platform", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		name string
		ca   *pki.CA
		opts []gwOption
		want string
	}{
		{"another CA", other, nil, "net: enroll: TLS handshake failed: the gateway's certificate is not signed by the platform CA"},
		{"another host", platform, []gwOption{withServerName("other.wasmbed.test")},
			"net: enroll: TLS handshake failed: the gateway's certificate does not name the provisioned host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			id := pki.Identity{Namespace: "default", Name: fmt.Sprintf("mps2-net-refuse-%d", i)}
			token := fmt.Sprintf("net-test-token-refuse-%d-0123456789", i)
			g := newGateway(t, tc.ca, key, token+" "+id.String()+"\n", tc.opts...)
			b := boot(ctx, t, provisioned(t, elf, id, token, platform, key), g)
			b.wait(tc.want, 1, time.Minute)
			if _, signed := g.keys.snapshot(); len(signed) != 0 {
				t.Fatal("the gateway signed a certificate for a board that refused it")
			}
		})
	}
}

func waitFor(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v: "+format, append([]any{timeout}, args...)...)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDisabledDeviceRefused runs the gateway with the Kubernetes registry (a real
// apiserver): a board whose Device is disabled enrolls with its token (enrollment does
// not consult the registry) but gets no session; once the Device is enabled it connects
// with the key it enrolled.
func TestDisabledDeviceRefused(t *testing.T) {
	requireTools(t)
	env := testenv.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	elf := fwbuild.NetImage(t, "mps2-an386")
	// A long name (118 characters of identity): the CSR's SAN takes DER's long-form lengths.
	id := pki.Identity{Namespace: "default", Name: "mps2-net-3-" + strings.Repeat("x", 99)}
	dev := &v1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: id.Namespace, Name: id.Name},
		Spec: v1.DeviceSpec{Board: "mps2-an386", Disabled: true}}
	if err := env.Client.Create(ctx, dev); err != nil {
		t.Fatal(err)
	}
	reg, err := kube.New(env.Config, kube.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.NewCA("platform", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	token := "net-test-token-disabled-0123456"
	g := newGateway(t, ca, key, token+" "+id.String()+"\n", withRegistry(reg))
	b := boot(ctx, t, provisioned(t, elf, id, token, ca, key), g)
	b.wait("net: enroll: certificate for "+id.String()+" stored", 1, time.Minute)
	waitFor(t, time.Minute, func() bool {
		sessions, _ := g.keys.snapshot()
		return len(sessions) >= 2 && strings.Contains(g.logs.String(), "Device "+id.String()+" is disabled")
	}, "the board did not try twice, or was not refused as disabled; gateway log:\n%s", g.logs)
	if g.srv.Connected(id) {
		t.Fatal("a disabled Device's board holds a session")
	}

	dev.Spec.Disabled = false
	if err := env.Client.Update(ctx, dev); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 90*time.Second, func() bool { return g.srv.Connected(id) },
		"no session once the Device is enabled; gateway log:\n%s", g.logs)
	sessions, signed := g.keys.snapshot()
	if len(signed) != 1 || !sessions[len(sessions)-1].Equal(signed[0]) {
		t.Fatal("the enabled board presented another key than the one it enrolled")
	}
}
