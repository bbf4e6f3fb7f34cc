package controlplane_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/config"
	"github.com/wasmbed/wasmbed/internal/controlplane"
	"github.com/wasmbed/wasmbed/internal/testenv"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestStateSurvivesRestart starts the control plane, stores a Device, stops it, starts it
// again on the same directory and finds the Device; kubectl works with the kubeconfig.
func TestStateSurvivesRestart(t *testing.T) {
	bin := os.Getenv("KUBEBUILDER_ASSETS")
	if bin == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run `make test`, or export KUBEBUILDER_ASSETS=$(hack/k8s-binaries.sh)")
	}
	dir := t.TempDir()
	cfg := controlplane.Config{
		Dir: dir, BinDir: bin,
		APIServerPort: freePort(t), EtcdPort: freePort(t), EtcdPeerPort: freePort(t),
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	start := func() (*controlplane.ControlPlane, client.Client) {
		cp, err := controlplane.Start(ctx, cfg)
		// Other tests running in parallel may take a port picked as free: pick again.
		for i := 0; i < 5 && err != nil && strings.Contains(err.Error(), "in use"); i++ {
			cfg.APIServerPort, cfg.EtcdPort, cfg.EtcdPeerPort = freePort(t), freePort(t), freePort(t)
			cp, err = controlplane.Start(ctx, cfg)
		}
		if err != nil {
			t.Fatalf("start: %v", err)
		}
		if err := controlplane.InstallCRDs(ctx, cp.RESTConfig(), config.CRDs, "300-crds"); err != nil {
			cp.Stop()
			t.Fatalf("install CRDs: %v", err)
		}
		scheme, err := testenv.NewScheme()
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.New(cp.RESTConfig(), client.Options{Scheme: scheme})
		if err != nil {
			t.Fatal(err)
		}
		return cp, c
	}

	cp, c := start()
	dev := &v1.Device{ObjectMeta: metav1.ObjectMeta{Name: "board-1", Namespace: "default"}, Spec: v1.DeviceSpec{Board: "virtual"}}
	if err := c.Create(ctx, dev); err != nil {
		cp.Stop()
		t.Fatalf("create device: %v", err)
	}
	if err := cp.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := cp.Stop(); err != nil {
		t.Fatalf("second stop: %v", err)
	}

	cp, c = start()
	defer cp.Stop()
	var got v1.Device
	if err := c.Get(ctx, client.ObjectKeyFromObject(dev), &got); err != nil {
		t.Fatalf("device lost across a restart: %v", err)
	}

	kubectl := bin + "/kubectl"
	out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", cp.Kubeconfig(), "get", "devices,applications,gateways").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl get: %v\n%s", err, out)
	}
	for _, col := range []string{"BOARD", "PHASE", "GATEWAY", "LAST SEEN", "board-1"} {
		if !strings.Contains(string(out), col) {
			t.Errorf("kubectl output lacks %q:\n%s", col, out)
		}
	}
}

func TestStartRefusesBusyPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	bin := os.Getenv("KUBEBUILDER_ASSETS")
	_, err = controlplane.Start(context.Background(), controlplane.Config{
		Dir: t.TempDir(), BinDir: bin, APIServerPort: l.Addr().(*net.TCPAddr).Port, EtcdPort: freePort(t), EtcdPeerPort: freePort(t),
	})
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("Start on a busy port: err = %v, want one saying the port is in use", err)
	}
}

func TestStartExplainsMissingBinaries(t *testing.T) {
	_, err := controlplane.Start(context.Background(), controlplane.Config{Dir: t.TempDir(), BinDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "hack/k8s-binaries.sh") {
		t.Fatalf("err = %v, want a hint to build the binaries", err)
	}
}
