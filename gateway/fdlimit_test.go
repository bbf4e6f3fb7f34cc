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

	"github.com/wasmbed/wasmbed/internal/testenv"

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

// childLimitsEnv set to "off" makes the child ignore its file-descriptor limit (and
// lifts the pending limits), so that accept does run out of descriptors.
const childLimitsEnv = "WASMBED_GATEWAY_TEST_CHILD_LIMITS"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(runChildGateway(dir))
	}
	testenv.Main(m, &env)
}

// runChildGateway runs a gateway with RLIMIT_NOFILE at childNoFile, as cmd/gateway
// would: it prints "listening <device addr> <ops addr>", logs JSON to stderr, and
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
	if os.Getenv(childLimitsEnv) == "off" {
		cfg = cfg.WithFileLimit(1 << 20).WithMaxPending(1 << 20).WithMaxPendingPerSource(0)
	}
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
	go func() { _ = srv.ServeOps(hl) }()
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
	dev, web string // device and ops (health, metrics) addresses
	exited   chan struct{}
	waitErr  error
}

func startChild(t *testing.T, env ...string) *child {
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
	c.cmd.Env = append(append(os.Environ(), childEnv+"="+dir), env...)
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

// connectDevice runs one virtual device against the child until the test ends and
// waits for its session.
func (c *child) connectDevice(name string) {
	c.t.Helper()
	fleet, err := devicesim.NewFleet(context.Background(), devicesim.Config{
		Gateway: c.dev, ServerName: "localhost", CA: testCA(c.t), Namespace: "default", NamePrefix: name, Count: 1,
		NoRun: true, MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		fleet.Run(ctx)
		close(done)
	}()
	c.t.Cleanup(func() {
		cancel()
		<-done
	})
	dev := fleet.Devices()[0]
	deadline := time.Now().Add(20 * time.Second)
	for !dev.Connected() {
		c.alive()
		if time.Now().After(deadline) {
			c.t.Fatalf("the device did not connect; stderr:\n%s", c.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metricValue returns the value of the sample named series (name{labels}) in the
// exposition text m, or -1 when it is absent.
func metricValue(m, series string) float64 {
	for _, line := range strings.Split(m, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	return -1
}

// TestOutOfFileDescriptors runs gateways in child processes whose RLIMIT_NOFILE is
// 64 and opens three times as many idle TCP connections. With the limits it derives
// from RLIMIT_NOFILE, the gateway refuses what does not fit before it runs out of
// descriptors, and its HTTP side stays reachable during the flood. With those limits
// off, accept fails with EMFILE, and the gateway must not exit: it counts and logs
// the failure and backs off. Either way a real mTLS device connects once the idle
// connections are gone.
func TestOutOfFileDescriptors(t *testing.T) {
	t.Run("limits derived from RLIMIT_NOFILE", func(t *testing.T) {
		c := startChild(t)
		closeIdle := c.idleConns(3 * childNoFile)
		// Half the descriptors are kept for everything but device connections.
		const fit = childNoFile / 2
		refused := `session_closes_total{reason="max-pending"}`
		var m string
		deadline := time.Now().Add(15 * time.Second)
		for {
			c.alive()
			m = c.metrics() // the HTTP side answers during the flood
			if metricValue(m, "wasmbed_gateway_"+refused) == 3*childNoFile-fit &&
				metricValue(m, gateway.MetricPending) == fit {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("want %d pending and the rest refused (max-pending):\n%s\nstderr:\n%s", fit, m, c.stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		if v := metricValue(m, gateway.MetricMaxSessions); v != fit {
			t.Errorf("%s = %v, want %d", gateway.MetricMaxSessions, v, fit)
		}
		if strings.Contains(m, gateway.MetricAcceptErrors+"{") {
			t.Errorf("accept failed although the limits fit the descriptors:\n%s", m)
		}
		closeIdle()
		c.connectDevice("fd-")
		c.stop()
	})
	t.Run("accept survives EMFILE", func(t *testing.T) {
		c := startChild(t, childLimitsEnv+"=off")
		closeIdle := c.idleConns(3 * childNoFile)
		c.waitLog(15*time.Second, "accept failed", `"error":"emfile"`)
		time.Sleep(200 * time.Millisecond) // a few more failed accepts, with backoff
		c.alive()
		closeIdle()
		c.connectDevice("fd-")
		m := c.metrics()
		if metricValue(m, gateway.MetricAcceptErrors+`{error="emfile"}`) < 1 {
			t.Errorf("no %s{error=\"emfile\"} in the metrics:\n%s", gateway.MetricAcceptErrors, m)
		}
		if metricValue(m, gateway.MetricSessions) != 1 {
			t.Errorf("want one session in the metrics:\n%s", m)
		}
		c.stop()
	})
}
