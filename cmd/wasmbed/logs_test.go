package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wasmbed/wasmbed/internal/devicelog"
	"github.com/wasmbed/wasmbed/internal/testenv"
	"github.com/wasmbed/wasmbed/platform"
	wasmfix "github.com/wasmbed/wasmbed/testdata/wasm"
)

// tokenFor creates a ServiceAccount in namespace ns allowed rules there, and returns a
// token the apiserver issues to it.
func tokenFor(t *testing.T, e *testenv.Env, ns, name string, rules []rbacv1.PolicyRule) string {
	t.Helper()
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Rules: rules}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: ns}}}
	for _, o := range []client.Object{sa, role, rb} {
		if err := e.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	cs, err := kubernetes.NewForConfig(e.Config)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authnv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// TestLogsOfADeviceOnARunningPlatform runs the embedded platform (`make run` without
// QEMU) on its own apiserver, deploys a real module with the CLI, waits for its
// rollout, and reads the device's log through the console and through the
// apiserver's service proxy to the gateway.
func TestLogsOfADeviceOnARunningPlatform(t *testing.T) {
	penv := testenv.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	p, err := platform.Start(ctx, platform.Config{REST: penv.Config, Dir: t.TempDir(), Devices: 2, Resync: time.Second,
		Logs: platform.NewLogs(io.Discard, slog.LevelInfo)})
	if err != nil {
		t.Fatalf("start platform: %v", err)
	}
	defer p.Stop()
	admin := kubeconfigFor(t, penv.Config, "default", "")
	dir := t.TempDir()
	blink := writeFile(t, dir, "blink.wasm", wasmfix.Blink)

	code, stdout, stderr := runCLI(t, "deploy", blink, "--name", "blink", "--device", "sim-0", "--wait", "--timeout", "3m", "--kubeconfig", admin)
	if code != 0 || !strings.Contains(stdout, "application default/blink successfully rolled out: 1 devices run") {
		t.Fatalf("deploy --wait: exit %d\n%s%s", code, stdout, stderr)
	}

	reader := kubeconfigFor(t, penv.Config, "default", tokenFor(t, penv, "default", "log-reader",
		[]rbacv1.PolicyRule{{APIGroups: []string{"wasmbed.dev"}, Resources: []string{"devices"}, Verbs: []string{"get"}}}))
	nobody := kubeconfigFor(t, penv.Config, "default", tokenFor(t, penv, "default", "nobody", nil))
	console := "http://" + p.Addr("console")
	blinkLine := " info blink: blink: started"
	waitFor := func(args []string, want string) string {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			code, stdout, stderr := runCLI(t, args...)
			if code == 0 && strings.Contains(stdout, want) {
				return stdout
			}
			if time.Now().After(deadline) {
				t.Fatalf("%v: exit %d\n%s%s", args, code, stdout, stderr)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	t.Run("through the console as the user", func(t *testing.T) {
		out := waitFor([]string{"logs", "sim-0", "--console", console, "--kubeconfig", reader}, blinkLine)
		if strings.Count(out, "blink: started") != 1 {
			t.Errorf("log:\n%s", out)
		}
		code, _, stderr := runCLI(t, "logs", "sim-0", "--console", console, "--kubeconfig", nobody)
		if code != 1 || !strings.Contains(stderr, "console answered 403 Forbidden") {
			t.Errorf("without rights: exit %d, %q", code, stderr)
		}
		code, _, stderr = runCLI(t, "logs", "sim-0", "--console", console, "--kubeconfig", admin)
		if code != 2 || !strings.Contains(stderr, "pass --token") {
			t.Errorf("a client-certificate user: exit %d, %q", code, stderr)
		}
		// Lines older than --since are left out.
		code, stdout, stderr := runCLI(t, "logs", "sim-0", "--since", "1ms", "--console", console, "--kubeconfig", reader)
		if code != 0 || strings.Contains(stdout, "blink: started") || !strings.Contains(stderr, "no log lines in the last 1ms") {
			t.Errorf("--since: exit %d\n%s%s", code, stdout, stderr)
		}
		t.Setenv("WASMBED_CONSOLE", console)
		waitFor([]string{"logs", "sim-0", "--kubeconfig", reader}, blinkLine)
	})
	t.Run("following new lines", func(t *testing.T) {
		var out, errb syncBuffer
		fctx, stop := context.WithCancel(ctx)
		done := make(chan int, 1)
		go func() {
			done <- run(fctx, []string{"logs", "sim-0", "-f", "--console", console, "--kubeconfig", reader}, &out, &errb)
		}()
		// A second application on the device logs its start once.
		hello := writeFile(t, dir, "hello.wasm", wasmfix.Blink)
		if code, _, stderr := runCLI(t, "deploy", hello, "--name", "hello", "--device", "sim-0", "--wait", "--timeout", "3m", "--kubeconfig", admin); code != 0 {
			t.Fatalf("deploy hello: %s", stderr)
		}
		deadline := time.Now().Add(time.Minute)
		for !strings.Contains(out.String(), " info hello: blink: started") {
			if time.Now().After(deadline) {
				t.Fatalf("-f did not print the new line:\n%s%s", out.String(), errb.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(3 * logPollMin) // more polls must not print the lines again
		stop()
		if code := <-done; code != 0 {
			t.Fatalf("-f ended with %d: %s", code, errb.String())
		}
		if got := out.String(); strings.Count(got, "blink: started") != 2 || !strings.HasPrefix(got, time.Now().UTC().Format("2006-")) {
			t.Errorf("-f printed:\n%s", got)
		}
	})
	t.Run("through the apiserver's service proxy", func(t *testing.T) {
		// The apiserver refuses loopback endpoints, and these tests stay on loopback:
		// the request the CLI makes is checked against the real apiserver (service,
		// port name, RBAC), and the answer against the real gateway's handler.
		proxyReader := kubeconfigFor(t, penv.Config, "default", tokenFor(t, penv, "default", "proxy-reader",
			[]rbacv1.PolicyRule{{APIGroups: []string{"wasmbed.dev"}, Resources: []string{"devices"}, Verbs: []string{"get"}}}))
		if err := penv.Client.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "proxy", Namespace: "wasmbed-system"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"services/proxy"}, Verbs: []string{"get"}}}}); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := runCLI(t, "logs", "sim-0", "--kubeconfig", admin)
		if code != 1 || !strings.Contains(stderr, "gateway wasmbed-system/gateway through the apiserver's service proxy") || !strings.Contains(stderr, `services "gateway-http" not found`) {
			t.Fatalf("without the Service: exit %d, %q", code, stderr)
		}
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "gateway-http", Namespace: "wasmbed-system"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 8080, TargetPort: intstr.FromString("http")}}}}
		// No controller-manager runs here: the Endpoints of a Service without ready pods.
		eps := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "gateway-http", Namespace: "wasmbed-system"}}
		for _, o := range []client.Object{svc, eps} {
			if err := penv.Client.Create(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
		code, _, stderr = runCLI(t, "logs", "sim-0", "--kubeconfig", admin)
		if code != 1 || !strings.Contains(stderr, `no endpoints available for service "gateway-http"`) {
			t.Fatalf("the proxy did not reach the Service's http port: exit %d, %q", code, stderr)
		}
		code, _, stderr = runCLI(t, "logs", "sim-0", "--kubeconfig", proxyReader)
		if code != 1 || !strings.Contains(stderr, `cannot get resource "services/proxy"`) {
			t.Fatalf("without services/proxy: exit %d, %q", code, stderr)
		}
		if err := penv.Client.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "proxy", Namespace: "wasmbed-system"},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "proxy"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "proxy-reader", Namespace: "default"}}}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, _, stderr = runCLI(t, "logs", "sim-0", "--kubeconfig", proxyReader)
			if strings.Contains(stderr, "no endpoints available") || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if code != 1 || !strings.Contains(stderr, "no endpoints available") {
			t.Fatalf("with services/proxy: exit %d, %q", code, stderr)
		}
		// What the proxy would return: the gateway's own answer, which the CLI decodes.
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Addr("gateway-http")+"/devices/default/sim-0/log", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		l, err := devicelog.Decode(body)
		if err != nil || !l.Connected || l.Device != "default/sim-0" || len(l.Lines) == 0 ||
			!strings.Contains(devicelog.Format(l.Lines[0]), blinkLine) {
			t.Fatalf("the gateway's answer: %v %+v", err, l)
		}
	})
}
