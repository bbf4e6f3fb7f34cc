// Package e2e_test runs the whole embedded platform (the one `make run` starts) against
// a real apiserver and etcd, with virtual devices, and checks what a user would see.
package e2e_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/api/digest"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/pki"
	"github.com/wasmbed/wasmbed/internal/testenv"
	"github.com/wasmbed/wasmbed/platform"
)

const devices = 50

// spans records every span the platform's components end.
var spans = tracetest.NewSpanRecorder()

var (
	env  *testenv.Env
	plat *platform.Platform
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	var err error
	if env, err = testenv.StartEnv(); err != nil {
		return 0, fmt.Errorf("start test apiserver: %w", err)
	}
	defer env.Stop()
	dir, err := os.MkdirTemp("", "wasmbed-e2e-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	var logOut io.Writer = io.Discard
	if os.Getenv("E2E_LOGS") != "" {
		logOut = os.Stderr
	}
	// Every component's spans, as an OTLP exporter would get them (tracing_test.go).
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)))
	otel.SetTextMapPropagator(propagation.TraceContext{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	plat, err = platform.Start(ctx, platform.Config{
		REST: env.Config, Dir: dir, Devices: devices, Resync: time.Second, Now: clk.Now,
		Logs: platform.NewLogs(logOut, slog.LevelInfo),
	})
	if err != nil {
		return 0, fmt.Errorf("start platform: %w", err)
	}
	defer plat.Stop()
	return m.Run(), nil
}

func c() client.Client { return plat.Client() }

func eventually(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// remove deletes app and waits until it is gone (its finalizer removed it from every
// device), so a test can run again with -count.
func remove(t *testing.T, app *v1.Application) {
	t.Helper()
	if err := c().Delete(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	eventually(t, app.Name+" deleted", time.Minute, func() (bool, string) {
		err := c().Get(context.Background(), client.ObjectKeyFromObject(app), &v1.Application{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}

func getApp(t *testing.T, name string) *v1.Application {
	t.Helper()
	var a v1.Application
	if err := c().Get(context.Background(), client.ObjectKey{Namespace: "default", Name: name}, &a); err != nil {
		t.Fatal(err)
	}
	return &a
}

// running counts the Devices that report app running digest.
func running(t *testing.T, app string, digest digest.Digest) (n int, total int) {
	n, total, _ = runningOr(t, app, digest)
	return n, total
}

// runningOr is running, plus what the other Devices report for app (for failure messages).
func runningOr(t *testing.T, app string, digest digest.Digest) (n int, total int, others []string) {
	t.Helper()
	var list v1.DeviceList
	if err := c().List(context.Background(), &list, client.InNamespace("default")); err != nil {
		t.Fatal(err)
	}
	for _, d := range list.Items {
		found := false
		for _, a := range d.Status.Applications {
			if a.Name != app {
				continue
			}
			found = true
			if a.Digest == digest && a.State == v1.AppRunning {
				n++
			} else {
				others = append(others, fmt.Sprintf("%s: %s %s gen %d %q", d.Name, a.Digest, a.State, a.Generation, a.Message))
			}
		}
		if !found {
			others = append(others, d.Name+": no "+app)
		}
	}
	return n, len(list.Items), others
}

func ready(t *testing.T, name string) (bool, string) {
	a := getApp(t, name)
	r := meta.FindStatusCondition(a.Status.Conditions, v1.ConditionReady)
	if r == nil {
		return false, "no Ready condition"
	}
	return r.Status == metav1.ConditionTrue && r.ObservedGeneration == a.Generation,
		fmt.Sprintf("phase %s ready %s %s: %s; rollout %+v", a.Status.Phase, r.Status, r.Reason, r.Message, a.Status.Rollout)
}

func update(t *testing.T, name string, mutate func(*v1.Application)) {
	t.Helper()
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		a := getApp(t, name)
		mutate(a)
		return c().Update(context.Background(), a)
	}); err != nil {
		t.Fatal(err)
	}
}

func cApp(name, code string, mutate func(*v1.Application)) *v1.Application {
	a := &v1.Application{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: v1.ApplicationSpec{
			Source:   v1.ApplicationSource{Inline: &v1.InlineSource{Language: v1.LanguageC, Code: code}},
			Selector: metav1.LabelSelector{},
		}}
	if mutate != nil {
		mutate(a)
	}
	return a
}

// TestBlinkFromCOnEveryDevice applies examples/blink-c.yaml as a user would and waits
// for every one of the 50 virtual devices to run the module.
func TestBlinkFromCOnEveryDevice(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "examples", "blink-c.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var app v1.Application
	if err := yaml.UnmarshalStrict(raw, &app); err != nil {
		t.Fatalf("examples/blink-c.yaml: %v", err)
	}
	src, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "examples", "c", "blink.c"))
	if err != nil {
		t.Fatal(err)
	}
	if app.Spec.Source.Inline.Code != string(src) {
		t.Errorf("examples/blink-c.yaml's code differs from examples/c/blink.c")
	}
	app.Name = "blink-e2e"
	start := time.Now()
	if err := c().Create(context.Background(), &app); err != nil {
		t.Fatal(err)
	}
	eventually(t, "blink Ready on every device", 2*time.Minute, func() (bool, string) { return ready(t, "blink-e2e") })
	a := getApp(t, "blink-e2e")
	if a.Status.Rollout.Progress != fmt.Sprintf("%d/%d", devices, devices) {
		t.Fatalf("Ready with progress %s", a.Status.Rollout.Progress)
	}
	t.Logf("apply to %d devices Running: %s", devices, time.Since(start).Round(time.Millisecond))
	// The Application counts from the gateway's summaries; each Device's own status
	// follows through the operator's paced queue.
	eventually(t, "every Device's status showing blink Running", time.Minute, func() (bool, string) {
		n, total := running(t, "blink-e2e", a.Status.Build.Digest)
		return total == devices && n == devices, fmt.Sprintf("%d of %d devices run %s", n, total, a.Status.Build.Digest)
	})
	if err := c().Delete(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	eventually(t, "blink removed from every device", time.Minute, func() (bool, string) {
		n, _ := running(t, "blink-e2e", a.Status.Build.Digest)
		return n == 0, fmt.Sprintf("%d devices still run it", n)
	})
}

const goodC = `#include "wasmbed.h"
WASMBED_EXPORT(loop) int32_t loop(void) { return 1000; }
`

// crashC passes validation (the validator has no config) but traps in setup on devices
// whose Application config sets "crash".
const crashC = `#include "wasmbed.h"
WASMBED_EXPORT(setup) void setup(void) {
    char buf[4];
    if (wasmbed_config_get("crash", 5, buf, sizeof buf) >= 0) __builtin_trap();
}
WASMBED_EXPORT(loop) int32_t loop(void) { return 1000; }
`

func TestCanaryThatTrapsIsRolledBack(t *testing.T) {
	app := cApp("canary", goodC, func(a *v1.Application) {
		a.Spec.Rollout = v1.RolloutSpec{Strategy: v1.RolloutCanary, Steps: []v1.CanaryStep{{Percent: 20}, {Percent: 100}}}
	})
	if err := c().Create(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	eventually(t, "v1 Ready", 2*time.Minute, func() (bool, string) { return ready(t, "canary") })
	good := getApp(t, "canary").Status.Build.Digest

	update(t, "canary", func(a *v1.Application) {
		a.Spec.Source.Inline.Code = crashC
		a.Spec.Config = map[string]string{"crash": "yes"}
		zero := intstr.FromInt32(0)
		a.Spec.Rollout.MaxFailures = &zero
	})
	eventually(t, "rollback", 2*time.Minute, func() (bool, string) {
		a := getApp(t, "canary")
		r := meta.FindStatusCondition(a.Status.Conditions, v1.ConditionRolledOut)
		if r == nil {
			return false, "no RolledOut condition"
		}
		return r.Reason == v1.ReasonRolledBack && r.ObservedGeneration == a.Generation, r.Reason + ": " + r.Message
	})
	a := getApp(t, "canary")
	if a.Status.Phase != v1.ApplicationFailed || !strings.Contains(a.Status.Rollout.FirstFailure, "unreachable") {
		t.Errorf("after rollback: phase %s, first failure %q", a.Status.Phase, a.Status.Rollout.FirstFailure)
	}
	if a.Status.Rollout.Failed < 1 || a.Status.Rollout.Failed > devices/5 {
		t.Errorf("%d devices failed; the canary step covers %d", a.Status.Rollout.Failed, devices/5)
	}
	eventually(t, "the old module running everywhere again", 2*time.Minute, func() (bool, string) {
		n, total, others := runningOr(t, "canary", good)
		return n == total, fmt.Sprintf("%d of %d run %s; the others: %v; rollout %+v", n, total, good, others, getApp(t, "canary").Status.Rollout)
	})
	remove(t, a)
}

func TestCompileErrorNamesFileAndLine(t *testing.T) {
	app := cApp("broken", "#include \"wasmbed.h\"\nWASMBED_EXPORT(loop) int32_t loop(void) {\n    return not_declared;\n}\n", nil)
	if err := c().Create(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Built=False", time.Minute, func() (bool, string) {
		b := meta.FindStatusCondition(getApp(t, "broken").Status.Conditions, v1.ConditionBuilt)
		if b == nil {
			return false, "no Built condition"
		}
		return b.Status == metav1.ConditionFalse, b.Reason
	})
	a := getApp(t, "broken")
	b := meta.FindStatusCondition(a.Status.Conditions, v1.ConditionBuilt)
	if b.Reason != v1.ReasonBuildFailed || !strings.Contains(b.Message, "main.c:3:") || !strings.Contains(b.Message, "not_declared") {
		t.Errorf("Built = %s: %q; want the compiler's main.c:3 diagnostic", b.Reason, b.Message)
	}
	if a.Status.Phase != v1.ApplicationFailed {
		t.Errorf("phase = %s", a.Status.Phase)
	}
	_ = c().Delete(context.Background(), a)
}

// TestDeviceDeletedMidRolloutLosesItsSession deletes a Device while a Canary rollout is
// held at its first step: the gateway closes that device's session and refuses it, and
// the rollout goes on without it.
func TestDeviceDeletedMidRolloutLosesItsSession(t *testing.T) {
	app := cApp("midway", goodC, func(a *v1.Application) {
		a.Spec.Rollout = v1.RolloutSpec{Strategy: v1.RolloutCanary, Steps: []v1.CanaryStep{
			{Percent: 10, Pause: &metav1.Duration{Duration: time.Hour}}, {Percent: 100}}}
	})
	if err := c().Create(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the canary pause", 2*time.Minute, func() (bool, string) {
		a := getApp(t, "midway")
		return a.Status.Phase == v1.ApplicationPaused, string(a.Status.Phase)
	})
	victim := "sim-" + fmt.Sprint(devices-1)
	id := pki.Identity{Namespace: "default", Name: victim}
	if !plat.Gateway().Connected(id) {
		t.Fatalf("%s is not connected before the test", victim)
	}
	var dev v1.Device
	if err := c().Get(context.Background(), client.ObjectKey{Namespace: "default", Name: victim}, &dev); err != nil {
		t.Fatal(err)
	}
	if err := c().Delete(context.Background(), &dev); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the session closed", 30*time.Second, func() (bool, string) {
		return !plat.Gateway().Connected(id), "still connected"
	})
	// It stays out: its reconnects are refused.
	time.Sleep(2 * time.Second)
	if plat.Gateway().Connected(id) {
		t.Fatal("the deleted device reconnected")
	}
	// Resume the rollout: it completes on the remaining devices.
	update(t, "midway", func(a *v1.Application) { a.Spec.Rollout.Steps[0].Pause = nil })
	eventually(t, "Ready without the deleted device", 2*time.Minute, func() (bool, string) { return ready(t, "midway") })
	if a := getApp(t, "midway"); a.Status.Rollout.Targeted != devices-1 {
		t.Errorf("targeted %d, want %d", a.Status.Rollout.Targeted, devices-1)
	}
}

const greeterC = `#include "wasmbed.h"
WASMBED_EXPORT(setup) void setup(void) {
    char buf[32];
    int32_t n = wasmbed_config_get("greeting", 8, buf, sizeof buf);
    if (n > (int32_t)sizeof buf) n = sizeof buf;
    if (n > 0) wasmbed_log(WASMBED_LOG_INFO, buf, n);
}
WASMBED_EXPORT(loop) int32_t loop(void) { return 1000; }
`

// TestConfigChangeReachesRunningDevices changes only spec.config: the module stays, and
// every device restarts the application with the new configuration.
func TestConfigChangeReachesRunningDevices(t *testing.T) {
	app := cApp("greeter", greeterC, func(a *v1.Application) { a.Spec.Config = map[string]string{"greeting": "hello-v1"} })
	if err := c().Create(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	eventually(t, "v1 Ready", 2*time.Minute, func() (bool, string) { return ready(t, "greeter") })
	a := getApp(t, "greeter")
	if a.Status.Build == nil {
		t.Fatalf("Ready without a build status: %+v", a.Status)
	}
	digest := a.Status.Build.Digest
	logged := func(msg string) (int, int) {
		n := 0
		for i := 0; i < devices; i++ {
			for _, l := range plat.Gateway().DeviceLog(pki.Identity{Namespace: "default", Name: fmt.Sprintf("sim-%d", i)}) {
				if l.App == "greeter" && l.Message == msg {
					n++
					break
				}
			}
		}
		return n, devices
	}
	update(t, "greeter", func(a *v1.Application) { a.Spec.Config["greeting"] = "hello-v2" })
	eventually(t, "every connected device restarted with the new config", time.Minute, func() (bool, string) {
		n, _ := logged("hello-v2")
		connected := plat.Gateway().Sessions()
		return n >= connected && connected > 0, fmt.Sprintf("%d of %d connected devices logged hello-v2", n, connected)
	})
	eventually(t, "Ready again", time.Minute, func() (bool, string) { return ready(t, "greeter") })
	if d := getApp(t, "greeter").Status.Build.Digest; d != digest {
		t.Errorf("a config change rebuilt the module: %s -> %s", digest, d)
	}
	_ = c().Delete(context.Background(), getApp(t, "greeter"))
}
