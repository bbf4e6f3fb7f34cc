package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wasmbed/wasmbed/api/digest"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/wasmfile"
	wasmfix "github.com/wasmbed/wasmbed/testdata/wasm"
)

// writeFile writes b as dir/name and returns its path.
func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func getApp(t *testing.T, ns, name string) *v1.Application {
	t.Helper()
	var app v1.Application
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &app); err != nil {
		t.Fatal(err)
	}
	return &app
}

func getModuleConfigMap(t *testing.T, ns, app string) *corev1.ConfigMap {
	t.Helper()
	var cm corev1.ConfigMap
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: app + "-module"}, &cm); err != nil {
		t.Fatal(err)
	}
	return &cm
}

func TestDeployModuleCreatesConfigMapAndApplicationThenUpdatesThem(t *testing.T) {
	createNamespace(t, "deploy-a")
	kc := kubeconfig(t, "deploy-a")
	dir := t.TempDir()
	blink := writeFile(t, dir, "blink.wasm", wasmfix.Blink)
	cfg := writeFile(t, dir, "config.wasm", wasmfix.Config)

	code, stdout, stderr := runCLI(t, "deploy", blink, "--name", "blink", "--selector", "env=lab", "--kubeconfig", kc)
	if code != 0 || !strings.Contains(stdout, "application.wasmbed.dev/blink created") {
		t.Fatalf("deploy: exit %d, %q %q", code, stdout, stderr)
	}
	app := getApp(t, "deploy-a", "blink")
	m := app.Spec.Source.Module
	if m == nil || m.ConfigMap == nil || m.ConfigMap.Name != "blink-module" || m.ConfigMap.Key != "module.wasm" || m.Digest != digest.Of(wasmfix.Blink) {
		t.Fatalf("source: %+v", app.Spec.Source)
	}
	if app.Spec.Selector.MatchLabels["env"] != "lab" || app.Spec.Rollout.Strategy != v1.RolloutAllAtOnce {
		t.Errorf("selector %+v rollout %+v", app.Spec.Selector, app.Spec.Rollout)
	}
	cm := getModuleConfigMap(t, "deploy-a", "blink")
	if !bytes.Equal(cm.BinaryData["module.wasm"], wasmfix.Blink) || cm.Labels["wasmbed.dev/application"] != "blink" ||
		len(cm.OwnerReferences) != 1 || cm.OwnerReferences[0].UID != app.UID || cm.OwnerReferences[0].Kind != "Application" {
		t.Fatalf("configmap: %d bytes, labels %v, owners %+v", len(cm.BinaryData["module.wasm"]), cm.Labels, cm.OwnerReferences)
	}
	managers := map[string]bool{}
	for _, f := range app.ManagedFields {
		managers[f.Manager+"/"+string(f.Operation)] = true
	}
	if !managers["wasmbed-cli/Apply"] {
		t.Errorf("application managers %v, want wasmbed-cli applying", managers)
	}

	// Another module, canary steps and configuration: both objects are updated.
	code, stdout, stderr = runCLI(t, "deploy", cfg, "--name", "blink", "--selector", "env=lab", "--canary", "10,50,100",
		"--config", "period_ms=500", "--config", "greeting=a=b,c", "--kubeconfig", kc)
	if code != 0 || !strings.Contains(stdout, "application.wasmbed.dev/blink configured") {
		t.Fatalf("redeploy: exit %d, %q %q", code, stdout, stderr)
	}
	app2 := getApp(t, "deploy-a", "blink")
	if app2.UID != app.UID || app2.Generation != app.Generation+1 || app2.Spec.Source.Module.Digest != digest.Of(wasmfix.Config) ||
		app2.Spec.Config["period_ms"] != "500" || app2.Spec.Config["greeting"] != "a=b,c" ||
		app2.Spec.Rollout.Strategy != v1.RolloutCanary || len(app2.Spec.Rollout.Steps) != 3 || app2.Spec.Rollout.Steps[0].Percent != 10 {
		t.Fatalf("after redeploy: gen %d->%d, %+v", app.Generation, app2.Generation, app2.Spec)
	}
	if cm := getModuleConfigMap(t, "deploy-a", "blink"); !bytes.Equal(cm.BinaryData["module.wasm"], wasmfix.Config) || len(cm.OwnerReferences) != 1 {
		t.Fatalf("configmap not updated: %d bytes, owners %+v", len(cm.BinaryData["module.wasm"]), cm.OwnerReferences)
	}
	// The same again changes nothing; dropping --canary and --config removes what the CLI set.
	if code, stdout, _ = runCLI(t, "deploy", cfg, "--name", "blink", "--selector", "env=lab", "--canary", "10,50,100",
		"--config", "period_ms=500", "--config", "greeting=a=b,c", "--kubeconfig", kc); code != 0 || !strings.Contains(stdout, "blink unchanged") {
		t.Fatalf("same deploy: exit %d, %q", code, stdout)
	}
	if code, _, stderr = runCLI(t, "deploy", cfg, "--name", "blink", "--selector", "", "--kubeconfig", kc); code != 0 {
		t.Fatalf("deploy to every device: %q", stderr)
	}
	app3 := getApp(t, "deploy-a", "blink")
	if app3.Spec.Config != nil || app3.Spec.Rollout.Strategy != v1.RolloutAllAtOnce || len(app3.Spec.Rollout.Steps) != 0 ||
		len(app3.Spec.Selector.MatchLabels) != 0 || len(app3.Spec.Selector.MatchExpressions) != 0 {
		t.Fatalf("fields the CLI no longer sets stay: %+v", app3.Spec)
	}
}

func TestDeploySourceInItsLanguageToNamedDevices(t *testing.T) {
	createNamespace(t, "deploy-b")
	kc := kubeconfig(t, "deploy-b")
	dir := t.TempDir()
	for _, n := range []string{"d1", "d2"} {
		create(t, &v1.Device{ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: "deploy-b"}, Spec: v1.DeviceSpec{Board: "virtual"}}, nil)
	}
	wat, err := wasmfix.FS.ReadFile("blink.wat")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file, language string
		want           v1.Language
	}{
		{"blink.wat", "", v1.LanguageWAT},
		{"main.c", "", v1.LanguageC},
		{"lib.rs", "", v1.LanguageRust},
		{"index.ts", "", v1.LanguageAssemblyScript},
		{"app.txt", "c", v1.LanguageC},
	} {
		path := writeFile(t, dir, tc.file, wat)
		args := []string{"deploy", path, "--name", "src", "--device", "d1,d2", "--kubeconfig", kc}
		if tc.language != "" {
			args = append(args, "--language", tc.language)
		}
		if code, _, stderr := runCLI(t, args...); code != 0 {
			t.Fatalf("%s: %q", tc.file, stderr)
		}
		app := getApp(t, "deploy-b", "src")
		if in := app.Spec.Source.Inline; in == nil || in.Language != tc.want || in.Code != string(wat) || app.Spec.Source.Module != nil {
			t.Errorf("%s: source %+v", tc.file, app.Spec.Source)
		}
	}
	app := getApp(t, "deploy-b", "src")
	if e := app.Spec.Selector.MatchExpressions; len(e) != 1 || e[0].Key != "wasmbed.dev/device" || strings.Join(e[0].Values, ",") != "d1,d2" {
		t.Errorf("selector %+v", app.Spec.Selector)
	}
	var devs v1.DeviceList
	if err := env.Client.List(context.Background(), &devs, client.InNamespace("deploy-b"), client.MatchingLabels{"wasmbed.dev/device": "d1"}); err != nil ||
		len(devs.Items) != 1 || devs.Items[0].Name != "d1" {
		t.Errorf("d1 is not labelled with its name: %v %d", err, len(devs.Items))
	}
	// From source to a module: the inline source the CLI set goes.
	mod := writeFile(t, dir, "blink.wasm", wasmfix.Blink)
	if code, _, stderr := runCLI(t, "deploy", mod, "--name", "src", "--device", "d1", "--kubeconfig", kc); code != 0 {
		t.Fatalf("to a module: %q", stderr)
	}
	if app := getApp(t, "deploy-b", "src"); app.Spec.Source.Inline != nil || app.Spec.Source.Module == nil {
		t.Errorf("after deploying a module: %+v", app.Spec.Source)
	}
	if code, _, stderr := runCLI(t, "deploy", filepath.Join(dir, "blink.wat"), "--name", "src", "--device", "d3", "--kubeconfig", kc); code != 1 ||
		!strings.Contains(stderr, "device deploy-b/d3 not found") {
		t.Errorf("missing device: exit %d, %q", code, stderr)
	}
}

func TestDeployRefusesHostileInputAndKeepsWhatIsStored(t *testing.T) {
	createNamespace(t, "deploy-c")
	kc := kubeconfig(t, "deploy-c")
	dir := t.TempDir()
	good := writeFile(t, dir, "good.wasm", wasmfix.Blink)
	if code, _, stderr := runCLI(t, "deploy", good, "--name", "app", "--selector", "x=y", "--kubeconfig", kc); code != 0 {
		t.Fatal(stderr)
	}
	before, beforeCM := getApp(t, "deploy-c", "app"), getModuleConfigMap(t, "deploy-c", "app")
	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "other-module", Namespace: "deploy-c"}, Data: map[string]string{"k": "v"}}, nil)

	truncated := append([]byte(nil), wasmfix.Blink[:len(wasmfix.Blink)-3]...)
	component := append([]byte{0, 'a', 's', 'm', 0x0d, 0, 1, 0}, 0)
	bigModule := append(append([]byte(nil), wasmfile.Header...), make([]byte, wasmfile.MaxModuleBytes)...)
	bigSource := bytes.Repeat([]byte("a"), wasmfile.MaxSourceBytes+1)
	if err := os.Mkdir(filepath.Join(dir, "dir.wasm"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		file string // name in dir; written from data unless data is nil
		data []byte
		args []string
		code int
		want string
	}{
		{"text named .wasm", "text.wasm", []byte("(module)\n"), nil, 1, "WebAssembly text, not a binary module: name it .wat"},
		{"not wasm at all", "elf.wasm", []byte("\x7fELF\x02\x01\x01"), nil, 1, `does not start with the magic bytes \0asm`},
		{"a component", "comp.wasm", component, nil, 1, "not a WebAssembly core module (version bytes 0d 00 01 00"},
		{"truncated module", "trunc.wasm", truncated, nil, 1, "not a valid WebAssembly module"},
		{"empty module", "empty.wasm", []byte{}, nil, 1, "the file is empty"},
		{"module too big", "big.wasm", bigModule, nil, 1, "the platform takes at most 1024000 (1000 KiB)"},
		{"source too big", "big.c", bigSource, nil, 1, "the platform takes at most 262144 (256 KiB)"},
		{"module named .c", "blink.c", wasmfix.Blink, nil, 1, "compiled WebAssembly module, not source: name it .wasm"},
		{"binary source", "bin.rs", []byte("fn main() {}\xff\xfe"), nil, 1, "source must be UTF-8 text"},
		{"NUL in source", "nul.ts", []byte("export function a(): void {}\x00"), nil, 1, "holds NUL bytes"},
		{"unknown extension", "app.py", []byte("print(1)"), nil, 2, `cannot tell what ".py" files are`},
		{"a directory", "dir.wasm", nil, nil, 1, "is not a regular file"},
		{"missing file", "missing.wasm", nil, nil, 1, "no such file or directory"},
		{"language on a module", "lang.wasm", wasmfix.Blink, []string{"--language", "c"}, 2, "--language is for source files"},
		{"unknown language", "x.c", []byte("int x;"), []string{"--language", "cobol"}, 2, `--language "cobol"`},
		{"bad name", "n.wasm", wasmfix.Blink, []string{"--name", "App_1"}, 2, `--name "App_1"`},
		{"selector and device", "s.wasm", wasmfix.Blink, []string{"--device", "d1"}, 2, "exactly one of --selector and --device"},
		{"bad selector", "s.wasm", wasmfix.Blink, []string{"--selector", "a in (b"}, 2, `--selector "a in (b"`},
		{"bad config", "s.wasm", wasmfix.Blink, []string{"--config", "novalue"}, 2, `--config "novalue": want key=value`},
		{"duplicate config", "s.wasm", wasmfix.Blink, []string{"--config", "a=1", "--config", "a=2"}, 2, `key "a" given twice`},
		{"decreasing canary", "s.wasm", wasmfix.Blink, []string{"--canary", "50,10"}, 2, "percentages must increase"},
		{"canary over 100", "s.wasm", wasmfix.Blink, []string{"--canary", "10,150"}, 2, "from 1 to 100"},
		{"config the apiserver refuses", "s.wasm", wasmfix.Blink, []string{"--config", strings.Repeat("k", 65) + "=v"}, 1, "config keys may be at most 64 bytes"},
		{"a ConfigMap that is not the module's", "o.wasm", wasmfix.Blink, []string{"--name", "other"}, 1, "ConfigMap deploy-c/other-module exists and does not hold the module"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.file)
			if tc.data != nil {
				writeFile(t, dir, tc.file, tc.data)
			}
			args := []string{"deploy", path, "--kubeconfig", kc}
			if !contains(tc.args, "--name") {
				args = append(args, "--name", "app")
			}
			if !contains(tc.args, "--selector") {
				args = append(args, "--selector", "x=y")
			}
			code, _, stderr := runCLI(t, append(args, tc.args...)...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d with %q", code, stderr, tc.code, tc.want)
			}
		})
	}
	after, afterCM := getApp(t, "deploy-c", "app"), getModuleConfigMap(t, "deploy-c", "app")
	if after.ResourceVersion != before.ResourceVersion || afterCM.ResourceVersion != beforeCM.ResourceVersion {
		t.Errorf("a refused deploy changed what was stored: application %s->%s, configmap %s->%s",
			before.ResourceVersion, after.ResourceVersion, beforeCM.ResourceVersion, afterCM.ResourceVersion)
	}
	var other corev1.ConfigMap
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: "deploy-c", Name: "other-module"}, &other); err != nil ||
		other.Data["k"] != "v" || other.BinaryData != nil {
		t.Errorf("the foreign ConfigMap changed: %v %+v", err, other)
	}
}

func TestDeployTakesOverFieldsOnlyWithForceConflicts(t *testing.T) {
	createNamespace(t, "deploy-d")
	kc := kubeconfig(t, "deploy-d")
	// An Application someone applied with kubectl.
	app := &v1.Application{ObjectMeta: metav1.ObjectMeta{Name: "mine", Namespace: "deploy-d"}, TypeMeta: metav1.TypeMeta{APIVersion: "wasmbed.dev/v1alpha1", Kind: "Application"},
		Spec: v1.ApplicationSpec{Source: v1.ApplicationSource{Inline: &v1.InlineSource{Language: v1.LanguageC, Code: "int x;"}},
			Selector: metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}}}}
	if err := env.Client.Patch(context.Background(), app, client.Apply, client.FieldOwner("kubectl")); err != nil {
		t.Fatal(err)
	}
	src := writeFile(t, t.TempDir(), "main.c", []byte("int y;"))
	if code, _, stderr := runCLI(t, "deploy", src, "--name", "mine", "--selector", "a=c", "--kubeconfig", kc); code != 1 || !strings.Contains(stderr, "--force-conflicts") {
		t.Fatalf("conflict: exit %d, %q", code, stderr)
	}
	if got := getApp(t, "deploy-d", "mine"); got.Spec.Source.Inline.Code != "int x;" {
		t.Fatalf("a refused apply changed the application: %+v", got.Spec.Source)
	}
	if code, _, stderr := runCLI(t, "deploy", src, "--name", "mine", "--selector", "a=c", "--force-conflicts", "--kubeconfig", kc); code != 0 {
		t.Fatalf("forced: %q", stderr)
	}
	if got := getApp(t, "deploy-d", "mine"); got.Spec.Source.Inline.Code != "int y;" || got.Spec.Selector.MatchLabels["a"] != "c" {
		t.Fatalf("forced apply: %+v", got.Spec)
	}
	// A module cannot replace source another manager set: the apply would leave both.
	app2 := &v1.Application{ObjectMeta: metav1.ObjectMeta{Name: "theirs", Namespace: "deploy-d"}, TypeMeta: app.TypeMeta, Spec: app.Spec}
	if err := env.Client.Patch(context.Background(), app2, client.Apply, client.FieldOwner("kubectl")); err != nil {
		t.Fatal(err)
	}
	mod := writeFile(t, t.TempDir(), "m.wasm", wasmfix.Blink)
	code, _, stderr := runCLI(t, "deploy", mod, "--name", "theirs", "--selector", "a=b", "--force-conflicts", "--kubeconfig", kc)
	if code != 1 || !strings.Contains(stderr, "has a source.inline that another manager than wasmbed-cli set, and deploy would add source.module") {
		t.Fatalf("module over another manager's source: exit %d, %q", code, stderr)
	}
	if got := getApp(t, "deploy-d", "theirs"); got.Spec.Source.Inline == nil || got.Spec.Source.Module != nil {
		t.Errorf("the refused deploy changed the source: %+v", got.Spec.Source)
	}
	var cm corev1.ConfigMap
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: "deploy-d", Name: "theirs-module"}, &cm); !apierrors.IsNotFound(err) {
		t.Errorf("the refused deploy wrote its ConfigMap: %v", err)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
