package v1alpha1_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/api/digest"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/wasmbed/wasmbed/api/boards"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func validDevice(name string) *v1.Device {
	return &v1.Device{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"room": "lab"}},
		Spec:       v1.DeviceSpec{Board: "stm32f4-discovery", Gateway: "gw-1"},
	}
}

func validApp(name string) *v1.Application {
	return &v1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: v1.ApplicationSpec{
			Source:   v1.ApplicationSource{Inline: &v1.InlineSource{Language: v1.LanguageC, Code: "int loop(void){return 100;}"}},
			Selector: metav1.LabelSelector{MatchLabels: map[string]string{"room": "lab"}},
			Config:   map[string]string{"period": "500"},
		},
	}
}

func validGateway(name string) *v1.Gateway {
	return &v1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
}

func TestValidObjectsRoundTripWithDefaults(t *testing.T) {
	c := env.Client

	dev := validDevice("round-trip")
	if err := c.Create(ctx(t), dev); err != nil {
		t.Fatalf("create device: %v", err)
	}
	var gotDev v1.Device
	if err := c.Get(ctx(t), client.ObjectKeyFromObject(dev), &gotDev); err != nil {
		t.Fatalf("get device: %v", err)
	}
	if gotDev.Spec.Board != "stm32f4-discovery" || gotDev.Spec.Gateway != "gw-1" {
		t.Errorf("device spec = %+v", gotDev.Spec)
	}

	app := validApp("round-trip")
	if err := c.Create(ctx(t), app); err != nil {
		t.Fatalf("create application: %v", err)
	}
	var gotApp v1.Application
	if err := c.Get(ctx(t), client.ObjectKeyFromObject(app), &gotApp); err != nil {
		t.Fatalf("get application: %v", err)
	}
	r := gotApp.Spec.Rollout
	if r.Strategy != v1.RolloutAllAtOnce || r.AutoRollback == nil || !*r.AutoRollback ||
		r.MaxFailures == nil || r.MaxFailures.IntValue() != 0 {
		t.Errorf("rollout defaults = %+v, want AllAtOnce, autoRollback true, maxFailures 0", r)
	}
	if gotApp.Spec.Source.Inline.Code != app.Spec.Source.Inline.Code {
		t.Errorf("inline code changed in the round trip")
	}

	gw := validGateway("round-trip")
	if err := c.Create(ctx(t), gw); err != nil {
		t.Fatalf("create gateway: %v", err)
	}
	var gotGw v1.Gateway
	if err := c.Get(ctx(t), client.ObjectKeyFromObject(gw), &gotGw); err != nil {
		t.Fatalf("get gateway: %v", err)
	}
	s := gotGw.Spec
	if s.Replicas != 1 || s.Port != 8443 || s.MaxDevices != 10000 ||
		s.HeartbeatInterval == nil || s.HeartbeatInterval.Duration != 30*time.Second ||
		s.HeartbeatTimeout == nil || s.HeartbeatTimeout.Duration != 90*time.Second ||
		s.ServiceType != "LoadBalancer" {
		t.Errorf("gateway defaults = %+v", s)
	}

	// Status is a subresource: the status written there comes back, and the lifecycle
	// helpers produce conditions the schema accepts.
	gotApp.Status.InitializeConditions(gotApp.Generation)
	gotApp.Status.MarkBuilt(gotApp.Generation, v1.BuildStatus{Digest: digest.Digest("sha256:" + strings.Repeat("ab", 32)), Size: 812, Toolchain: "clang 14"})
	if err := c.Status().Update(ctx(t), &gotApp); err != nil {
		t.Fatalf("update application status: %v", err)
	}
	var again v1.Application
	if err := c.Get(ctx(t), client.ObjectKeyFromObject(app), &again); err != nil {
		t.Fatalf("get application: %v", err)
	}
	if again.Status.Phase != v1.ApplicationValidating || again.Status.Build == nil || again.Status.Build.Size != 812 {
		t.Errorf("status after MarkBuilt = phase %q build %+v", again.Status.Phase, again.Status.Build)
	}
}

// TestRolloutPolicyExampleIsAccepted applies examples/rollout-policy.yaml (every setting
// of the rollout policy) and a status with every policy field, as the operator writes it.
func TestRolloutPolicyExampleIsAccepted(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "examples", "rollout-policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var app v1.Application
	if err := yaml.UnmarshalStrict(raw, &app); err != nil {
		t.Fatalf("examples/rollout-policy.yaml: %v", err)
	}
	if err := env.Client.Create(ctx(t), &app); err != nil {
		t.Fatalf("create the example: %v", err)
	}
	r := app.Spec.Rollout
	if r.Maintenance.TimeZone != "Europe/Berlin" || r.Schedule.EndBehavior != v1.EndCancel || *r.Rate.Growth.AfterSucceeded != 50 {
		t.Errorf("round trip lost fields: %+v", r)
	}
	now, micro := metav1.Now(), metav1.NowMicro()
	app.Status.InitializeConditions(app.Generation)
	app.Status.MarkRolloutWaiting(app.Generation, v1.RolloutStatus{
		Digest: digest.Digest("sha256:" + strings.Repeat("cd", 32)), Steps: 2, Targeted: 3,
		WaitingFor: "waiting for approval of step 2 of 2", NextActionAt: &now, ApprovedStep: 1, Started: 2, Retries: 1,
		FailuresByType: map[v1.FailureType]int32{v1.FailureTimeout: 1},
		Rate:           &v1.RateStatus{DevicesPerMinute: 40, NextStartAt: &micro, BaseSucceeded: 50},
		Devices: []v1.RolloutDevice{{Name: "d1", StartedAt: micro, Attempts: 2, Failure: v1.FailureTimeout, Final: true, Message: "not Running"},
			{Name: "d2", StartedAt: micro, Attempts: 1, RetryAt: &micro}},
	}, v1.ReasonWaitingForApproval, "waiting for approval of step 2 of 2")
	if err := env.Client.Status().Update(ctx(t), &app); err != nil {
		t.Fatalf("status with the policy's fields: %v", err)
	}
	if app.Status.Phase != v1.ApplicationPaused {
		t.Errorf("waiting for approval: phase %s, want Paused", app.Status.Phase)
	}
	// Devices report failure types.
	dev := validDevice("failure-type")
	if err := env.Client.Create(ctx(t), dev); err != nil {
		t.Fatal(err)
	}
	dev.Status.Applications = []v1.DeviceApplication{{Name: "x", State: v1.AppFailed, Failure: v1.FailureStart, Message: "missing import"}}
	if err := env.Client.Status().Update(ctx(t), dev); err != nil {
		t.Fatalf("device status with a failure type: %v", err)
	}
}

func TestInvalidObjectsAreRejectedNamingTheField(t *testing.T) {
	pct := intstr.FromString("ten")
	neg := intstr.FromInt32(-1)
	policy := func(name string, mutate func(r *v1.RolloutSpec)) client.Object {
		a := validApp(name)
		mutate(&a.Spec.Rollout)
		return a
	}
	i32 := func(v int32) *int32 { return &v }
	window := func(start string, d time.Duration) v1.MaintenanceWindow {
		return v1.MaintenanceWindow{Start: start, Duration: metav1.Duration{Duration: d}}
	}
	cases := []struct {
		name string
		obj  client.Object
		want []string // substrings the apiserver's message must contain
	}{
		{"device unknown board", func() client.Object { d := validDevice("bad-board"); d.Spec.Board = "esp32"; return d }(),
			[]string{"spec.board", "esp32"}},
		{"device missing board", func() client.Object { d := validDevice("no-board"); d.Spec.Board = ""; return d }(),
			[]string{"spec.board"}},
		{"device bad gateway name", func() client.Object { d := validDevice("bad-gw"); d.Spec.Gateway = "GW_1"; return d }(),
			[]string{"spec.gateway"}},
		{"app without source", func() client.Object { a := validApp("no-source"); a.Spec.Source = v1.ApplicationSource{}; return a }(),
			[]string{"spec.source", "exactly one of source.inline, source.configMap or source.module"}},
		{"app with two sources", func() client.Object {
			a := validApp("two-sources")
			a.Spec.Source.Module = &v1.ModuleSource{OCI: "registry.local/blink:v1"}
			return a
		}(), []string{"spec.source", "exactly one of"}},
		{"app unknown language", func() client.Object { a := validApp("bad-lang"); a.Spec.Source.Inline.Language = "cobol"; return a }(),
			[]string{"spec.source.inline.language", "cobol"}},
		{"app empty code", func() client.Object { a := validApp("empty-code"); a.Spec.Source.Inline.Code = ""; return a }(),
			[]string{"spec.source.inline.code"}},
		{"app module with no location", func() client.Object {
			a := validApp("module-nothing")
			a.Spec.Source = v1.ApplicationSource{Module: &v1.ModuleSource{}}
			return a
		}(), []string{"spec.source.module", "exactly one of source.module.oci"}},
		{"app module ftp url", func() client.Object {
			a := validApp("module-ftp")
			a.Spec.Source = v1.ApplicationSource{Module: &v1.ModuleSource{URL: "ftp://x/y.wasm"}}
			return a
		}(), []string{"spec.source.module.url", "http:// or https://"}},
		{"app module bad digest", func() client.Object {
			a := validApp("module-digest")
			a.Spec.Source = v1.ApplicationSource{Module: &v1.ModuleSource{OCI: "r/x:1", Digest: "md5:abc"}}
			return a
		}(), []string{"spec.source.module.digest"}},
		{"canary without steps", func() client.Object {
			a := validApp("canary-nosteps")
			a.Spec.Rollout.Strategy = v1.RolloutCanary
			return a
		}(), []string{"spec.rollout", "rollout.steps must list at least one step"}},
		{"canary steps not increasing", func() client.Object {
			a := validApp("canary-order")
			a.Spec.Rollout = v1.RolloutSpec{Strategy: v1.RolloutCanary, Steps: []v1.CanaryStep{{Percent: 50}, {Percent: 20}, {Percent: 100}}}
			return a
		}(), []string{"spec.rollout", "must increase"}},
		{"canary step over 100", func() client.Object {
			a := validApp("canary-big")
			a.Spec.Rollout = v1.RolloutSpec{Strategy: v1.RolloutCanary, Steps: []v1.CanaryStep{{Percent: 150}}}
			return a
		}(), []string{"spec.rollout.steps[0].percent"}},
		{"maxFailures bad percentage", func() client.Object {
			a := validApp("maxf-text")
			a.Spec.Rollout.MaxFailures = &pct
			return a
		}(), []string{"spec.rollout.maxFailures"}},
		{"maxFailures negative", func() client.Object {
			a := validApp("maxf-neg")
			a.Spec.Rollout.MaxFailures = &neg
			return a
		}(), []string{"spec.rollout.maxFailures"}},
		{"approval without Canary", policy("approval-allatonce", func(r *v1.RolloutSpec) {
			r.Steps = []v1.CanaryStep{{Percent: 100, RequireApproval: true}}
		}), []string{"spec.rollout", "requireApproval needs strategy Canary"}},
		{"rate of zero", policy("rate-zero", func(r *v1.RolloutSpec) { r.Rate = &v1.RolloutRate{} }),
			[]string{"spec.rollout.rate.devicesPerMinute"}},
		{"growth with two conditions", policy("growth-two", func(r *v1.RolloutSpec) {
			r.Rate = &v1.RolloutRate{DevicesPerMinute: 5, Growth: &v1.RateGrowth{Factor: "2", AfterSucceeded: i32(5), AfterStarted: i32(5)}}
		}), []string{"spec.rollout.rate.growth", "exactly one of afterSucceeded or afterStarted"}},
		{"growth without a condition", policy("growth-none", func(r *v1.RolloutSpec) {
			r.Rate = &v1.RolloutRate{DevicesPerMinute: 5, Growth: &v1.RateGrowth{Factor: "2"}}
		}), []string{"spec.rollout.rate.growth", "exactly one of afterSucceeded or afterStarted"}},
		{"growth factor below 1.1", policy("growth-small", func(r *v1.RolloutSpec) {
			r.Rate = &v1.RolloutRate{DevicesPerMinute: 5, Growth: &v1.RateGrowth{Factor: "1.05", AfterStarted: i32(5)}}
		}), []string{"spec.rollout.rate.growth.factor", "between 1.1 and 10"}},
		{"growth factor not a number", policy("growth-text", func(r *v1.RolloutSpec) {
			r.Rate = &v1.RolloutRate{DevicesPerMinute: 5, Growth: &v1.RateGrowth{Factor: "double", AfterStarted: i32(5)}}
		}), []string{"spec.rollout.rate.growth.factor"}},
		{"abort criterion unknown type", policy("abort-type", func(r *v1.RolloutSpec) {
			r.AbortCriteria = []v1.AbortCriterion{{FailureType: "disk", ThresholdPercent: 5}}
		}), []string{"spec.rollout.abortCriteria[0].failureType", "Unsupported value"}},
		{"abort criterion over 100%", policy("abort-pct", func(r *v1.RolloutSpec) {
			r.AbortCriteria = []v1.AbortCriterion{{FailureType: v1.FailureTrap, ThresholdPercent: 101}}
		}), []string{"spec.rollout.abortCriteria[0].thresholdPercent"}},
		{"abort criteria twice for one type", policy("abort-dup", func(r *v1.RolloutSpec) {
			r.AbortCriteria = []v1.AbortCriterion{{FailureType: v1.FailureTrap, ThresholdPercent: 5}, {FailureType: v1.FailureTrap, ThresholdPercent: 10}}
		}), []string{"spec.rollout.abortCriteria[1]", "Duplicate value"}},
		{"too many retries", policy("retry-many", func(r *v1.RolloutSpec) {
			r.Retries = []v1.RetryPolicy{{FailureType: v1.FailureTransfer, Attempts: 11}}
		}), []string{"spec.rollout.retries[0].attempts"}},
		{"device timeout too short", policy("timeout-short", func(r *v1.RolloutSpec) {
			r.DeviceTimeout = &metav1.Duration{Duration: 100 * time.Millisecond}
		}), []string{"spec.rollout.deviceTimeout", "between 1s and 168h"}},
		{"endBy before notBefore", policy("sched-order", func(r *v1.RolloutSpec) {
			r.Schedule = &v1.RolloutSchedule{NotBefore: &metav1.Time{Time: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)},
				EndBy: &metav1.Time{Time: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}}
		}), []string{"spec.rollout.schedule", "endBy must be after rollout.schedule.notBefore"}},
		{"unknown end behaviour", policy("sched-end", func(r *v1.RolloutSpec) { r.Schedule = &v1.RolloutSchedule{EndBehavior: "Explode"} }),
			[]string{"spec.rollout.schedule.endBehavior", "Unsupported value"}},
		{"unknown time zone", policy("tz-mars", func(r *v1.RolloutSpec) {
			r.Maintenance = &v1.MaintenanceWindows{TimeZone: "Mars/Olympus_Mons", Windows: []v1.MaintenanceWindow{window("22:00", time.Hour)}}
		}), []string{"spec.rollout.maintenance.timeZone", "IANA time zone"}},
		{"time zone that is not a name", policy("tz-path", func(r *v1.RolloutSpec) {
			r.Maintenance = &v1.MaintenanceWindows{TimeZone: "../../etc/passwd", Windows: []v1.MaintenanceWindow{window("22:00", time.Hour)}}
		}), []string{"spec.rollout.maintenance.timeZone", "IANA time zone"}},
		{"no windows", policy("win-none", func(r *v1.RolloutSpec) { r.Maintenance = &v1.MaintenanceWindows{TimeZone: "UTC"} }),
			[]string{"spec.rollout.maintenance.windows"}},
		{"window start not a time", policy("win-start", func(r *v1.RolloutSpec) {
			r.Maintenance = &v1.MaintenanceWindows{Windows: []v1.MaintenanceWindow{window("24:00", time.Hour)}}
		}), []string{"spec.rollout.maintenance.windows[0].start"}},
		{"window too short", policy("win-short", func(r *v1.RolloutSpec) {
			r.Maintenance = &v1.MaintenanceWindows{Windows: []v1.MaintenanceWindow{window("22:00", time.Second)}}
		}), []string{"spec.rollout.maintenance.windows[0].duration", "between 1m and 168h"}},
		{"window on an unknown day", policy("win-day", func(r *v1.RolloutSpec) {
			w := window("22:00", time.Hour)
			w.Days = []v1.Weekday{"Funday"}
			r.Maintenance = &v1.MaintenanceWindows{Windows: []v1.MaintenanceWindow{w}}
		}), []string{"spec.rollout.maintenance.windows[0].days[0]", "Unsupported value"}},
		{"config value too long", func() client.Object {
			a := validApp("cfg-long")
			a.Spec.Config = map[string]string{"k": strings.Repeat("v", 300)}
			return a
		}(), []string{"spec.config", "at most 256 bytes"}},
		{"pipeline step with ref and uri", func() client.Object {
			a := validApp("step-both")
			a.Spec.Steps = []v1.PipelineStep{{URI: "http://x", Ref: &v1.StepReference{APIVersion: "v1", Kind: "Service", Name: "s"}}}
			return a
		}(), []string{"spec.steps[0]", "exactly one of steps[].ref or steps[].uri"}},
		{"gateway timeout shorter than interval", func() client.Object {
			g := validGateway("gw-timeout")
			g.Spec.HeartbeatInterval = &metav1.Duration{Duration: time.Minute}
			g.Spec.HeartbeatTimeout = &metav1.Duration{Duration: 30 * time.Second}
			return g
		}(), []string{"spec", "heartbeatTimeout must be longer than spec.heartbeatInterval"}},
		{"gateway port out of range", func() client.Object { g := validGateway("gw-port"); g.Spec.Port = 70000; return g }(),
			[]string{"spec.port"}},
		{"gateway unknown service type", func() client.Object { g := validGateway("gw-svc"); g.Spec.ServiceType = "ExternalName"; return g }(),
			[]string{"spec.serviceType"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := env.Client.Create(ctx(t), tc.obj)
			if err == nil {
				t.Fatalf("created an invalid object; want an error naming %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

// TestInvalidUpdateKeepsStoredObject checks that a bad update loses nothing stored.
func TestInvalidUpdateKeepsStoredObject(t *testing.T) {
	app := validApp("keep-stored")
	if err := env.Client.Create(ctx(t), app); err != nil {
		t.Fatalf("create: %v", err)
	}
	bad := app.DeepCopy()
	bad.Spec.Source.Inline.Language = "fortran"
	if err := env.Client.Update(ctx(t), bad); err == nil {
		t.Fatal("update with an unknown language succeeded")
	}
	var got v1.Application
	if err := env.Client.Get(ctx(t), client.ObjectKeyFromObject(app), &got); err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.Spec.Source.Inline.Language != v1.LanguageC || got.Spec.Source.Inline.Code != app.Spec.Source.Inline.Code {
		t.Errorf("stored application changed after a refused update: %+v", got.Spec.Source.Inline)
	}
}

// TestBoardEnumMatchesCatalogue keeps the Device CRD's board enum equal to the catalogue.
func TestBoardEnumMatchesCatalogue(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "300-crds", "wasmbed.dev_devices.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		t.Fatalf("parse CRD: %v", err)
	}
	var enum []string
	for _, e := range crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["board"].Enum {
		enum = append(enum, strings.Trim(string(e.Raw), `"`))
	}
	slices.Sort(enum)
	if !slices.Equal(enum, boards.Names()) {
		t.Errorf("Device spec.board enum %v != board catalogue %v: update the kubebuilder:validation:Enum marker in device_types.go", enum, boards.Names())
	}
}

// TestKubectlShowsTheRolloutPolicy runs the project's kubectl against the test apiserver:
// `get -o wide` shows the failed count, the rate and what the rollout waits for, and
// `describe` the policy's status and the RolledOut condition.
func TestKubectlShowsTheRolloutPolicy(t *testing.T) {
	app := validApp("kubectl-policy")
	app.Spec.Rollout = v1.RolloutSpec{Strategy: v1.RolloutCanary,
		Steps: []v1.CanaryStep{{Percent: 10}, {Percent: 100, RequireApproval: true}},
		Rate:  &v1.RolloutRate{DevicesPerMinute: 20}}
	if err := env.Client.Create(ctx(t), app); err != nil {
		t.Fatal(err)
	}
	const waiting = "waiting for approval of step 2 of 2"
	app.Status.InitializeConditions(app.Generation)
	app.Status.MarkRolloutWaiting(app.Generation, v1.RolloutStatus{
		Digest: digest.Digest("sha256:" + strings.Repeat("ef", 32)), Step: 1, Steps: 2, Targeted: 10, Succeeded: 1, Failed: 1,
		WaitingFor: waiting, Rate: &v1.RateStatus{DevicesPerMinute: 20}, FailuresByType: map[v1.FailureType]int32{v1.FailureStart: 1},
	}, v1.ReasonWaitingForApproval, waiting)
	if err := env.Client.Status().Update(ctx(t), app); err != nil {
		t.Fatal(err)
	}
	kubectl := env.Environment.ControlPlane.KubeCtl()
	run := func(args ...string) string {
		stdout, stderr, err := kubectl.Run(args...)
		if err != nil {
			b, _ := io.ReadAll(stderr)
			t.Fatalf("kubectl %v: %v: %s", args, err, b)
		}
		b, _ := io.ReadAll(stdout)
		return string(b)
	}
	wide := run("get", "applications", "kubectl-policy", "-n", "default", "-o", "wide")
	lines := strings.Split(strings.TrimSpace(wide), "\n")
	if len(lines) != 2 {
		t.Fatalf("kubectl get -o wide:\n%s", wide)
	}
	for _, col := range []string{"PHASE", "PROGRESS", "REASON", "FAILED", "RATE", "WAITING"} {
		if !strings.Contains(lines[0], col) {
			t.Errorf("column %s missing:\n%s", col, wide)
		}
	}
	for _, cell := range []string{"Paused", "1/10", "WaitingForApproval", " 1 ", " 20 ", waiting} {
		if !strings.Contains(lines[1], cell) {
			t.Errorf("%q missing from the row:\n%s", cell, wide)
		}
	}
	t.Logf("kubectl get -o wide:\n%s", wide)
	desc := run("describe", "application", "kubectl-policy", "-n", "default")
	for _, s := range []string{"Waiting For:", waiting, "Failures By Type:", "Require Approval:", "Devices Per Minute:  20"} {
		if !strings.Contains(desc, s) {
			t.Errorf("kubectl describe lacks %q:\n%s", s, desc)
		}
	}
}

// TestRolloutPolicySnippetsAreAccepted applies the smaller examples of docs/crds.md.
func TestRolloutPolicySnippetsAreAccepted(t *testing.T) {
	for i, snippet := range []string{
		`{maintenance: {timeZone: America/New_York, windows: [{start: "02:00", duration: 3h}]}}`,
		`{rate: {devicesPerMinute: 60}, deviceTimeout: 10m, retries: [{failureType: any, attempts: 2}]}`,
		`{strategy: Canary, steps: [{percent: 100, requireApproval: true}]}`,
		`{maintenance: {timeZone: America/Argentina/Buenos_Aires, windows: [{days: [Sun], start: "23:30", duration: 168h}]}}`,
		`{schedule: {endBy: "2030-01-01T00:00:00Z", endBehavior: Continue}, abortCriteria: [{failureType: timeout, thresholdPercent: 100}]}`,
	} {
		var r v1.RolloutSpec
		if err := yaml.UnmarshalStrict([]byte(snippet), &r); err != nil {
			t.Fatalf("snippet %d: %v", i, err)
		}
		app := validApp(fmt.Sprintf("snippet-%d", i))
		app.Spec.Rollout = r
		if err := env.Client.Create(ctx(t), app); err != nil {
			t.Errorf("snippet %d %s: %v", i, snippet, err)
		}
	}
}
