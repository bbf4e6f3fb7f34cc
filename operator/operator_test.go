package operator_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/api/digest"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"net/http"
	"net/http/httptest"

	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	flowsv1 "knative.dev/eventing/pkg/apis/flows/v1"

	"github.com/wasmbed/wasmbed/api/events"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/eventserver"
	"github.com/wasmbed/wasmbed/internal/testenv"
	"github.com/wasmbed/wasmbed/operator"
	"github.com/wasmbed/wasmbed/operator/receiver"
	"github.com/wasmbed/wasmbed/operator/steps"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// broker stands in for the pipeline: it records what the operator sends.
type broker struct {
	mu  sync.Mutex
	got []cloudevents.Event
}

func (b *broker) Send(_ context.Context, e cloudevents.Event) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.got = append(b.got, e)
	return nil
}

func (b *broker) of(typ events.Type, subject string) []cloudevents.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []cloudevents.Event
	for _, e := range b.got {
		if e.Type() == string(typ) && e.Subject() == subject {
			out = append(out, e)
		}
	}
	return out
}

type harness struct {
	t      *testing.T
	ctx    context.Context
	broker *broker
	rcv    *receiver.Receiver
	ns     string
}

var nsCount int

// start runs the operator (its Application controller and receiver) in a fresh namespace.
func start(t *testing.T) *harness { return startWith(t, nil) }

// startWith is start with changes to the operator's options.
func startWith(t *testing.T, change func(*operator.Options)) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := &broker{}
	done := make(chan error, 1)
	opts := operator.Options{
		Config: env.Config, Sender: b, EventsAddr: "127.0.0.1:0", MetricsAddr: "0", HealthAddr: "0",
		Resync: 200 * time.Millisecond, Logger: logr.Discard(), SkipNameValidation: true,
	}
	if change != nil {
		change(&opts)
	}
	go func() { done <- operator.Run(ctx, opts) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("operator: %v", err)
		}
	})
	nsCount++
	ns := fmt.Sprintf("%s-%d", strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())), nsCount)
	if len(ns) > 60 {
		ns = ns[len(ns)-60:]
	}
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, ctx: ctx, broker: b, rcv: &receiver.Receiver{Client: env.Client, Steps: opts.StepRunner}, ns: ns}
}

func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (h *harness) devices(n int, board string) {
	for i := 0; i < n; i++ {
		d := &v1.Device{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("dev-%02d", i), Namespace: h.ns, Labels: map[string]string{"fleet": "a"}},
			Spec: v1.DeviceSpec{Board: board}}
		if err := env.Client.Create(h.ctx, d); err != nil {
			h.t.Fatal(err)
		}
	}
}

func (h *harness) app(name string, mutate func(*v1.Application)) *v1.Application {
	a := &v1.Application{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns},
		Spec: v1.ApplicationSpec{
			Source:   v1.ApplicationSource{Inline: &v1.InlineSource{Language: v1.LanguageC, Code: "int v1;"}},
			Selector: metav1.LabelSelector{MatchLabels: map[string]string{"fleet": "a"}},
		}}
	if mutate != nil {
		mutate(a)
	}
	if err := env.Client.Create(h.ctx, a); err != nil {
		h.t.Fatal(err)
	}
	return a
}

func (h *harness) get(name string) *v1.Application {
	var a v1.Application
	if err := env.Client.Get(h.ctx, client.ObjectKey{Namespace: h.ns, Name: name}, &a); err != nil {
		h.t.Fatal(err)
	}
	return &a
}

// update changes the app's spec, retrying when the operator wrote status meanwhile.
func (h *harness) update(name string, mutate func(*v1.Application)) {
	h.t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		a := h.get(name)
		mutate(a)
		return env.Client.Update(h.ctx, a)
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) cond(name, typ string) *metav1.Condition {
	return meta.FindStatusCondition(h.get(name).Status.Conditions, typ)
}

// deliver hands an event to the operator's receiver, as the broker would.
func (h *harness) deliver(typ events.Type, subject string, data events.Payload) {
	h.t.Helper()
	e, err := events.New(typ, "/test", subject, data)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.rcv.Handle(h.ctx, e); err != nil {
		h.t.Fatalf("receiver: %v", err)
	}
}

func digestOf(s string) digest.Digest { return digest.Digest("sha256:" + strings.Repeat(s, 64)[:64]) }

// waitBuild waits for the build request of the app's current generation and returns its
// ref; n is how many build requests the app's name should have had by then.
func (h *harness) waitBuild(name string, n int) events.AppRef {
	h.t.Helper()
	subject := h.ns + "/" + name
	gen := h.get(name).Generation
	var found events.AppRef
	h.eventually(fmt.Sprintf("build request of generation %d", gen), func() bool {
		ok := false
		for _, e := range h.broker.of(events.BuildRequested, subject) {
			d, err := events.DecodeAs[*events.BuildRequestedData](e, events.BuildRequested)
			if err == nil && d.Application.Generation == gen && d.Application.UID == string(h.get(name).UID) {
				found, ok = d.Application, true
			}
		}
		return ok
	})
	h.eventually("status observing the generation", func() bool { return h.get(name).Status.ObservedGeneration == gen })
	if got := len(h.broker.of(events.BuildRequested, subject)); got != n {
		h.t.Errorf("%d build requests, want %d (one per generation)", got, n)
	}
	return found
}

// buildAndValidate plays compile and validate for the current generation.
func (h *harness) buildAndValidate(ref events.AppRef, digest digest.Digest) {
	h.built(ref, digest)
	h.validated(ref, digest)
}

// built plays compile's module.built.
func (h *harness) built(ref events.AppRef, digest digest.Digest) {
	h.deliver(events.ModuleBuilt, ref.Subject(), &events.ModuleBuiltData{Application: ref, Digest: digest, Size: 100, Toolchain: "test", Boards: []string{"virtual"}})
}

// validated plays validate's module.validated.
func (h *harness) validated(ref events.AppRef, digest digest.Digest) {
	h.deliver(events.ModuleValidated, ref.Subject(), &events.ModuleValidatedData{Application: ref, Digest: digest, Size: 100,
		Report: events.ValidationReport{Digest: digest, Size: 100, Boards: []events.BoardFit{{Board: "virtual", Fits: true, MemoryBytes: 65536}}}})
}

// dispatched plays dispatch's answer for rollout step 0: devices of targeted sent digest.
func (h *harness) dispatched(ref events.AppRef, digest digest.Digest, devices, targeted int) {
	h.deliver(events.DeploymentDispatched, ref.Subject(), &events.DeploymentDispatchedData{Application: ref, Digest: digest, Step: 0, Targeted: targeted,
		Batches: []events.GatewayBatch{{Gateway: v1.Ref{Namespace: "wasmbed-system", Name: "gateway"}, Devices: devices}}})
}

// removed plays dispatch confirming the removal of ref's object from its devices.
func (h *harness) removed(ref events.AppRef, digest digest.Digest) {
	h.deliver(events.DeploymentDispatched, ref.Subject(), &events.DeploymentDispatchedData{Application: ref, Digest: digest, Remove: true, Targeted: 1})
}

// waitTrue waits for condition typ of the app to be True.
func (h *harness) waitTrue(name, typ string) {
	h.t.Helper()
	h.eventually(name+" "+typ, func() bool {
		c := h.cond(name, typ)
		return c != nil && c.Status == metav1.ConditionTrue
	})
}

// waitGone waits for the app to be deleted.
func (h *harness) waitGone(name string) {
	h.t.Helper()
	h.eventually(name+" gone", func() bool {
		return apierrors.IsNotFound(env.Client.Get(h.ctx, client.ObjectKey{Namespace: h.ns, Name: name}, &v1.Application{}))
	})
}

// report plays a device reporting the app's state through its gateway.
func (h *harness) report(ref events.AppRef, device string, dg digest.Digest, state v1.AppState, msg string) {
	typ := events.DeploymentSucceeded
	if state == "Failed" {
		typ = events.DeploymentFailed
	}
	h.deliver(typ, ref.Subject(), &events.DeploymentResultData{Application: ref, Device: device, Gateway: v1.Ref{Namespace: "wasmbed-system", Name: "gateway"}, Digest: dg, State: state, Message: msg})
}

func TestAllAtOnceToReady(t *testing.T) {
	h := start(t)
	h.devices(3, "virtual")
	h.app("blink", nil)
	ref := h.waitBuild("blink", 1)

	// The build request carries the source and the target boards.
	d, _ := events.DecodeAs[*events.BuildRequestedData](h.broker.of(events.BuildRequested, ref.Subject())[0])
	if d.Source.Code != "int v1;" || strings.Join(d.Boards, ",") != "virtual" {
		t.Errorf("build request = %+v", d)
	}
	if a := h.get("blink"); a.Status.Phase != v1.ApplicationBuilding || len(a.Finalizers) != 1 {
		t.Errorf("phase %s finalizers %v", a.Status.Phase, a.Finalizers)
	}

	dg := digestOf("a")
	h.buildAndValidate(ref, dg)
	h.eventually("rolling out", func() bool { return h.get("blink").Status.Phase == v1.ApplicationRollingOut })
	for i := 0; i < 3; i++ {
		h.report(ref, fmt.Sprintf("dev-%02d", i), dg, "Running", "")
	}
	h.waitTrue("blink", v1.ConditionReady)
	a := h.get("blink")
	if a.Status.Phase != v1.ApplicationRunning || a.Status.Rollout.Progress != "3/3" || a.Status.PreviousGoodDigest != dg {
		t.Errorf("status = phase %s rollout %+v previousGood %s", a.Status.Phase, a.Status.Rollout, a.Status.PreviousGoodDigest)
	}
	var dev v1.Device
	_ = env.Client.Get(h.ctx, client.ObjectKey{Namespace: h.ns, Name: "dev-01"}, &dev)
	if len(dev.Status.Applications) != 1 || dev.Status.Applications[0].State != v1.AppRunning {
		t.Errorf("device apps = %+v", dev.Status.Applications)
	}
}

func TestBuildFailureReachesReady(t *testing.T) {
	h := start(t)
	h.devices(1, "virtual")
	h.app("broken", nil)
	ref := h.waitBuild("broken", 1)
	h.deliver(events.BuildFailed, ref.Subject(), &events.BuildFailedData{Application: ref, Reason: "CompileError", Message: "main.c:3:10: error: use of undeclared identifier 'x'"})
	h.eventually("Built=False", func() bool {
		c := h.cond("broken", v1.ConditionBuilt)
		return c != nil && c.Status == metav1.ConditionFalse
	})
	ready := h.cond("broken", v1.ConditionReady)
	if ready.Status != metav1.ConditionFalse || ready.Reason != v1.ReasonBuildFailed || !strings.Contains(ready.Message, "main.c:3:10") {
		t.Errorf("Ready = %+v", ready)
	}
	if h.get("broken").Status.Phase != v1.ApplicationFailed {
		t.Errorf("phase = %s", h.get("broken").Status.Phase)
	}
}

func TestCanaryStepsAndRollback(t *testing.T) {
	h := start(t)
	h.devices(4, "virtual")
	h.app("canary", func(a *v1.Application) {
		a.Spec.Rollout = v1.RolloutSpec{Strategy: v1.RolloutCanary, Steps: []v1.CanaryStep{{Percent: 25}, {Percent: 100}}}
	})
	// Version 1 rolls out in two steps.
	ref := h.waitBuild("canary", 1)
	good := digestOf("1")
	h.buildAndValidate(ref, good)
	h.eventually("rolling out v1", func() bool { return h.get("canary").Status.Rollout != nil })
	// Dispatch starts step 0 itself on module.validated: one device (25% of 4).
	targetsOf := func() []string {
		var list v1.DeviceList
		_ = env.Client.List(h.ctx, &list, client.InNamespace(h.ns))
		var out []string
		for _, d := range list.Items {
			out = append(out, d.Name)
		}
		return out
	}
	all := targetsOf()
	// Report the whole fleet running v1: step 0's batch is done, step 1 is requested,
	// then the rollout completes.
	for _, d := range all {
		h.report(ref, d, good, "Running", "")
	}
	h.eventually("step 1 requested", func() bool {
		for _, e := range h.broker.of(events.RolloutRequested, ref.Subject()) {
			d, _ := events.DecodeAs[*events.RolloutRequestedData](e)
			if d.Step == 1 && d.Digest == good {
				return true
			}
		}
		return false
	})
	h.waitTrue("canary", v1.ConditionRolledOut)

	// Version 2 traps on the devices: the first step's device fails, the rollout stops
	// and the previous good module goes back to that device.
	h.update("canary", func(a *v1.Application) { a.Spec.Source.Inline.Code = "int v2;" })
	ref2 := h.waitBuild("canary", 2)
	bad := digestOf("2")
	h.buildAndValidate(ref2, bad)
	h.eventually("rolling out v2", func() bool {
		r := h.get("canary").Status.Rollout
		return r != nil && r.Digest == bad
	})
	h.report(ref2, all[0], bad, "Failed", "setup: unreachable")
	h.eventually("rolled back", func() bool {
		c := h.cond("canary", v1.ConditionRolledOut)
		return c != nil && c.Reason == v1.ReasonRolledBack
	})
	var rollback *events.RolloutRequestedData
	for _, e := range h.broker.of(events.RolloutRequested, ref.Subject()) {
		d, _ := events.DecodeAs[*events.RolloutRequestedData](e)
		if d.Digest == good && len(d.Devices) > 0 {
			rollback = d
		}
	}
	if rollback == nil || len(rollback.Devices) != 1 {
		t.Fatalf("rollback request = %+v, want the previous good digest to step 0's single device", rollback)
	}
	a := h.get("canary")
	if a.Status.Phase != v1.ApplicationFailed || !a.Status.Rollout.RolledBack || !strings.Contains(a.Status.Rollout.FirstFailure, "unreachable") {
		t.Errorf("status = %s %+v", a.Status.Phase, a.Status.Rollout)
	}
}

// TestAbortedRolloutStaysAborted: aborting a rollout (a new generation that keeps the
// module) rolls the devices back; dispatch's answer to that rollback is not taken for
// the start of a new rollout.
func TestAbortedRolloutStaysAborted(t *testing.T) {
	h := start(t)
	h.devices(4, "virtual")
	h.app("abort", func(a *v1.Application) {
		a.Spec.Rollout = v1.RolloutSpec{Strategy: v1.RolloutCanary, Steps: []v1.CanaryStep{{Percent: 50}, {Percent: 100}}}
	})
	ref := h.waitBuild("abort", 1)
	good, bad := digestOf("3"), digestOf("4")
	h.buildAndValidate(ref, good)
	for i := range 4 {
		h.report(ref, fmt.Sprintf("dev-%02d", i), good, "Running", "")
	}
	h.waitTrue("abort", v1.ConditionRolledOut)
	h.update("abort", func(a *v1.Application) { a.Spec.Source.Inline.Code = "int v2;" })
	ref2 := h.waitBuild("abort", 2)
	h.buildAndValidate(ref2, bad)
	h.eventually("rolling out v2", func() bool { r := h.get("abort").Status.Rollout; return r != nil && r.Digest == bad })
	h.update("abort", func(a *v1.Application) { a.Spec.Rollout.Abort = true })
	aborted := func() bool {
		c := h.cond("abort", v1.ConditionRolledOut)
		return c != nil && c.Reason == v1.ReasonRolloutAborted && c.ObservedGeneration == h.get("abort").Generation
	}
	h.eventually("aborted", aborted)
	a := h.get("abort")
	ref3 := events.AppRef{Namespace: a.Namespace, Name: a.Name, Generation: a.Generation, UID: string(a.UID)}
	h.dispatched(ref3, good, 2, 4)
	if !aborted() || h.get("abort").Status.Rollout.Digest != bad {
		t.Errorf("after the rollback was dispatched: %+v, rollout %+v", h.cond("abort", v1.ConditionRolledOut), h.get("abort").Status.Rollout)
	}
}

func TestRolloutSettingsDoNotRebuild(t *testing.T) {
	h := start(t)
	h.devices(2, "virtual")
	h.app("pausing", nil)
	ref := h.waitBuild("pausing", 1)
	dg := digestOf("c")
	h.buildAndValidate(ref, dg)
	h.eventually("rolling out", func() bool { return h.get("pausing").Status.Rollout != nil })

	h.update("pausing", func(a *v1.Application) { a.Spec.Rollout.Paused = true })
	h.eventually("paused", func() bool { return h.get("pausing").Status.Phase == v1.ApplicationPaused })
	if n := len(h.broker.of(events.BuildRequested, ref.Subject())); n != 1 {
		t.Errorf("%d build requests; pausing must not rebuild", n)
	}
	h.update("pausing", func(a *v1.Application) { a.Spec.Rollout.Paused = false })
	ref.Generation = h.get("pausing").Generation
	for _, d := range []string{"dev-00", "dev-01"} {
		h.report(ref, d, dg, "Running", "")
	}
	h.eventually("Running after resume", func() bool { return h.get("pausing").Status.Phase == v1.ApplicationRunning })
}

func TestDeleteRemovesFromDevices(t *testing.T) {
	h := start(t)
	h.devices(1, "virtual")
	h.app("gone", nil)
	ref := h.waitBuild("gone", 1)
	dg := digestOf("d")
	h.buildAndValidate(ref, dg)
	h.eventually("rolling out", func() bool { return h.get("gone").Status.Rollout != nil })
	if err := env.Client.Delete(h.ctx, h.get("gone")); err != nil {
		t.Fatal(err)
	}
	h.eventually("removal requested", func() bool {
		for _, e := range h.broker.of(events.RolloutRequested, ref.Subject()) {
			if d, _ := events.DecodeAs[*events.RolloutRequestedData](e); d.Remove && d.Digest == dg {
				return true
			}
		}
		return false
	})
	h.removed(ref, dg)
	h.waitGone("gone")
}

// TestRecreatedApplication: events about a deleted Application never act on the new
// object of the same name, though its generation is the same.
func TestRecreatedApplication(t *testing.T) {
	h := start(t)
	h.devices(1, "virtual")
	h.app("again", nil)
	old := h.waitBuild("again", 1)
	if old.UID == "" || old.UID != string(h.get("again").UID) {
		t.Fatalf("build request ref %+v lacks the object's uid", old)
	}
	dg := digestOf("e")
	h.buildAndValidate(old, dg)
	h.eventually("rolling out", func() bool { return h.get("again").Status.Rollout != nil })
	removed := func(ref events.AppRef) bool {
		for _, e := range h.broker.of(events.RolloutRequested, ref.Subject()) {
			if d, _ := events.DecodeAs[*events.RolloutRequestedData](e); d.Remove && d.Application.UID == ref.UID {
				return true
			}
		}
		return false
	}
	if err := env.Client.Delete(h.ctx, h.get("again")); err != nil {
		t.Fatal(err)
	}
	h.eventually("removal requested", func() bool { return removed(old) })
	h.removed(old, dg)
	h.waitGone("again")

	h.app("again", nil)
	ref := h.waitBuild("again", 2)
	if ref.UID == old.UID || ref.Generation != old.Generation {
		t.Fatalf("new object ref %+v, old %+v", ref, old)
	}
	// The old object's late pipeline events: none touches the new one's status.
	h.buildAndValidate(old, digestOf("f"))
	if a := h.get("again"); a.Status.Build != nil || a.Status.Rollout != nil {
		t.Errorf("the deleted object's events changed the new one: build %+v rollout %+v", a.Status.Build, a.Status.Rollout)
	}
	h.buildAndValidate(ref, digestOf("f"))
	h.eventually("new object rolling out", func() bool { return h.get("again").Status.Rollout != nil })
	// Nor does the old object's removal confirmation end the new one's deletion early.
	if err := env.Client.Delete(h.ctx, h.get("again")); err != nil {
		t.Fatal(err)
	}
	h.eventually("removal of the new object requested", func() bool { return removed(ref) })
	h.removed(old, dg)
	if a := h.get("again"); len(a.Finalizers) != 1 {
		t.Errorf("the deleted object's removal dropped the new one's finalizer: %v", a.Finalizers)
	}
	h.removed(ref, digestOf("f"))
	h.waitGone("again")
}

// TestValidatedBeforeBuilt: module.built can reach the operator after module.validated
// (the broker retried it, or lost it). Validation proves what the build produced, so the
// status records the build from it and the rollout completes; module.built adds the
// toolchain when it comes.
func TestValidatedBeforeBuilt(t *testing.T) {
	h := start(t)
	h.devices(2, "virtual")
	h.app("late-build", nil)
	ref := h.waitBuild("late-build", 1)
	dg := digestOf("7")
	h.validated(ref, dg)
	if b := h.get("late-build").Status.Build; b == nil || b.Digest != dg || b.Size != 100 {
		t.Fatalf("build status after validation %+v", b)
	}
	for i := range 2 {
		h.report(ref, fmt.Sprintf("dev-%02d", i), dg, "Running", "")
	}
	h.waitTrue("late-build", v1.ConditionReady)
	h.built(ref, dg)
	a := h.get("late-build")
	if a.Status.Build.Toolchain != "test" || !meta.IsStatusConditionTrue(a.Status.Conditions, v1.ConditionValidated) ||
		!meta.IsStatusConditionTrue(a.Status.Conditions, v1.ConditionReady) {
		t.Errorf("after the late module.built: build %+v, conditions %+v", a.Status.Build, a.Status.Conditions)
	}
}

// TestDispatchReplyBeforeBuilt: a dispatch reply can even beat module.built; the
// receiver acknowledges it and the rollout starts with module.validated.
func TestDispatchReplyBeforeBuilt(t *testing.T) {
	h := start(t)
	h.devices(1, "virtual")
	h.app("early", nil)
	ref := h.waitBuild("early", 1)
	dg := digestOf("8")
	h.dispatched(ref, dg, 1, 1)
	h.buildAndValidate(ref, dg)
	h.report(ref, "dev-00", dg, "Running", "")
	h.waitTrue("early", v1.ConditionReady)
}

// TestRecreatedDoesNotCountOldReports: a device that was offline while an Application
// was deleted still shows the deleted object's Running. The re-created object (same
// name, same module, another configuration) does not count it as its own.
func TestRecreatedDoesNotCountOldReports(t *testing.T) {
	h := start(t)
	h.devices(1, "virtual")
	h.app("re", nil)
	old := h.waitBuild("re", 1)
	dg := digestOf("a")
	h.buildAndValidate(old, dg)
	h.report(old, "dev-00", dg, "Running", "")
	h.waitTrue("re", v1.ConditionRolledOut)
	if err := env.Client.Delete(h.ctx, h.get("re")); err != nil {
		t.Fatal(err)
	}
	h.removed(old, dg)
	h.waitGone("re")
	h.app("re", func(a *v1.Application) { a.Spec.Config = map[string]string{"k": "new"} })
	ref := h.waitBuild("re", 2)
	h.buildAndValidate(ref, dg)
	h.eventually("the rollout counted", func() bool { r := h.get("re").Status.Rollout; return r != nil && r.Targeted == 1 })
	a := h.get("re")
	if c := meta.FindStatusCondition(a.Status.Conditions, v1.ConditionRolledOut); a.Status.Rollout.Succeeded != 0 || (c != nil && c.Status == metav1.ConditionTrue) {
		t.Errorf("the deleted object's report counted: rollout %+v, condition %+v", a.Status.Rollout, c)
	}
	h.report(ref, "dev-00", dg, "Running", "")
	h.waitTrue("re", v1.ConditionRolledOut)
}

// TestDispatchReplyBeforeValidated: dispatch answers module.validated with
// deployment.dispatched, and the broker may hand the answer to the operator first. The
// rollout still counts the devices dispatched, so it is not requested again.
func TestDispatchReplyBeforeValidated(t *testing.T) {
	h := start(t)
	h.devices(3, "virtual")
	h.app("quick", nil)
	ref := h.waitBuild("quick", 1)
	dg := digestOf("9")
	h.built(ref, dg)
	h.dispatched(ref, dg, 3, 3)
	h.validated(ref, dg)
	h.eventually("rolling out", func() bool { return h.get("quick").Status.Phase == v1.ApplicationRollingOut })
	ro := h.get("quick").Status.Rollout
	if ro == nil || ro.Digest != dg || ro.Dispatched != 3 || ro.RequestedAt == nil {
		t.Fatalf("rollout %+v, want %s dispatched to 3 devices", ro, dg)
	}
	for i := range 3 {
		h.report(ref, fmt.Sprintf("dev-%02d", i), dg, "Running", "")
	}
	h.waitTrue("quick", v1.ConditionRolledOut)
	if n := len(h.broker.of(events.RolloutRequested, ref.Subject())); n != 0 {
		t.Errorf("the operator requested the step again %d times", n)
	}
}

func TestDeviceEvents(t *testing.T) {
	h := start(t)
	h.devices(1, "stm32f4-discovery")
	seen := time.Now()
	h.rcv.Now = func() time.Time { return seen }
	h.deliver(events.DeviceConnected, h.ns+"/dev-00", &events.DeviceConnectedData{Namespace: h.ns, Device: "dev-00", Gateway: v1.Ref{Namespace: "wasmbed-system", Name: "gateway"},
		FirmwareVersion: "0.1.0", RAMBytes: 196608, ABIVersion: 1, Applications: []events.AppOnDevice{{Name: "blink", Digest: digestOf("b"), State: "Running"}}})
	var d v1.Device
	get := func() *v1.Device {
		_ = env.Client.Get(h.ctx, client.ObjectKey{Namespace: h.ns, Name: "dev-00"}, &d)
		return &d
	}
	if g := get(); g.Status.Phase != v1.DeviceConnected || g.Status.Gateway != "wasmbed-system/gateway" || g.Status.FirmwareVersion != "0.1.0" ||
		g.Status.Capabilities.RAMBytes != 196608 || len(g.Status.Applications) != 1 {
		t.Fatalf("after connect: %+v", g.Status)
	}
	rv := get().ResourceVersion
	// A device.seen within the interval writes nothing; after it, lastSeen moves.
	h.rcv.Now = func() time.Time { return seen.Add(time.Minute) }
	h.deliver(events.DeviceSeen, "wasmbed-system/gateway", &events.DeviceSeenData{Gateway: v1.Ref{Namespace: "wasmbed-system", Name: "gateway"}, Devices: []v1.Ref{{Namespace: h.ns, Name: "dev-00"}}})
	if get().ResourceVersion != rv {
		t.Errorf("device.seen within the interval wrote the Device")
	}
	h.rcv.Now = func() time.Time { return seen.Add(6 * time.Minute) }
	h.deliver(events.DeviceSeen, "wasmbed-system/gateway", &events.DeviceSeenData{Gateway: v1.Ref{Namespace: "wasmbed-system", Name: "gateway"}, Devices: []v1.Ref{{Namespace: h.ns, Name: "dev-00"}}})
	if g := get(); g.Status.LastSeen == nil || g.Status.LastSeen.Time.Before(seen.Add(5*time.Minute)) {
		t.Errorf("lastSeen not refreshed: %v", g.Status.LastSeen)
	}
	h.deliver(events.DeviceDisconnected, h.ns+"/dev-00", &events.DeviceDisconnectedData{Namespace: h.ns, Device: "dev-00", Gateway: v1.Ref{Namespace: "wasmbed-system", Name: "gateway"}, Reason: "heartbeat-timeout"})
	if g := get(); g.Status.Phase != v1.DeviceDisconnected || !strings.Contains(meta.FindStatusCondition(g.Status.Conditions, v1.ConditionConnected).Message, "heartbeat-timeout") {
		t.Errorf("after disconnect: %+v", g.Status)
	}
	// Events about a device that does not exist are acknowledged and ignored.
	h.deliver(events.DeviceConnected, h.ns+"/ghost", &events.DeviceConnectedData{Namespace: h.ns, Device: "ghost", Gateway: v1.Ref{Namespace: "wasmbed-system", Name: "g"}})
}

// TestDeviceReportsOutOfOrder: deployment.succeeded and deployment.failed travel on
// different Triggers, so a device's reports can arrive in another order than the
// gateway sent them. The Device shows the latest report, by the events' time.
func TestDeviceReportsOutOfOrder(t *testing.T) {
	h := start(t)
	h.devices(1, "virtual")
	base := time.Now().Add(-time.Hour)
	h.rcv.Now = func() time.Time { return base.Add(time.Hour) }
	type rep struct {
		at     time.Duration // after base
		digest string
		state  v1.AppState
	}
	for _, tc := range []struct {
		name  string
		sent  []rep // in the order they arrive
		want  string
		state v1.AppState
	}{
		{"in order", []rep{{1, "a", "Failed"}, {2, "b", "Running"}}, "b", v1.AppRunning},
		{"the trap of the old module arrives last", []rep{{2, "b", "Running"}, {1, "a", "Failed"}}, "b", v1.AppRunning},
		{"same time, arrival order", []rep{{1, "a", "Running"}, {1, "b", "Failed"}}, "b", v1.AppFailed},
		{"a report older than the removal", []rep{{3, "a", "Removed"}, {2, "a", "Failed"}}, "a", v1.AppRemoved},
		{"a new deployment after the removal", []rep{{3, "a", "Removed"}, {4, "c", "Running"}}, "c", v1.AppRunning},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := strings.NewReplacer(" ", "-", ",", "").Replace(tc.name)
			ref := events.AppRef{Namespace: h.ns, Name: app, Generation: 1}
			for _, r := range tc.sent {
				typ := events.DeploymentSucceeded
				if r.state == "Failed" {
					typ = events.DeploymentFailed
				}
				e, err := events.New(typ, "/test", ref.Subject(), &events.DeploymentResultData{Application: ref, Device: "dev-00",
					Gateway: v1.Ref{Namespace: "wasmbed-system", Name: "gateway"}, Digest: digestOf(r.digest), State: r.state, Message: "m"})
				if err != nil {
					t.Fatal(err)
				}
				e.SetTime(base.Add(r.at * time.Second))
				if _, err := h.rcv.Handle(h.ctx, e); err != nil {
					t.Fatal(err)
				}
			}
			var d v1.Device
			if err := env.Client.Get(h.ctx, client.ObjectKey{Namespace: h.ns, Name: "dev-00"}, &d); err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(d.Status.Applications, func(a v1.DeviceApplication) bool { return a.Name == app })
			if i < 0 {
				t.Fatalf("no entry for %s in %+v", app, d.Status.Applications)
			}
			if a := d.Status.Applications[i]; a.Digest != digestOf(tc.want) || a.State != tc.state {
				t.Errorf("device shows %s %s, want %s %s", a.Digest, a.State, digestOf(tc.want), tc.state)
			}
		})
	}
	// Removed entries go once they are old; a write about another app prunes them.
	h.rcv.Now = func() time.Time { return base.Add(time.Hour + 10*time.Minute) }
	h.report(events.AppRef{Namespace: h.ns, Name: "later", Generation: 1}, "dev-00", digestOf("d"), "Running", "")
	var d v1.Device
	if err := env.Client.Get(h.ctx, client.ObjectKey{Namespace: h.ns, Name: "dev-00"}, &d); err != nil {
		t.Fatal(err)
	}
	for _, a := range d.Status.Applications {
		if a.State == v1.AppRemoved {
			t.Errorf("%s still shows Removed 10 minutes later", a.Name)
		}
	}
}

// TestSessionsOutOfOrder: device.connected and device.disconnected travel on separate
// Triggers, and a gateway may notice that a device left long after it connected to
// another. The Device shows its newest session, ordered by when sessions opened.
func TestSessionsOutOfOrder(t *testing.T) {
	h := start(t)
	type ev struct {
		up      bool // connected, else disconnected
		gw, sid string
		opened  time.Duration // after base; 0 with sid "": an event that names no session
	}
	const gw1, gw2 = "wasmbed-system/gw-1", "wasmbed-system/gw-2"
	base := time.Now().Add(-time.Hour)
	const s = time.Second
	cases := []struct {
		name     string
		events   []ev
		phase    v1.DevicePhase
		gw, sid  string
		firmware string
	}{
		{"in order", []ev{{true, gw1, "a", 10 * s}, {false, gw1, "a", 10 * s}}, v1.DeviceDisconnected, gw1, "a", "a"},
		{"replaced, the old session's end arrives last", []ev{{true, gw1, "a", 10 * s}, {true, gw1, "b", 11 * s}, {false, gw1, "a", 10 * s}}, v1.DeviceConnected, gw1, "b", "b"},
		{"moved gateway, the old one notices late", []ev{{true, gw1, "a", 10 * s}, {true, gw2, "b", 20 * s}, {false, gw1, "a", 10 * s}}, v1.DeviceConnected, gw2, "b", "b"},
		{"moved to a gateway whose clock is behind", []ev{{true, gw1, "a", 10 * s}, {true, gw2, "b", 9 * s}, {false, gw1, "a", 10 * s}}, v1.DeviceConnected, gw2, "b", "b"},
		{"a short session's end arrives before its start", []ev{{true, gw1, "a", 10 * s}, {false, gw1, "b", 11 * s}, {true, gw1, "b", 11 * s}}, v1.DeviceDisconnected, gw1, "b", "a"},
		{"an older session's start arrives late", []ev{{true, gw2, "b", 20 * s}, {true, gw1, "a", 10 * s}}, v1.DeviceConnected, gw2, "b", "b"},
		{"events that name no session: arrival order", []ev{{true, gw1, "", 0}, {false, gw1, "", 0}}, v1.DeviceDisconnected, gw1, "", ""},
		{"after a gateway that names no session, another's session end", []ev{{true, gw1, "a", 10 * s}, {true, gw2, "", 0}, {false, gw1, "a", 10 * s}}, v1.DeviceConnected, gw2, "", ""},
	}
	h.devices(len(cases), "virtual")
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("dev-%02d", i)
			for _, e := range tc.events {
				var since time.Time
				if e.sid != "" {
					since = base.Add(e.opened)
				}
				if e.up {
					h.deliver(events.DeviceConnected, h.ns+"/"+name, &events.DeviceConnectedData{Namespace: h.ns, Device: name, Gateway: ref(e.gw),
						FirmwareVersion: e.sid, Session: e.sid, Since: since})
				} else {
					h.deliver(events.DeviceDisconnected, h.ns+"/"+name, &events.DeviceDisconnectedData{Namespace: h.ns, Device: name, Gateway: ref(e.gw),
						Reason: "client-closed", Session: e.sid, Since: since})
				}
			}
			var d v1.Device
			if err := env.Client.Get(h.ctx, client.ObjectKey{Namespace: h.ns, Name: name}, &d); err != nil {
				t.Fatal(err)
			}
			sid := ""
			if d.Status.Session != nil {
				sid = d.Status.Session.ID
			}
			if d.Status.Phase != tc.phase || d.Status.Gateway != tc.gw || sid != tc.sid || d.Status.FirmwareVersion != tc.firmware {
				t.Errorf("phase %s, gateway %s, session %q, firmware %q; want %s, %s, %q, %q",
					d.Status.Phase, d.Status.Gateway, sid, d.Status.FirmwareVersion, tc.phase, tc.gw, tc.sid, tc.firmware)
			}
		})
	}
}

func TestStepsRunInProcess(t *testing.T) {
	// A step that stamps the event it passes on, and one that fails.
	var seen []string
	var mu sync.Mutex
	stepSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := cehttp.NewEventFromHTTPRequest(r)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		mu.Lock()
		seen = append(seen, r.URL.Path)
		mu.Unlock()
		if r.URL.Path == "/fail" {
			http.Error(w, "scanner found a problem", http.StatusInternalServerError)
			return
		}
		e.SetExtension("scanned", "yes")
		if err := cehttp.WriteResponseWriter(r.Context(), binding.ToMessage(e), http.StatusOK, w); err != nil {
			t.Error(err)
		}
	}))
	defer stepSrv.Close()

	var h *harness
	b := &broker{}
	runner, err := steps.NewRunner(b)
	if err != nil {
		t.Fatal(err)
	}
	h = startWith(t, func(o *operator.Options) { o.StepRunner = runner })
	h.devices(1, "virtual")
	h.app("scanned", func(a *v1.Application) {
		a.Spec.Steps = []v1.PipelineStep{{URI: stepSrv.URL + "/scan"}, {URI: stepSrv.URL + "/sign"}}
	})
	ref := h.waitBuild("scanned", 1)
	dg := digestOf("e")
	h.buildAndValidate(ref, dg)
	c := h.cond("scanned", v1.ConditionRolledOut)
	if c.Reason != v1.ReasonRunningSteps || h.get("scanned").Status.Rollout != nil {
		t.Fatalf("before the steps are done: RolledOut %+v, rollout %+v", c, h.get("scanned").Status.Rollout)
	}
	// Both steps ran in order and the result went to the broker marked done.
	out := b.of(events.ModuleValidated, ref.Subject())
	if len(out) != 1 || out[0].Extensions()[events.ExtSteps] != events.StepsDone || out[0].Extensions()["scanned"] != "yes" {
		t.Fatalf("sent after the steps: %v", out)
	}
	if strings.Join(seen, ",") != "/scan,/sign" {
		t.Errorf("steps called: %v", seen)
	}
	// The done event starts the rollout.
	if _, err := h.rcv.Handle(h.ctx, out[0]); err != nil {
		t.Fatal(err)
	}
	h.eventually("rolling out after the steps", func() bool { return h.get("scanned").Status.Rollout != nil })

	// A failing step stops the Application before any rollout, with the step named.
	h.app("refused", func(a *v1.Application) { a.Spec.Steps = []v1.PipelineStep{{URI: stepSrv.URL + "/fail"}} })
	ref2 := h.waitBuild("refused", 1)
	h.buildAndValidate(ref2, dg)
	c = h.cond("refused", v1.ConditionRolledOut)
	if c.Status != metav1.ConditionFalse || c.Reason != v1.ReasonStepFailed || !strings.Contains(c.Message, "spec.steps[0]") {
		t.Errorf("after a failing step: %+v", c)
	}
}

func TestStepsAsKnativeSequence(t *testing.T) {
	if err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "wasmbed-system"}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	h := startWith(t, func(o *operator.Options) {
		o.Steps = &steps.ClusterOptions{BrokerNamespace: "wasmbed-system", Broker: "wasmbed", ReplyURL: "http://wasmbed-operator.wasmbed-system.svc.cluster.local/steps-done"}
	})
	h.devices(1, "virtual")
	h.app("seq", func(a *v1.Application) {
		a.Spec.Steps = []v1.PipelineStep{
			{Ref: &v1.StepReference{APIVersion: "serving.knative.dev/v1", Kind: "Service", Name: "scanner"}},
			{URI: "https://signer.example/sign"},
		}
	})
	var seq flowsv1.Sequence
	var trig eventingv1.Trigger
	h.eventually("the Sequence and its Trigger", func() bool {
		return env.Client.Get(h.ctx, client.ObjectKey{Namespace: h.ns, Name: "seq-steps"}, &seq) == nil &&
			env.Client.Get(h.ctx, client.ObjectKey{Namespace: "wasmbed-system", Name: "steps-" + h.ns + "-seq"}, &trig) == nil
	})
	if len(seq.Spec.Steps) != 2 || seq.Spec.Steps[0].Ref.Name != "scanner" || seq.Spec.Reply.URI.String() != "http://wasmbed-operator.wasmbed-system.svc.cluster.local/steps-done" ||
		seq.Spec.Reply.Audience == nil || *seq.Spec.Reply.Audience != events.ReceiverAudience("operator") {
		t.Errorf("sequence = %+v", seq.Spec)
	}
	if trig.Spec.Subscriber.Ref.Kind != "Sequence" || len(trig.Spec.Filters) != 1 {
		t.Errorf("trigger = %+v", trig.Spec)
	}
	// Removing the steps removes both.
	h.update("seq", func(a *v1.Application) { a.Spec.Steps = nil })
	h.eventually("the Trigger gone", func() bool {
		return apierrors.IsNotFound(env.Client.Get(h.ctx, client.ObjectKey{Namespace: "wasmbed-system", Name: "steps-" + h.ns + "-seq"}, &trig))
	})
}

// TestEventBeforeTheControllerObservedIsRetried delivers a module.built that raced the
// controller's first status write (compile can answer before it lands): the receiver
// answers 409 so the broker redelivers, and applies the event once the generation is
// observed. Dropping it left an Application Ready with its build unknown.
func TestEventBeforeTheControllerObservedIsRetried(t *testing.T) {
	ctx := context.Background()
	ns := "early-event"
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	app := &v1.Application{ObjectMeta: metav1.ObjectMeta{Name: "early", Namespace: ns},
		Spec: v1.ApplicationSpec{Source: v1.ApplicationSource{Inline: &v1.InlineSource{Language: v1.LanguageC, Code: "int v1;"}}}}
	if err := env.Client.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	rcv := &receiver.Receiver{Client: env.Client}
	ref := events.AppRef{Namespace: ns, Name: "early", Generation: app.Generation}
	e, err := events.New(events.ModuleBuilt, "/test", ref.Subject(),
		&events.ModuleBuiltData{Application: ref, Digest: digestOf("a"), Size: 100, Toolchain: "test", Boards: []string{"virtual"}})
	if err != nil {
		t.Fatal(err)
	}
	get := func() *v1.Application {
		var a v1.Application
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(app), &a); err != nil {
			t.Fatal(err)
		}
		return &a
	}

	_, err = rcv.Handle(ctx, e)
	if !errors.Is(err, receiver.ErrNotObserved) || eventserver.StatusOf(err) != http.StatusConflict {
		t.Fatalf("before the controller observed the generation: err %v (HTTP %d), want ErrNotObserved as 409", err, eventserver.StatusOf(err))
	}
	if b := get().Status.Build; b != nil {
		t.Fatalf("status.build set from an unobserved generation: %+v", b)
	}

	a := get()
	a.Status.InitializeConditions(a.Generation)
	a.Status.MarkBuilding(a.Generation)
	a.Status.ObservedGeneration = a.Generation
	if err := env.Client.Status().Update(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := rcv.Handle(ctx, e); err != nil {
		t.Fatalf("redelivery after the controller observed the generation: %v", err)
	}
	if b := get().Status.Build; b == nil || b.Digest != digestOf("a") {
		t.Fatalf("status.build after redelivery = %+v", b)
	}
}

// ref parses "<namespace>/<name>" in a test table.
func ref(s string) v1.Ref {
	r, err := v1.ParseRef(s)
	if err != nil {
		panic(err)
	}
	return r
}

func TestSourceFromConfigMap(t *testing.T) {
	h := start(t)
	h.devices(1, "virtual")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "blink-src", Namespace: h.ns}, Data: map[string]string{"main.c": "int from_configmap;"}}
	if err := env.Client.Create(h.ctx, cm); err != nil {
		t.Fatal(err)
	}
	fromCM := func(key string) func(*v1.Application) {
		return func(a *v1.Application) {
			a.Spec.Source = v1.ApplicationSource{ConfigMap: &v1.ConfigMapSource{Name: "blink-src", Key: key, Language: v1.LanguageC}}
		}
	}
	h.app("blink", fromCM("main.c"))
	ref := h.waitBuild("blink", 1)
	d, err := events.DecodeAs[*events.BuildRequestedData](h.broker.of(events.BuildRequested, ref.Subject())[0], events.BuildRequested)
	if err != nil || d.Source.Code != "int from_configmap;" {
		t.Fatalf("build request %+v (%v), want the ConfigMap's code", d, err)
	}

	h.app("nokey", fromCM("other.c"))
	h.eventually("Built=False naming the missing key", func() bool {
		c := h.cond("nokey", v1.ConditionBuilt)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == v1.ReasonSourceNotFound && strings.Contains(c.Message, `no key "other.c"`)
	})
}
