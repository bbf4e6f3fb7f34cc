package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/config"
	"github.com/wasmbed/wasmbed/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	// Linked as kubectl-wasmbed, the test binary is the tool, so that kubectl can run
	// it as a plugin (TestKubectlRunsThePlugin).
	if name := commandName(os.Args[0]); name != "wasmbed" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		code := runAs(ctx, name, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	testenv.Main(m, &env)
}

// TestKubectlRunsThePlugin runs the real kubectl with kubectl-wasmbed on PATH.
func TestKubectlRunsThePlugin(t *testing.T) {
	kubectl := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	if err := os.Symlink(self, filepath.Join(bin, pluginName)); err != nil {
		t.Fatal(err)
	}
	createNamespace(t, "plugin")
	create(t, &v1.Device{ObjectMeta: metav1.ObjectMeta{Name: "board-7", Namespace: "plugin"}, Spec: v1.DeviceSpec{Board: "virtual"}}, nil)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"plugin", "list", "--name-only"}, 0, pluginName},
		{[]string{"wasmbed", "version"}, 0, runtime.Version()},
		{[]string{"wasmbed", "get", "--help"}, 0, "  kubectl wasmbed get devices -A -o wide"},
		{[]string{"wasmbed", "get", "devices", "-n", "plugin", "--kubeconfig", kubeconfig(t, "default")}, 0, "board-7"},
		{[]string{"wasmbed", "get", "pods"}, 2, `kubectl wasmbed get: usage: unknown resource type "pods"`},
	} {
		cmd := exec.Command(kubectl, tc.args...)
		cmd.Env = append(os.Environ(), "PATH="+bin)
		out, err := cmd.CombinedOutput()
		code := cmd.ProcessState.ExitCode()
		if code != tc.code || !strings.Contains(string(out), tc.want) {
			t.Errorf("kubectl %v: exit %d (%v), want %d with %q:\n%s", tc.args, code, err, tc.code, tc.want, out)
		}
	}
}

// kubeconfig writes a kubeconfig for the test apiserver whose context's namespace is
// namespace and returns its path.
func kubeconfig(t *testing.T, namespace string) string {
	t.Helper()
	return kubeconfigFor(t, env.Config, namespace, "")
}

// kubeconfigFor writes a kubeconfig for the apiserver of c, as c's user or, when token
// is set, as the holder of token.
func kubeconfigFor(t *testing.T, c *rest.Config, namespace, token string) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: c.Host, CertificateAuthorityData: c.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: c.CertData, ClientKeyData: c.KeyData, Token: c.BearerToken}
	if token != "" {
		kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: token}
	}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin", Namespace: namespace}
	kc.CurrentContext = "test"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// createNamespace creates a namespace for one test.
func createNamespace(t *testing.T, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.Client.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// walk calls fn for c and every command under it.
func walk(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, sub := range c.Commands() {
		walk(sub, fn)
	}
}

func TestCommandTreeKeepsEveryCommandAndShowsExamples(t *testing.T) {
	root := newRoot("wasmbed")
	want := []string{"pki init", "pki gateway", "pki device", "pki keys", "dev", "device sim", "board run", "board list",
		"version", "completion", "get", "deploy", "rollout status", "logs"}
	for _, w := range want {
		c, rest, err := root.Find(strings.Fields(w))
		if err != nil || len(rest) > 0 || c.CommandPath() != "wasmbed "+w {
			t.Errorf("command %q: found %v (rest %v, err %v)", w, c.CommandPath(), rest, err)
		}
	}
	walk(root, func(c *cobra.Command) {
		if !c.Runnable() || c.Name() == "help" {
			return
		}
		path := strings.Fields(c.CommandPath())[1:]
		code, stdout, stderr := runCLI(t, append(path, "--help")...)
		if code != 0 || !strings.Contains(stdout, "Examples:\n  ") || !strings.Contains(stdout, "  wasmbed "+strings.Join(path, " ")) {
			t.Errorf("%s --help: exit %d, stderr %q, no example of the command:\n%s", c.CommandPath(), code, stderr, stdout)
		}
	})
	// The cluster commands list kubectl's connection flags apart from their own.
	if _, stdout, _ := runCLI(t, "get", "--help"); !regexp.MustCompile(`(?s)Flags:\n.*--output.*\n\nConnection flags \(as kubectl's\):\n.*--kubeconfig.*-n, --namespace`).MatchString(stdout) ||
		strings.Contains(stdout[:strings.Index(stdout, "Connection flags")], "--kubeconfig") {
		t.Errorf("get --help:\n%s", stdout)
	}
	// The wrapped commands list their own flags in the help.
	if _, stdout, _ := runCLI(t, "board", "run", "--help"); !strings.Contains(stdout, "--ca-cert string") || !strings.Contains(stdout, "--uart-port int") {
		t.Errorf("board run --help lacks its flags:\n%s", stdout)
	}
	if _, stdout, _ := runCLI(t, "__complete", "pki", "device", "--na"); !strings.Contains(stdout, "--name") || !strings.Contains(stdout, "--namespace") {
		t.Errorf("flag completion of a wrapped command: %q", stdout)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"nope"}, 2, `unknown command "nope"`},
		{[]string{"board", "nope"}, 2, `unknown command "nope" for "wasmbed board"`},
		{[]string{"get"}, 2, "name a resource type"},
		{[]string{"get", "pods"}, 2, `unknown resource type "pods"`},
		{[]string{"get", "apps", "--bogus"}, 2, "unknown flag: --bogus"},
		{[]string{"pki", "init", "--bogus"}, 2, "wasmbed pki init: usage: flag provided but not defined: -bogus"},
		{[]string{"completion", "tcsh"}, 2, `unknown shell "tcsh"`},
		{[]string{"logs", "sim-0/../x"}, 2, `device "sim-0/../x" is not a valid name`},
		{[]string{"logs", "a", "b"}, 2, "want 1 argument (the Device's name), got 2"},
	} {
		code, _, stderr := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d with %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}

func TestCompletionScripts(t *testing.T) {
	for _, tc := range []struct{ shell, want string }{
		{"bash", "__start_wasmbed"},
		{"zsh", "#compdef wasmbed"},
		{"fish", "complete -c wasmbed"},
		{"powershell", "Register-ArgumentCompleter"},
	} {
		code, stdout, stderr := runCLI(t, "completion", tc.shell)
		if code != 0 || !strings.Contains(stdout, tc.want) {
			t.Errorf("completion %s: exit %d, stderr %q, script lacks %q", tc.shell, code, stderr, tc.want)
		}
	}
	if _, stdout, _ := runCLI(t, "__complete", "get", ""); !strings.Contains(stdout, "apps\ndevices\ngateways\n") {
		t.Errorf("get completes %q", stdout)
	}
}

func TestKubectlPluginName(t *testing.T) {
	for _, tc := range []struct{ argv0, want string }{
		{"wasmbed", "wasmbed"},
		{"/usr/local/bin/wasmbed", "wasmbed"},
		{"/home/u/bin/kubectl-wasmbed", "kubectl wasmbed"},
		{"kubectl-wasmbed", "kubectl wasmbed"},
		{`C:\bin\kubectl-wasmbed.exe`, "kubectl wasmbed"},
		{"kubectl-wasmbed-old", "wasmbed"},
	} {
		if got := commandName(filepath.FromSlash(strings.ReplaceAll(tc.argv0, `\`, "/"))); got != tc.want {
			t.Errorf("commandName(%q) = %q, want %q", tc.argv0, got, tc.want)
		}
	}
	var out, errb bytes.Buffer
	if code := runAs(context.Background(), "kubectl wasmbed", []string{"get", "--help"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"kubectl wasmbed get apps|devices|gateways [NAME...] [flags]", "  kubectl wasmbed get devices -A -o wide"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("plugin help lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	errb.Reset()
	if code := runAs(context.Background(), "kubectl wasmbed", []string{"get", "pods"}, &out, &errb); code != 2 || !strings.HasPrefix(errb.String(), "kubectl wasmbed get: ") {
		t.Errorf("plugin error: exit %d, %q", code, errb.String())
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := runCLI(t, "version")
	if code != 0 || !strings.Contains(stdout, runtime.Version()) || !strings.HasPrefix(stdout, "wasmbed ") {
		t.Fatalf("version: exit %d:\n%s", code, stdout)
	}
	version, commit = "v1.2.3", "0123abc"
	defer func() { version, commit = "", "" }()
	code, stdout, _ = runCLI(t, "version", "-o", "json")
	var v buildVersion
	if err := json.Unmarshal([]byte(stdout), &v); code != 0 || err != nil || v.Version != "v1.2.3" || v.Commit != "0123abc" || v.GoVersion != runtime.Version() {
		t.Fatalf("version -o json: exit %d, %v: %+v", code, err, v)
	}
	if code, _, stderr := runCLI(t, "version", "-o", "xml"); code != 2 || !strings.Contains(stderr, "json or yaml") {
		t.Errorf("version -o xml: exit %d, %q", code, stderr)
	}
}

// TestTableColumnsAreTheCRDsPrinterColumns keeps `wasmbed get` in step with `kubectl
// get`: the same headers, the priority-1 ones only with -o wide.
func TestTableColumnsAreTheCRDsPrinterColumns(t *testing.T) {
	for _, res := range resources {
		b, err := config.CRDs.ReadFile("300-crds/wasmbed.dev_" + res.plural + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(b, &crd); err != nil {
			t.Fatal(err)
		}
		var want, got []string
		for _, c := range crd.Spec.Versions[0].AdditionalPrinterColumns {
			want = append(want, strings.ToUpper(c.Name)+map[bool]string{true: " (wide)"}[c.Priority > 0])
		}
		for _, c := range res.columns {
			got = append(got, c.header+map[bool]string{true: " (wide)"}[c.wide])
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: columns %v, the CRD's %v", res.plural, got, want)
		}
	}
}

func TestGetHonoursKUBECONFIGAndTheContextsNamespace(t *testing.T) {
	// KUBECONFIG is honoured, and the context's namespace is the default.
	createNamespace(t, "env-ns")
	t.Setenv("KUBECONFIG", kubeconfig(t, "env-ns"))
	code, _, stderr := runCLI(t, "get", "apps")
	if code != 0 || !strings.Contains(stderr, "No applications found in env-ns namespace.") {
		t.Fatalf("get apps with $KUBECONFIG: exit %d, %q", code, stderr)
	}
}
