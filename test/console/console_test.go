// Package console_test drives the web console in a real headless Chromium against the
// whole embedded platform (a real apiserver, the pipeline, the gateway and virtual
// devices): sign in, create an Application from the C blink example in the UI, watch
// it reach Running on every device, open a device. Screenshots are kept in
// test/console/artifacts/.
package console_test

import (
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"

	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/wasmbed/wasmbed/console"
	"github.com/wasmbed/wasmbed/internal/testenv"
	"github.com/wasmbed/wasmbed/platform"
)

const devices = 3

// prerequisites fails the test, saying how to fix it, when the browser or the
// script's node_modules are missing.
func prerequisites(t *testing.T, dir string) (chromium, node string) {
	t.Helper()
	chromium = os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("no Chromium at %s (set CHROMIUM to another path): install it with `apt-get install -y chromium` (hack/deps.sh)", chromium)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not installed: install Node 20 (hack/deps.sh)")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		t.Fatal("test/console/node_modules is missing: run console/web/install.sh (npm ci for the console and this test)")
	}
	return chromium, node
}

func TestConsoleInChromium(t *testing.T) {
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	chromium, node := prerequisites(t, dir)
	env := testenv.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	var logOut io.Writer = io.Discard
	if os.Getenv("E2E_LOGS") != "" {
		logOut = os.Stderr
	}
	logs := platform.NewLogs(logOut, slog.LevelInfo)
	p, err := platform.Start(ctx, platform.Config{REST: env.Config, Dir: t.TempDir(), Devices: devices, Resync: time.Second, Logs: logs})
	if err != nil {
		t.Fatalf("start platform: %v", err)
	}
	defer p.Stop()

	srv, err := console.New(console.Config{REST: env.Config, Logger: logs.For("console"),
		GatewayURL: func(gw v1.Ref) string {
			if gw.String() == platform.GatewayName {
				return "http://" + p.Addr("gateway-http")
			}
			return ""
		}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, l, nil) }()
	defer func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("console: %v", err)
		}
	}()
	url := "http://" + l.Addr().String()
	t.Logf("console at %s", url)

	// An Application whose second step waits for approval: the browser approves it.
	gated := &v1.Application{ObjectMeta: metav1.ObjectMeta{Name: "gated-ui", Namespace: "default"},
		Spec: v1.ApplicationSpec{
			Source:   v1.ApplicationSource{Inline: &v1.InlineSource{Language: v1.LanguageWAT, Code: `(module (func (export "loop") (result i32) i32.const 500))`}},
			Selector: metav1.LabelSelector{},
			Rollout: v1.RolloutSpec{Strategy: v1.RolloutCanary, Steps: []v1.CanaryStep{{Percent: 34}, {Percent: 100, RequireApproval: true}},
				Rate: &v1.RolloutRate{DevicesPerMinute: 600}},
		}}
	if err := env.Client.Create(ctx, gated); err != nil {
		t.Fatal(err)
	}

	token := adminToken(ctx, t, env)
	artifacts := filepath.Join(dir, "artifacts")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	bctx, bcancel := context.WithTimeout(ctx, 120*time.Second)
	defer bcancel()
	cmd := exec.CommandContext(bctx, node, filepath.Join(dir, "e2e.mjs"))
	cmd.Env = append(os.Environ(), "CONSOLE_URL="+url, "TOKEN="+token, "CHROMIUM="+chromium, "ARTIFACTS="+artifacts,
		"BLINK_FILE="+filepath.Join(testenv.RepoRoot(), "examples", "c", "blink.c"),
		fmt.Sprintf("DEVICES=%d", devices), "APP=blink-ui", "GATED="+gated.Name)
	out, err := cmd.CombinedOutput()
	t.Logf("browser script (%s):\n%s", time.Since(start).Round(time.Millisecond), out)
	t.Logf("screenshots in %s", artifacts)
	if err != nil {
		t.Fatalf("the browser test failed (%v): see the output above and %s/failure.png", err, artifacts)
	}
}

// adminToken returns a token of a ServiceAccount bound to cluster-admin: in `make run`
// the user pastes the static admin token instead; both are bearer tokens.
func adminToken(ctx context.Context, t *testing.T, env *testenv.Env) string {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "console-e2e", Namespace: "default"}}
	if err := env.Client.Create(ctx, sa); err != nil {
		t.Fatal(err)
	}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "console-e2e"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.Name, Namespace: sa.Namespace}}}
	if err := env.Client.Create(ctx, crb); err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(sa.Namespace).CreateToken(ctx, sa.Name, &authnv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	return tr.Status.Token
}
