package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/wasmbed/wasmbed/api/digest"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	wasmfix "github.com/wasmbed/wasmbed/testdata/wasm"
)

// create creates obj and then writes its status, as the operator would.
func create(t *testing.T, obj client.Object, status func()) {
	t.Helper()
	ctx := context.Background()
	if err := env.Client.Create(ctx, obj); err != nil {
		t.Fatal(err)
	}
	if status != nil {
		status()
		if err := env.Client.Status().Update(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
}

func TestGet(t *testing.T) {
	createNamespace(t, "get-a")
	createNamespace(t, "get-b")
	d := digest.Of(wasmfix.Blink)
	app := &v1.Application{ObjectMeta: metav1.ObjectMeta{Name: "blink", Namespace: "get-a"}, Spec: v1.ApplicationSpec{
		Source: v1.ApplicationSource{Inline: &v1.InlineSource{Language: v1.LanguageWAT, Code: "(module)"}}}}
	create(t, app, func() {
		app.Status.MarkBuilt(app.Generation, v1.BuildStatus{Digest: d, Size: int64(len(wasmfix.Blink))})
		app.Status.MarkValidated(app.Generation, v1.ValidationStatus{Digest: d, Passed: true})
		app.Status.MarkRollingOut(app.Generation, v1.RolloutStatus{Digest: d, Steps: 1, Targeted: 4, Dispatched: 4, Succeeded: 3})
	})
	now := metav1.NewTime(time.Now().Add(-90 * time.Minute)) // shown as "90m" for a minute
	dev := &v1.Device{ObjectMeta: metav1.ObjectMeta{Name: "sim-0", Namespace: "get-a", Labels: map[string]string{"env": "lab"}},
		Spec: v1.DeviceSpec{Board: "virtual"}}
	create(t, dev, func() {
		dev.Status.Phase, dev.Status.Gateway, dev.Status.LastSeen, dev.Status.FirmwareVersion = v1.DeviceConnected, "get-a/gw", &now, "fw-1.2"
	})
	create(t, &v1.Device{ObjectMeta: metav1.ObjectMeta{Name: "sim-1", Namespace: "get-a"}, Spec: v1.DeviceSpec{Board: "stm32f4-discovery"}}, nil)
	create(t, &v1.Device{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "get-b", Labels: map[string]string{"env": "lab"}},
		Spec: v1.DeviceSpec{Board: "virtual"}}, nil)
	gw := &v1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "get-a"}}
	create(t, gw, func() { gw.Status.Endpoint, gw.Status.ConnectedDevices = "10.0.0.1:8443", 1 })
	kc := kubeconfig(t, "get-a")

	for _, tc := range []struct {
		name  string
		args  []string
		code  int
		lines []string // each must appear, as a line with its fields separated by blanks
		not   []string
		check func(t *testing.T, stdout string)
	}{
		{name: "apps table", args: []string{"get", "apps"},
			lines: []string{"NAME PHASE DIGEST PROGRESS READY AGE", "blink RollingOut " + d.String() + " 3/4 Unknown"}, not: []string{"REASON"}},
		{name: "apps wide", args: []string{"get", "wbapp", "-o", "wide"},
			lines: []string{"NAME PHASE DIGEST PROGRESS READY REASON FAILED RATE WAITING AGE", "blink RollingOut " + d.String() + " 3/4 Unknown RollingOut"}},
		{name: "devices table", args: []string{"get", "devices"},
			lines: []string{"NAME BOARD PHASE GATEWAY LAST SEEN AGE", "sim-0 virtual Connected get-a/gw 90m", "sim-1 stm32f4-discovery"},
			not:   []string{"other", "fw-1.2"}},
		{name: "devices wide", args: []string{"get", "devices", "-o", "wide"},
			lines: []string{"NAME BOARD PHASE GATEWAY LAST SEEN FIRMWARE KEY AGE", "sim-0 virtual Connected get-a/gw 90m fw-1.2"}},
		{name: "all namespaces with a selector", args: []string{"get", "devices", "-A", "-l", "env=lab"},
			lines: []string{"NAMESPACE NAME BOARD", "get-a sim-0 virtual", "get-b other virtual"}, not: []string{"sim-1"}},
		{name: "namespace flag", args: []string{"get", "devices", "-n", "get-b", "-o", "name"},
			lines: []string{"device.wasmbed.dev/other"}, not: []string{"sim-0"}},
		{name: "names", args: []string{"get", "devices", "-o", "name"},
			lines: []string{"device.wasmbed.dev/sim-0", "device.wasmbed.dev/sim-1"}},
		{name: "gateways", args: []string{"get", "gw"},
			lines: []string{"NAME ENDPOINT DEVICES READY AGE", "gw 10.0.0.1:8443 1"}},
		{name: "gateways wide", args: []string{"get", "gateways", "-o", "wide"},
			lines: []string{"NAME ENDPOINT DEVICES MAX READY AGE", "gw 10.0.0.1:8443 1 10000"}},
		{name: "one app as json", args: []string{"get", "app", "blink", "-o", "json"}, check: func(t *testing.T, stdout string) {
			var got v1.Application
			if err := json.Unmarshal([]byte(stdout), &got); err != nil || got.Kind != "Application" || got.APIVersion != "wasmbed.dev/v1alpha1" ||
				got.Status.Build.Digest != d || got.ManagedFields != nil {
				t.Errorf("json: %v %+v", err, got.TypeMeta)
			}
		}},
		{name: "list as yaml", args: []string{"get", "devices", "-o", "yaml"}, check: func(t *testing.T, stdout string) {
			var got struct {
				Kind  string      `json:"kind"`
				Items []v1.Device `json:"items"`
			}
			if err := yaml.Unmarshal([]byte(stdout), &got); err != nil || got.Kind != "List" || len(got.Items) != 2 ||
				got.Items[0].Kind != "Device" || got.Items[0].Status.FirmwareVersion != "fw-1.2" {
				t.Errorf("yaml: %v %+v", err, got)
			}
		}},
		{name: "by name", args: []string{"get", "device", "sim-1", "sim-0"}, lines: []string{"sim-1 stm32f4-discovery", "sim-0 virtual"}},
		{name: "missing name", args: []string{"get", "device", "nope"}, code: 1, lines: []string{`devices.wasmbed.dev "nope" not found`}},
		{name: "name across namespaces", args: []string{"get", "device", "sim-0", "-A"}, code: 2, lines: []string{"across all namespaces"}},
		{name: "bad output", args: []string{"get", "apps", "-o", "xml"}, code: 2, lines: []string{`--output "xml": use json, yaml, wide or name`}},
		{name: "bad selector", args: []string{"get", "apps", "-l", "a b"}, code: 2, lines: []string{`--selector "a b"`}},
		{name: "empty", args: []string{"get", "apps", "-n", "get-b"}, lines: []string{"No applications found in get-b namespace."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, append(tc.args, "--kubeconfig", kc)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.code, stderr)
			}
			var got []string
			for _, l := range strings.Split(stdout+stderr, "\n") {
				got = append(got, strings.Join(strings.Fields(l), " "))
			}
			all := strings.Join(got, "\n")
			for _, want := range tc.lines {
				if !strings.Contains(all, want) {
					t.Errorf("output lacks %q:\n%s", want, all)
				}
			}
			for _, not := range tc.not {
				if strings.Contains(all, not) {
					t.Errorf("output has %q:\n%s", not, all)
				}
			}
			if tc.check != nil {
				tc.check(t, stdout)
			}
		})
	}
}
