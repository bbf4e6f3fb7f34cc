package operator_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/wasmbed/wasmbed/api/events"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/rollout"
	"github.com/wasmbed/wasmbed/operator"
)

// clock is the operator's clock in these tests: it moves only when a test says.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// startAt runs the operator with its clock at t.
func startAt(t *testing.T, at time.Time) (*harness, *clock) {
	c := &clock{t: at}
	return startWith(t, func(o *operator.Options) { o.Now = c.Now }), c
}

// pacedStarts returns the devices the operator asked dispatch to start, in the order of
// their first request; with retries, a device is listed once per attempt.
func (h *harness) pacedStarts(subject string) []string {
	var out []string
	for _, e := range h.broker.of(events.RolloutRequested, subject) {
		d, err := events.DecodeAs[*events.RolloutRequestedData](e)
		if err == nil && d.Paced {
			out = append(out, d.Devices...)
		}
	}
	return out
}

// pacedDevices is pacedStarts without repeats.
func (h *harness) pacedDevices(subject string) []string {
	var out []string
	for _, d := range h.pacedStarts(subject) {
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

func (h *harness) rolledOut(name string) *metav1.Condition {
	return h.cond(name, v1.ConditionRolledOut)
}

// TestPolicyWithInjectedClock: a rollout in a maintenance window, at a rate, with an
// approval gate, driven by the operator's clock alone.
func TestPolicyWithInjectedClock(t *testing.T) {
	monday := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	h, clk := startAt(t, monday)
	h.devices(4, "virtual")
	h.app("policy", func(a *v1.Application) {
		a.Spec.Rollout = v1.RolloutSpec{Strategy: v1.RolloutCanary,
			Steps:       []v1.CanaryStep{{Percent: 50}, {Percent: 100, RequireApproval: true}},
			Rate:        &v1.RolloutRate{DevicesPerMinute: 1},
			Maintenance: &v1.MaintenanceWindows{TimeZone: "Europe/Berlin", Windows: []v1.MaintenanceWindow{{Start: "22:00", Duration: metav1.Duration{Duration: 4 * time.Hour}}}},
		}
	})
	ref := h.waitBuild("policy", 1)
	dg := digestOf("b")
	h.buildAndValidate(ref, dg)

	// 10:00 UTC is 11:00 in Berlin: outside the window, the phase is Paused and says until when.
	h.eventually("outside the window", func() bool {
		c := h.rolledOut("policy")
		return c != nil && c.Reason == v1.ReasonOutsideMaintenanceWindow
	})
	a := h.get("policy")
	if a.Status.Phase != v1.ApplicationPaused || !strings.Contains(a.Status.Rollout.WaitingFor, "2026-12-07T22:00:00+01:00") ||
		a.Status.Rollout.NextActionAt == nil || len(h.pacedDevices(ref.Subject())) != 0 {
		t.Fatalf("outside the window: phase %s, rollout %+v, started %v", a.Status.Phase, a.Status.Rollout, h.pacedDevices(ref.Subject()))
	}

	// 21:00 UTC is 22:00 in Berlin: one device starts, the next a minute later.
	clk.Add(11 * time.Hour)
	h.eventually("the first device started", func() bool { return len(h.pacedDevices(ref.Subject())) == 1 })
	h.eventually("rate limited", func() bool {
		c := h.rolledOut("policy")
		return c != nil && c.Reason == v1.ReasonRateLimited && strings.Contains(h.get("policy").Status.Rollout.WaitingFor, "next device at 2026-12-07T21:01:00Z")
	})
	clk.Add(time.Minute)
	h.eventually("the second device started", func() bool { return len(h.pacedDevices(ref.Subject())) == 2 })
	for _, d := range h.pacedDevices(ref.Subject()) {
		h.report(ref, d, dg, "Running", "")
	}

	// Step 2 waits for approval, whatever the time.
	h.eventually("waiting for approval", func() bool {
		c := h.rolledOut("policy")
		return c != nil && c.Reason == v1.ReasonWaitingForApproval
	})
	clk.Add(time.Hour)
	time.Sleep(500 * time.Millisecond)
	if n := len(h.pacedDevices(ref.Subject())); n != 2 {
		t.Fatalf("%d devices started before the approval", n)
	}
	h.update("policy", func(a *v1.Application) {
		a.Annotations = map[string]string{rollout.ApproveAnnotation: "2"}
	})
	h.eventually("approval recorded and its annotation removed", func() bool {
		a := h.get("policy")
		_, still := a.Annotations[rollout.ApproveAnnotation]
		return a.Status.Rollout.ApprovedStep == 2 && !still
	})
	h.eventually("step 2's first device", func() bool { return len(h.pacedDevices(ref.Subject())) == 3 })
	clk.Add(time.Minute)
	h.eventually("step 2's second device", func() bool { return len(h.pacedDevices(ref.Subject())) == 4 })
	starts := h.pacedDevices(ref.Subject())
	for _, d := range starts[2:] {
		h.report(ref, d, dg, "Running", "")
	}
	h.waitTrue("policy", v1.ConditionReady)
	slices.Sort(starts)
	if strings.Join(starts, ",") != "dev-00,dev-01,dev-02,dev-03" {
		t.Errorf("started %v, want every device once", starts)
	}
}

// TestFailureTypesDriveRetriesAndAbort: the gateway's failure type reaches the Device,
// a start failure is retried, and a second one trips the abort criterion.
func TestFailureTypesDriveRetriesAndAbort(t *testing.T) {
	h, clk := startAt(t, time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC))
	h.devices(2, "virtual")
	h.app("retry", func(a *v1.Application) {
		a.Spec.Rollout = v1.RolloutSpec{
			Retries:       []v1.RetryPolicy{{FailureType: v1.FailureStart, Attempts: 1, Backoff: &metav1.Duration{Duration: time.Minute}}},
			AbortCriteria: []v1.AbortCriterion{{FailureType: v1.FailureStart, ThresholdPercent: 50, MinFinished: 2}},
		}
	})
	ref := h.waitBuild("retry", 1)
	dg := digestOf("c")
	h.buildAndValidate(ref, dg)
	h.eventually("both devices started", func() bool { return len(h.pacedStarts(ref.Subject())) == 2 })

	fail := func(device string) {
		h.deliver(events.DeploymentFailed, ref.Subject(), &events.DeploymentResultData{Application: ref, Device: device,
			Gateway: v1.Ref{Namespace: "wasmbed-system", Name: "gateway"}, Digest: dg, State: v1.AppFailed, Message: "setup: unreachable", Failure: v1.FailureStart})
	}
	fail("dev-00")
	var dev v1.Device
	if err := env.Client.Get(h.ctx, client.ObjectKey{Namespace: h.ns, Name: "dev-00"}, &dev); err != nil || dev.Status.Applications[0].Failure != v1.FailureStart {
		t.Fatalf("device status %+v (%v), want failure start recorded", dev.Status.Applications, err)
	}
	h.eventually("a retry planned", func() bool {
		ro := h.get("retry").Status.Rollout
		if ro == nil {
			return false
		}
		i := slices.IndexFunc(ro.Devices, func(d v1.RolloutDevice) bool { return d.Name == "dev-00" })
		return i >= 0 && ro.Devices[i].RetryAt != nil && ro.Devices[i].Failure == v1.FailureStart
	})
	clk.Add(time.Minute)
	h.eventually("dev-00 retried", func() bool { return len(h.pacedStarts(ref.Subject())) == 3 })
	h.report(ref, "dev-01", dg, "Running", "")
	time.Sleep(10 * time.Millisecond) // the retry's report is newer than the first failure's
	fail("dev-00")
	h.eventually("stopped by the criterion", func() bool {
		c := h.rolledOut("retry")
		return c != nil && c.Reason == v1.ReasonRolloutFailed && strings.Contains(c.Message, "abort criterion start: 1 of 2")
	})
	ro := h.get("retry").Status.Rollout
	if ro.Retries != 1 || ro.FailuresByType[v1.FailureStart] != 1 || ro.Failed != 1 {
		t.Errorf("rollout status %+v", ro)
	}
	// The operator's metrics count the retry and the stop (other tests of this process
	// add to them too).
	if n := metric(t, "wasmbed_rollout_policy_device_starts_total", "kind", "retry"); n < 1 {
		t.Errorf("retries counted: %v", n)
	}
	if n := metric(t, "wasmbed_rollout_policy_stops_total", "reason", v1.ReasonRolloutFailed); n < 1 {
		t.Errorf("stops counted: %v", n)
	}
}

// metric returns the value of a counter of the operator's metrics registry with one label.
func metric(t *testing.T, name, label, value string) float64 {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestPolicyThatCannotFinish: an endBy in the past, or windows that do not open before
// it, end the rollout with CannotFinish instead of waiting for ever.
func TestPolicyThatCannotFinish(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		spec v1.RolloutSpec
		msg  string
	}{
		{"endBy in the past", v1.RolloutSpec{Schedule: &v1.RolloutSchedule{EndBy: &metav1.Time{Time: now.Add(-time.Hour)}}},
			"passed before any device started"},
		{"window after endBy", v1.RolloutSpec{
			Schedule:    &v1.RolloutSchedule{EndBy: &metav1.Time{Time: now.Add(2 * time.Hour)}},
			Maintenance: &v1.MaintenanceWindows{Windows: []v1.MaintenanceWindow{{Start: "22:00", Duration: metav1.Duration{Duration: time.Hour}}}}},
			"no maintenance window opens before spec.rollout.schedule.endBy"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := startAt(t, now)
			h.devices(1, "virtual")
			name := fmt.Sprintf("never-%d", i)
			h.app(name, func(a *v1.Application) { a.Spec.Rollout = tc.spec })
			ref := h.waitBuild(name, 1)
			h.buildAndValidate(ref, digestOf("d"))
			h.eventually("CannotFinish", func() bool {
				c := h.rolledOut(name)
				return c != nil && c.Status == metav1.ConditionFalse && c.Reason == v1.ReasonCannotFinish && strings.Contains(c.Message, tc.msg)
			})
			if r := meta.FindStatusCondition(h.get(name).Status.Conditions, v1.ConditionReady); r.Reason != v1.ReasonCannotFinish || len(h.pacedStarts(ref.Subject())) != 0 {
				t.Errorf("Ready %s %s, started %v", r.Reason, r.Message, h.pacedStarts(ref.Subject()))
			}
		})
	}
}

// TestApprovalWithoutAGateIsRemoved: an approval for an Application whose steps wait
// for none is removed with a Warning, not kept for ever.
func TestApprovalWithoutAGateIsRemoved(t *testing.T) {
	h := start(t)
	h.devices(2, "virtual")
	h.app("nogate", func(a *v1.Application) {
		a.Spec.Rollout = v1.RolloutSpec{Strategy: v1.RolloutCanary, Steps: []v1.CanaryStep{{Percent: 50}, {Percent: 100}}}
	})
	ref := h.waitBuild("nogate", 1)
	h.buildAndValidate(ref, digestOf("e"))
	h.update("nogate", func(a *v1.Application) { a.Annotations = map[string]string{rollout.ApproveAnnotation: "2"} })
	h.eventually("the approval removed", func() bool {
		_, still := h.get("nogate").Annotations[rollout.ApproveAnnotation]
		return !still
	})
	var list corev1.EventList
	h.eventually("a Warning InvalidApproval", func() bool {
		_ = env.Client.List(h.ctx, &list, client.InNamespace(h.ns))
		return slices.ContainsFunc(list.Items, func(e corev1.Event) bool {
			return e.Reason == "InvalidApproval" && e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, "no step")
		})
	})
}
