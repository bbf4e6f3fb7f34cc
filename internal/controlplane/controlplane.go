// Package controlplane runs a local Kubernetes control plane, etcd and kube-apiserver
// as child processes, for the embedded platform (`wasmbed dev`, `make run`). State lives
// in a directory, so objects survive a restart; the binaries come from
// hack/k8s-binaries.sh.
package controlplane

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Default ports, chosen away from a real cluster's 2379/6443 so both can run side by side.
const (
	DefaultAPIServerPort = 16443
	DefaultEtcdPort      = 12379
	// AdminUser is the user of the admin token, in group system:masters.
	AdminUser = "wasmbed-admin"
)

// Config says where the control plane keeps its state and which ports it uses.
type Config struct {
	// Dir holds etcd's data, the apiserver's certificates, tokens, the kubeconfig and logs.
	Dir string
	// BinDir holds kube-apiserver and etcd (KUBEBUILDER_ASSETS).
	BinDir string
	// APIServerPort, EtcdPort and EtcdPeerPort are loopback ports; zero means the
	// defaults (the peer port defaults to EtcdPort+1).
	APIServerPort, EtcdPort, EtcdPeerPort int
	// Logger receives progress lines.
	Logger *slog.Logger
}

// ControlPlane is a running etcd and kube-apiserver.
type ControlPlane struct {
	cfg      Config
	rest     *rest.Config
	token    string
	procs    []*process
	stopOnce sync.Once
	stopErr  error
}

// Start starts etcd and kube-apiserver and waits until the apiserver is ready. The
// caller must call Stop. Cancelling ctx during start-up stops what was started.
func Start(ctx context.Context, cfg Config) (*ControlPlane, error) {
	if cfg.APIServerPort == 0 {
		cfg.APIServerPort = DefaultAPIServerPort
	}
	if cfg.EtcdPort == 0 {
		cfg.EtcdPort = DefaultEtcdPort
	}
	if cfg.EtcdPeerPort == 0 {
		cfg.EtcdPeerPort = cfg.EtcdPort + 1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	for _, bin := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(cfg.BinDir, bin)); err != nil {
			return nil, fmt.Errorf("%s not found in %q: build it with hack/k8s-binaries.sh", bin, cfg.BinDir)
		}
	}
	for _, port := range []int{cfg.APIServerPort, cfg.EtcdPort, cfg.EtcdPeerPort} {
		if err := portFree(port); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{"etcd", "pki", "logs"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("create state dir: %w", err)
		}
	}
	cp := &ControlPlane{cfg: cfg}
	ok := false
	defer func() {
		if !ok {
			_ = cp.Stop()
		}
	}()

	if err := cp.startEtcd(ctx); err != nil {
		return nil, err
	}
	if err := cp.startAPIServer(ctx); err != nil {
		return nil, err
	}
	ok = true
	return cp, nil
}

// RESTConfig returns a client configuration for the admin user.
func (cp *ControlPlane) RESTConfig() *rest.Config { return rest.CopyConfig(cp.rest) }

// Token returns the admin bearer token.
func (cp *ControlPlane) Token() string { return cp.token }

// Kubeconfig returns the path of the kubeconfig written for the admin user.
func (cp *ControlPlane) Kubeconfig() string { return filepath.Join(cp.cfg.Dir, "kubeconfig") }

// Endpoint returns the apiserver's URL.
func (cp *ControlPlane) Endpoint() string { return cp.rest.Host }

// Stop stops the apiserver, then etcd, and reports the first error. It is idempotent.
func (cp *ControlPlane) Stop() error {
	cp.stopOnce.Do(func() {
		for i := len(cp.procs) - 1; i >= 0; i-- {
			if err := cp.procs[i].stop(15 * time.Second); err != nil && cp.stopErr == nil {
				cp.stopErr = err
			}
		}
	})
	return cp.stopErr
}

func (cp *ControlPlane) startEtcd(ctx context.Context) error {
	client := fmt.Sprintf("http://127.0.0.1:%d", cp.cfg.EtcdPort)
	peer := fmt.Sprintf("http://127.0.0.1:%d", cp.cfg.EtcdPeerPort)
	p, err := cp.spawn("etcd",
		"--name=wasmbed-dev",
		"--data-dir="+filepath.Join(cp.cfg.Dir, "etcd"),
		"--listen-client-urls="+client,
		"--advertise-client-urls="+client,
		"--listen-peer-urls="+peer,
		"--initial-advertise-peer-urls="+peer,
		"--initial-cluster=wasmbed-dev="+peer,
		"--quota-backend-bytes=2147483648",
		"--log-level=warn",
	)
	if err != nil {
		return err
	}
	return waitFor(ctx, p, "etcd", 60*time.Second, func(c context.Context) error {
		req, _ := http.NewRequestWithContext(c, http.MethodGet, client+"/health", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("etcd /health: %s", resp.Status)
		}
		return nil
	})
}

func (cp *ControlPlane) startAPIServer(ctx context.Context) error {
	pki := filepath.Join(cp.cfg.Dir, "pki")
	saKey := filepath.Join(pki, "service-account.key")
	if err := ensureKey(saKey); err != nil {
		return err
	}
	token, err := ensureToken(filepath.Join(pki, "admin.token"))
	if err != nil {
		return err
	}
	cp.token = token
	tokens := filepath.Join(pki, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(fmt.Sprintf("%s,%s,%s,system:masters\n", token, AdminUser, AdminUser)), 0o600); err != nil {
		return fmt.Errorf("write token file: %w", err)
	}
	port := strconv.Itoa(cp.cfg.APIServerPort)
	p, err := cp.spawn("kube-apiserver",
		"--etcd-servers="+fmt.Sprintf("http://127.0.0.1:%d", cp.cfg.EtcdPort),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+port,
		// The apiserver generates (once) and reuses a self-signed serving certificate here.
		"--cert-dir="+pki,
		"--token-auth-file="+tokens,
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.96.0.0/16",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+saKey,
		"--service-account-signing-key-file="+saKey,
		"--allow-privileged=true",
		"--enable-priority-and-fairness=false",
		"--v=0",
	)
	if err != nil {
		return err
	}
	if err := waitFor(ctx, p, "kube-apiserver", 2*time.Minute, func(context.Context) error {
		_, err := os.Stat(filepath.Join(pki, "apiserver.crt"))
		return err
	}); err != nil {
		return err
	}
	caPEM, err := os.ReadFile(filepath.Join(pki, "apiserver.crt"))
	if err != nil {
		return fmt.Errorf("read apiserver certificate: %w", err)
	}
	cp.rest = &rest.Config{
		Host:            "https://127.0.0.1:" + port,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: caPEM},
		QPS:             200,
		Burst:           400,
	}
	if err := cp.writeKubeconfig(caPEM); err != nil {
		return err
	}
	hc, err := rest.HTTPClientFor(cp.rest)
	if err != nil {
		return fmt.Errorf("apiserver client: %w", err)
	}
	return waitFor(ctx, p, "kube-apiserver", 2*time.Minute, func(c context.Context) error {
		req, _ := http.NewRequestWithContext(c, http.MethodGet, cp.rest.Host+"/readyz", nil)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			return fmt.Errorf("/readyz: %s %s", resp.Status, body)
		}
		return nil
	})
}

func (cp *ControlPlane) writeKubeconfig(caPEM []byte) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["wasmbed-dev"] = &clientcmdapi.Cluster{Server: cp.rest.Host, CertificateAuthorityData: caPEM}
	kc.AuthInfos[AdminUser] = &clientcmdapi.AuthInfo{Token: cp.token}
	kc.Contexts["wasmbed-dev"] = &clientcmdapi.Context{Cluster: "wasmbed-dev", AuthInfo: AdminUser, Namespace: "default"}
	kc.CurrentContext = "wasmbed-dev"
	if err := clientcmd.WriteToFile(*kc, cp.Kubeconfig()); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}

// spawn starts a binary from BinDir with its output in Dir/logs/<name>.log.
func (cp *ControlPlane) spawn(name string, args ...string) (*process, error) {
	logPath := filepath.Join(cp.cfg.Dir, "logs", name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", name, err)
	}
	cmd := exec.Command(filepath.Join(cp.cfg.BinDir, name), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: a Ctrl-C in the terminal reaches us, and we stop children in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logf, logPath: logPath, done: make(chan struct{})}
	go p.wait()
	cp.procs = append(cp.procs, p)
	cp.cfg.Logger.Info("started", "component", name, "pid", cmd.Process.Pid, "log", logPath)
	return p, nil
}

// process is one child process; wait owns cmd.Wait and closes done.
type process struct {
	name    string
	cmd     *exec.Cmd
	log     *os.File
	logPath string
	done    chan struct{}
	err     error
}

func (p *process) wait() {
	p.err = p.cmd.Wait()
	p.log.Close()
	close(p.done)
}

// Done is closed when the process exits.
func (p *process) Done() <-chan struct{} { return p.done }

func (p *process) stop(grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %s and was killed", p.name, grace)
	}
}

// Exited returns a channel closed when any control-plane process exits.
func (cp *ControlPlane) Exited() <-chan string {
	ch := make(chan string, len(cp.procs))
	for _, p := range cp.procs {
		go func(p *process) {
			<-p.done
			ch <- fmt.Sprintf("%s exited (%v); see %s", p.name, p.err, p.logPath)
		}(p)
	}
	return ch
}

// waitFor polls check until it succeeds, the process dies, or the timeout passes.
func waitFor(ctx context.Context, p *process, what string, timeout time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		c, cancelCheck := context.WithTimeout(ctx, 2*time.Second)
		last = check(c)
		cancelCheck()
		if last == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited during start-up (%v); see %s", what, p.err, p.logPath)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %v (log: %s)", what, timeout, last, p.logPath)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func portFree(port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("port %d is in use (is another `wasmbed dev` running?): %w", port, err)
	}
	return l.Close()
}

func ensureKey(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate service account key: %w", err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode service account key: %w", err)
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
}

func ensureToken(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(b) >= 32 {
		return string(b), nil
	}
	buf := make([]byte, 24)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("generate admin token: %w", err)
	}
	tok := hex.EncodeToString(buf)
	if err := os.WriteFile(path, []byte(tok), 0o600); err != nil {
		return "", fmt.Errorf("write admin token: %w", err)
	}
	return tok, nil
}
