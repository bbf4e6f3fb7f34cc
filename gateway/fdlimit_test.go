//go:build unix

package gateway_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmbed/wasmbed/gateway"
	"github.com/wasmbed/wasmbed/internal/devicesim"
	"github.com/wasmbed/wasmbed/internal/pki"
)

// childEnv names the directory holding a child gateway's TLS files. When it is set,
// the test binary runs a gateway (runChildGateway) instead of the tests: the file
// descriptor tests need a process of their own whose RLIMIT_NOFILE they can lower.
const childEnv = "WASMBED_GATEWAY_TEST_CHILD"

// childNoFile is the child's RLIMIT_NOFILE, soft and hard.
const childNoFile = 64

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(runChildGateway(dir))
	}
	os.Exit(m.Run())
}

// runChildGateway runs a gateway with RLIMIT_NOFILE at childNoFile, as cmd/gateway
// would: it prints "listening <device addr> <http addr>", logs JSON to stderr, and
// exits 1 if Serve fails, 0 after a clean shutdown once stdin closes.
func runChildGateway(dir string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "child gateway:", err)
		return 1
	}
	// Go raised the soft limit to the hard one at start; lower both.
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: childNoFile, Max: childNoFile}); err != nil {
		return fail(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return fail(err)
	}
	ca, err := pki.ParseCertificatePEM(caPEM)
	if err != nil {
		return fail(err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		return fail(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	reg := prometheus.NewRegistry()
	cfg := gateway.NewConfig(pool, cert).WithName(gatewayName).WithRegisterer(reg).
		// Idle connections must stay for the whole test, not be cut by the deadline.
		WithHandshakeTimeout(time.Minute).
		WithLogger(slog.New(slog.NewJSONHandler(os.Stderr, nil)))
	srv, err := gateway.New(cfg)
	if err != nil {
		return fail(err)
	}
	dl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	hs := &http.Server{Handler: srv.HTTPHandler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(hl) }()
	fmt.Printf("listening %s %s\n", dl.Addr(), hl.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(dl) }()
	stdin := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdin)
	}()
	select {
	case err := <-served:
		return fail(fmt.Errorf("serve: %w", err))
	case <-stdin:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = hs.Shutdown(ctx)
	if err := srv.Shutdown(ctx); err != nil {
		return fail(err)
	}
	return 0
}

// child is a gateway running in a child process.
type child struct {
	t        *testing.T
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	stderr   *syncBuffer
	dev, web string // device and HTTP addresses
	exited   chan struct{}
	waitErr  error
}

func startChild(t *testing.T) *child {
	t.Helper()
	ca := testCA(t)
	dir := t.TempDir()
	certPEM, keyPEM, err := ca.IssueServer([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"ca.crt": ca.CertPEM(), "tls.crt": certPEM, "tls.key": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := &child{t: t, stderr: &syncBuffer{}, exited: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], "-test.run=^$")
	c.cmd.Env = append(os.Environ(), childEnv+"="+dir)
	c.cmd.Stderr = c.stderr
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.waitErr = c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-lines:
		if _, err := fmt.Sscanf(line, "listening %s %s", &c.dev, &c.web); err != nil {
			t.Fatalf("child said %q: %v; stderr:\n%s", line, err, c.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the child gateway did not start; stderr:\n%s", c.stderr.String())
	}
	return c
}

// alive fails the test if the child has exited.
func (c *child) alive() {
	c.t.Helper()
	select {
	case <-c.exited:
		c.t.Fatalf("the gateway exited (%v); stderr:\n%s", c.waitErr, c.stderr.String())
	default:
	}
}

// waitLog waits until the child logged a line with every substring, failing if it
// exits first.
func (c *child) waitLog(timeout time.Duration, substrings ...string) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c.alive()
		for _, line := range strings.Split(c.stderr.String(), "\n") {
			ok := true
			for _, s := range substrings {
				ok = ok && strings.Contains(line, s)
			}
			if ok {
				return
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no log line with %q after %v; stderr:\n%s", substrings, timeout, c.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metrics returns the child's /metrics.
func (c *child) metrics() string {
	c.t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + c.web + "/metrics")
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return string(b)
}

// stop closes the child's stdin and waits for a clean exit.
func (c *child) stop() {
	c.t.Helper()
	_ = c.stdin.Close()
	select {
	case <-c.exited:
		if c.waitErr != nil {
			c.t.Fatalf("the gateway did not stop cleanly: %v; stderr:\n%s", c.waitErr, c.stderr.String())
		}
	case <-time.After(20 * time.Second):
		c.t.Fatalf("the gateway did not stop; stderr:\n%s", c.stderr.String())
	}
}

// idleConns opens n TCP connections to the child's device port that never send a
// byte, and closes them when the test ends (or when the returned function is called).
func (c *child) idleConns(n int) (closeAll func()) {
	t := c.t
	t.Helper()
	conns := make([]net.Conn, 0, n)
	closeAll = func() {
		for _, c := range conns {
			_ = c.Close()
		}
		conns = conns[:0]
	}
	t.Cleanup(closeAll)
	d := net.Dialer{Timeout: 5 * time.Second}
	for range n {
		conn, err := d.Dial("tcp", c.dev)
		if err != nil {
			time.Sleep(100 * time.Millisecond) // the gateway may be exiting
			c.alive()
			t.Fatalf("dial %d: %v", len(conns), err)
		}
		conns = append(conns, conn)
	}
	return closeAll
}

// TestOutOfFileDescriptors runs a gateway in a child process whose RLIMIT_NOFILE is
// 64 and opens more idle TCP connections than that. The gateway must not exit when
// accept fails with EMFILE: it counts and logs the failure, backs off, and a real
// mTLS device connects once the idle connections are gone.
func TestOutOfFileDescriptors(t *testing.T) {
	c := startChild(t)
	closeIdle := c.idleConns(3 * childNoFile)
	c.waitLog(15*time.Second, "accept failed", `"error":"emfile"`)
	time.Sleep(200 * time.Millisecond) // a few more failed accepts, with backoff
	c.alive()
	closeIdle()

	fleet, err := devicesim.NewFleet(context.Background(), devicesim.Config{
		Gateway: c.dev, ServerName: "localhost", CA: testCA(t), Namespace: "default", NamePrefix: "fd-", Count: 1,
		NoRun: true, MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		fleet.Run(ctx)
		close(done)
	}()
	defer func() {
		cancel()
		<-done
	}()
	dev := fleet.Devices()[0]
	deadline := time.Now().Add(20 * time.Second)
	for !dev.Connected() {
		c.alive()
		if time.Now().After(deadline) {
			t.Fatalf("the device did not connect after the idle connections closed; stderr:\n%s", c.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	m := c.metrics()
	if !strings.Contains(m, gateway.MetricAcceptErrors+`{error="emfile"}`) {
		t.Errorf("no %s{error=\"emfile\"} in the metrics:\n%s", gateway.MetricAcceptErrors, m)
	}
	if !strings.Contains(m, gateway.MetricSessions+" 1") {
		t.Errorf("want one session in the metrics:\n%s", m)
	}
	cancel()
	<-done
	c.stop()
}
