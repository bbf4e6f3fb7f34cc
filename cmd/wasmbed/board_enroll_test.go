package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/gateway"
	"github.com/wasmbed/wasmbed/internal/pki"
	"github.com/wasmbed/wasmbed/internal/testenv"
	devicectl "github.com/wasmbed/wasmbed/operator/device"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestBoardRunEnrollsThroughCSR runs `wasmbed board run` with only the CA's certificate
// and a kubeconfig: the STM32F4 Discovery firmware on QEMU gets its certificate from a
// CertificateSigningRequest the operator approves and signs, and reaches a real gateway
// as its Device.
func TestBoardRunEnrollsThroughCSR(t *testing.T) {
	fw := filepath.Join(testenv.RepoRoot(), "firmware", "build", "stm32f4-discovery", "firmware.elf")
	if _, err := os.Stat(fw); err != nil {
		t.Fatalf("no firmware image (%v): build it with `make -C firmware boards` (make test does)", err)
	}
	if _, err := exec.LookPath("qemu-system-arm"); err != nil {
		t.Fatalf("qemu-system-arm is not installed (hack/deps.sh installs it): %v", err)
	}
	env := testenv.Start(t)
	ctx := context.Background()
	ca, err := pki.NewCA("board run test ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	// The operator's approver and signer hold the CA.
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{Scheme: env.Scheme,
		Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Cache: cache.Options{ByObject: devicectl.CacheByObject()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := devicectl.SetupWithManager(mgr, devicectl.Options{CA: ca}); err != nil {
		t.Fatal(err)
	}
	opCtx, stopOp := context.WithCancel(ctx)
	opDone := make(chan error, 1)
	go func() { opDone <- mgr.Start(opCtx) }()
	t.Cleanup(func() {
		stopOp()
		if err := <-opDone; err != nil {
			t.Errorf("operator: %v", err)
		}
	})

	// A gateway with real TLS.
	certPEM, keyPEM, err := ca.IssueServer([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	gwLogs := &lockedBuffer{}
	srv, err := gateway.New(gateway.NewConfig(ca.Pool(), cert).WithName("wasmbed-system/gw-test").
		WithRegisterer(prometheus.NewRegistry()).WithLogger(slog.New(slog.NewTextHandler(gwLogs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})

	// What the command is given: the CA's certificate (no key) and a kubeconfig.
	dir := t.TempDir()
	caCert := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caCert, ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: env.Config.Host, CertificateAuthorityData: env.Config.CAData}
	kc.AuthInfos["test"] = &clientcmdapi.AuthInfo{ClientCertificateData: env.Config.CertData, ClientKeyData: env.Config.KeyData, Token: env.Config.BearerToken}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "test"}
	kc.CurrentContext = "test"
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		t.Fatal(err)
	}

	id := pki.Identity{Namespace: "lab", Name: "by-hand"}
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: id.Namespace}}); err != nil {
		t.Fatal(err)
	}
	d := &v1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: id.Namespace, Name: id.Name}, Spec: v1.DeviceSpec{Board: "stm32f4-discovery"}}
	if err := env.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}

	runCtx, stop := context.WithCancel(ctx)
	var stdout, stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(runCtx, []string{"board", "run", "--board", "stm32f4-discovery", "--device", id.String(),
			"--gateway", l.Addr().String(), "--server-name", "localhost", "--ca-cert", caCert,
			"--kubeconfig", kubeconfig, "--firmware", fw}, &stdout, &stderr)
	}()
	deadline := time.Now().Add(90 * time.Second)
	for !srv.Connected(id) {
		if time.Now().After(deadline) {
			stop()
			<-done
			t.Fatalf("the board never connected\nstdout:\n%s\nstderr:\n%s\ngateway:\n%s", stdout.String(), stderr.String(), gwLogs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	if code := <-done; code != 0 {
		t.Errorf("board run exited %d: %s", code, stderr.String())
	}
	var got v1.Device
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(d), &got); err != nil {
		t.Fatal(err)
	}
	if got.Status.PublicKeyHash == "" || got.Status.CertificateNotAfter == nil {
		t.Errorf("the Device records no enrolled key: %+v", got.Status)
	}
}
