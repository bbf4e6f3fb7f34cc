// Package testenv starts a real kube-apiserver and etcd (controller-runtime's envtest)
// with the Wasmbed CRDs and Knative Serving and Eventing's own CRDs installed, for tests.
//
// The binaries come from hack/k8s-binaries.sh through KUBEBUILDER_ASSETS (the Makefile
// sets it). When they are missing the test fails and says how to build them: a test
// that needs an apiserver is never skipped silently.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	flowsv1 "knative.dev/eventing/pkg/apis/flows/v1"
	messagingv1 "knative.dev/eventing/pkg/apis/messaging/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	wasmbedv1alpha1 "github.com/wasmbed/wasmbed/api/v1alpha1"
)

// Env is a running control plane.
type Env struct {
	// Config reaches the apiserver as an administrator.
	Config *rest.Config
	// Client is a controller-runtime client with Scheme.
	Client client.Client
	// Scheme knows the Kubernetes, Wasmbed and Knative types.
	Scheme *k8sruntime.Scheme
	// Environment is the underlying envtest environment.
	Environment *envtest.Environment
}

// NewScheme returns a scheme with the built-in Kubernetes kinds, the Wasmbed kinds and
// the Knative Serving, Eventing, Messaging and Flows kinds.
func NewScheme() (*k8sruntime.Scheme, error) {
	s := k8sruntime.NewScheme()
	for _, add := range []func(*k8sruntime.Scheme) error{
		clientgoscheme.AddToScheme,
		wasmbedv1alpha1.AddToScheme,
		servingv1.AddToScheme,
		eventingv1.AddToScheme,
		messagingv1.AddToScheme,
		flowsv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("build scheme: %w", err)
		}
	}
	return s, nil
}

// RepoRoot returns the root of the Wasmbed checkout.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// CRDDirs returns the folders with the Wasmbed CRDs and Knative's own CRDs.
func CRDDirs() ([]string, error) {
	dirs := []string{filepath.Join(RepoRoot(), "config", "300-crds")}
	for _, m := range []struct{ module, sub string }{
		{"knative.dev/serving", "config/core/300-resources"},
		{"knative.dev/eventing", "config/core/resources"},
	} {
		dir, err := moduleDir(m.module)
		if err != nil {
			return nil, err
		}
		dirs = append(dirs, filepath.Join(dir, filepath.FromSlash(m.sub)))
	}
	return dirs, nil
}

func moduleDir(module string) (string, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module)
	cmd.Dir = RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("find module %s (go list -m): %w", module, err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("module %s is not downloaded: run go mod download", module)
	}
	return dir, nil
}

// checkAssets explains how to get the control-plane binaries when they are missing.
func checkAssets() error {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		return fmt.Errorf("KUBEBUILDER_ASSETS is not set: run the tests with `make test`, or export KUBEBUILDER_ASSETS=$(hack/k8s-binaries.sh)")
	}
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return fmt.Errorf("KUBEBUILDER_ASSETS=%s has no %s: build it with hack/k8s-binaries.sh", dir, bin)
		}
	}
	return nil
}

// Start starts a control plane and stops it when the test ends. It fails the test when
// the binaries are missing.
func Start(t testing.TB) *Env {
	t.Helper()
	env, err := StartEnv()
	if err != nil {
		t.Fatalf("start test apiserver: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop test apiserver: %v", err)
		}
	})
	return env
}

// StartEnv starts a control plane; the caller must call Stop. Use it from TestMain.
func StartEnv() (*Env, error) {
	if err := checkAssets(); err != nil {
		return nil, err
	}
	scheme, err := NewScheme()
	if err != nil {
		return nil, err
	}
	dirs, err := CRDDirs()
	if err != nil {
		return nil, err
	}
	te := &envtest.Environment{
		CRDDirectoryPaths:     dirs,
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	cfg, err := te.Start()
	if err != nil {
		return nil, fmt.Errorf("envtest: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = te.Stop()
		return nil, fmt.Errorf("client: %w", err)
	}
	return &Env{Config: cfg, Client: c, Scheme: scheme, Environment: te}, nil
}

// Stop stops the control plane.
func (e *Env) Stop() error { return e.Environment.Stop() }

// Main is a whole TestMain for packages whose tests share one control plane: it starts
// it into *env, runs the tests, stops it and exits with the tests' code.
func Main(m *testing.M, env **Env) {
	e, err := StartEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start test apiserver:", err)
		os.Exit(1)
	}
	*env = e
	code := m.Run()
	if err := e.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop test apiserver:", err)
	}
	os.Exit(code)
}
