package e2e_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/rollout"
)

// opClock is the operator's clock in the end-to-end platform: the real time plus an
// offset that only tests of rollout policies move, forward only.
type opClock struct{ offset atomic.Int64 }

func (c *opClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *opClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

var clk opClock

// label puts key=yes on the named Devices, so that a test's Application selects them,
// and takes it off when the test ends (tests run again with -count).
func label(t *testing.T, key string, names ...string) {
	t.Helper()
	set := func(n, value string) error {
		patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%s}}}`, key, value)
		dev := &v1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: n}}
		return client.IgnoreNotFound(c().Patch(context.Background(), dev, client.RawPatch(types.MergePatchType, []byte(patch))))
	}
	for _, n := range names {
		if err := set(n, `"yes"`); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := set(n, "null"); err != nil {
				t.Errorf("unlabel %s: %v", n, err)
			}
		})
	}
}

func sims(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("sim-%d", i))
	}
	return out
}

func selecting(key string) metav1.LabelSelector {
	return metav1.LabelSelector{MatchLabels: map[string]string{key: "yes"}}
}

func rolledOutReason(t *testing.T, name string) (string, string) {
	c := meta.FindStatusCondition(getApp(t, name).Status.Conditions, v1.ConditionRolledOut)
	if c == nil {
		return "", "no RolledOut condition"
	}
	return c.Reason, c.Message
}

// runningAt returns when each Device selected by key reported app Running with digest
// (the gateway's time of the report).
func runningAt(t *testing.T, key, app string, dg string) []time.Time {
	var list v1.DeviceList
	if err := c().List(context.Background(), &list, client.InNamespace("default"), client.MatchingLabels{key: "yes"}); err != nil {
		t.Fatal(err)
	}
	var out []time.Time
	for _, d := range list.Items {
		for _, a := range d.Status.Applications {
			if a.Name == app && string(a.Digest) == dg && a.State == v1.AppRunning && a.ReportedAt != nil {
				out = append(out, a.ReportedAt.Time)
			}
		}
	}
	return out
}

// TestRolloutRateWithTheRealClock starts 20 devices at 240 a minute: they start over
// about 5 s, one every 250 ms, and the rollout says it is rate limited meanwhile.
func TestRolloutRateWithTheRealClock(t *testing.T) {
	const key = "e2e-rate"
	label(t, key, sims(0, 20)...)
	app := cApp("rated", goodC, func(a *v1.Application) {
		a.Spec.Selector = selecting(key)
		a.Spec.Rollout = v1.RolloutSpec{Rate: &v1.RolloutRate{DevicesPerMinute: 240}}
	})
	if err := c().Create(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	sawLimit := false
	eventually(t, "Ready", 2*time.Minute, func() (bool, string) {
		if r, _ := rolledOutReason(t, "rated"); r == v1.ReasonRateLimited {
			sawLimit = sawLimit || strings.Contains(getApp(t, "rated").Status.Rollout.WaitingFor, "rate limit: 240 devices per minute")
		}
		return ready(t, "rated")
	})
	a := getApp(t, "rated")
	times := runningAt(t, key, "rated", a.Status.Build.Digest.String())
	if len(times) != 20 {
		t.Fatalf("%d devices run it, want 20", len(times))
	}
	first, last := slices.MinFunc(times, time.Time.Compare), slices.MaxFunc(times, time.Time.Compare)
	// 19 intervals of 250 ms: 4.75 s between the first start and the last.
	if spread := last.Sub(first); spread < 4*time.Second {
		t.Errorf("20 devices at 240/min reported Running within %s, want about 4.75 s", spread)
	}
	if !sawLimit || a.Status.Rollout.Rate == nil || a.Status.Rollout.Started != 20 {
		t.Errorf("saw the rate limit: %v; rollout %+v", sawLimit, a.Status.Rollout)
	}
	t.Logf("20 devices at 240/min: Running over %s", last.Sub(first).Round(time.Millisecond))
	remove(t, a)
}

// TestMaintenanceWindowWithAnInjectedClock: outside its window the rollout starts
// nothing and says when the window opens; once the operator's clock is in the window,
// it completes.
func TestMaintenanceWindowWithAnInjectedClock(t *testing.T) {
	const key = "e2e-window"
	label(t, key, sims(0, 10)...)
	opens := clk.Now().Add(2 * time.Hour).UTC()
	app := cApp("windowed", goodC, func(a *v1.Application) {
		a.Spec.Selector = selecting(key)
		a.Spec.Rollout = v1.RolloutSpec{Maintenance: &v1.MaintenanceWindows{TimeZone: "UTC", Windows: []v1.MaintenanceWindow{
			{Start: opens.Format("15:04"), Duration: metav1.Duration{Duration: time.Hour}}}}}
	})
	if err := c().Create(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	eventually(t, "outside the window", 2*time.Minute, func() (bool, string) {
		r, msg := rolledOutReason(t, "windowed")
		return r == v1.ReasonOutsideMaintenanceWindow && getApp(t, "windowed").Status.Phase == v1.ApplicationPaused, r + ": " + msg
	})
	a := getApp(t, "windowed")
	if !strings.Contains(a.Status.Rollout.WaitingFor, opens.Truncate(time.Minute).Format("2006-01-02T15:04")) {
		t.Errorf("waitingFor %q does not say when the window opens (%s)", a.Status.Rollout.WaitingFor, opens)
	}
	time.Sleep(2 * time.Second) // the operator looks again every second: still nothing starts
	if n := len(runningAt(t, key, "windowed", a.Status.Build.Digest.String())); n != 0 {
		t.Fatalf("%d devices started outside the window", n)
	}
	clk.Advance(2*time.Hour + time.Minute)
	eventually(t, "Ready inside the window", 2*time.Minute, func() (bool, string) { return ready(t, "windowed") })
	remove(t, a)
}

// TestApprovalGate: the second step waits for a user, who approves it as kubectl would
// (annotate); the operator records the approval and removes the annotation.
func TestApprovalGate(t *testing.T) {
	const key = "e2e-approval"
	label(t, key, sims(0, 10)...)
	app := cApp("approved", goodC, func(a *v1.Application) {
		a.Spec.Selector = selecting(key)
		a.Spec.Rollout = v1.RolloutSpec{Strategy: v1.RolloutCanary, Steps: []v1.CanaryStep{{Percent: 20}, {Percent: 100, RequireApproval: true}}}
	})
	if err := c().Create(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	eventually(t, "waiting for approval", 2*time.Minute, func() (bool, string) {
		r, msg := rolledOutReason(t, "approved")
		return r == v1.ReasonWaitingForApproval, r + ": " + msg
	})
	a := getApp(t, "approved")
	if n := len(runningAt(t, key, "approved", a.Status.Build.Digest.String())); n != 2 || a.Status.Phase != v1.ApplicationPaused ||
		!strings.Contains(a.Status.Rollout.WaitingFor, "wasmbed.dev/approve-step=2") {
		t.Fatalf("before the approval: %d devices run it, phase %s, waiting for %q", n, a.Status.Phase, a.Status.Rollout.WaitingFor)
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"2"}}}`, rollout.ApproveAnnotation)
	if err := c().Patch(context.Background(), a, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Ready after the approval", 2*time.Minute, func() (bool, string) { return ready(t, "approved") })
	a = getApp(t, "approved")
	if _, still := a.Annotations[rollout.ApproveAnnotation]; still || a.Status.Rollout.ApprovedStep != 2 {
		t.Errorf("annotations %v, approvedStep %d", a.Annotations, a.Status.Rollout.ApprovedStep)
	}
	remove(t, a)
}

// TestStartFailuresRetriedThenRolledBack: a new version whose setup traps fails to
// start on the canary's devices; each is retried once, then the abort criterion for
// start failures stops the rollout and the previous module comes back.
func TestStartFailuresRetriedThenRolledBack(t *testing.T) {
	const key = "e2e-retry"
	label(t, key, sims(0, 10)...)
	app := cApp("retried", goodC, func(a *v1.Application) {
		a.Spec.Selector = selecting(key)
		a.Spec.Rollout = v1.RolloutSpec{Strategy: v1.RolloutCanary, Steps: []v1.CanaryStep{{Percent: 30}, {Percent: 100}},
			Retries:       []v1.RetryPolicy{{FailureType: v1.FailureStart, Attempts: 1, Backoff: &metav1.Duration{Duration: time.Second}}},
			AbortCriteria: []v1.AbortCriterion{{FailureType: v1.FailureStart, ThresholdPercent: 50, MinFinished: 2}}}
	})
	if err := c().Create(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	eventually(t, "v1 Ready", 2*time.Minute, func() (bool, string) { return ready(t, "retried") })
	good := getApp(t, "retried").Status.Build.Digest
	update(t, "retried", func(a *v1.Application) {
		a.Spec.Source.Inline.Code = crashC
		a.Spec.Config = map[string]string{"crash": "yes"}
	})
	eventually(t, "rolled back", 2*time.Minute, func() (bool, string) {
		r, msg := rolledOutReason(t, "retried")
		return r == v1.ReasonRolledBack, r + ": " + msg
	})
	a := getApp(t, "retried")
	ro := a.Status.Rollout
	if ro.FailuresByType[v1.FailureStart] < 2 || ro.Retries < 2 || ro.Started != 3 || !strings.Contains(ro.FirstFailure, "start: unreachable") {
		t.Errorf("rollout %+v", ro)
	}
	eventually(t, "the old module on every device again", 2*time.Minute, func() (bool, string) {
		n := len(runningAt(t, key, "retried", good.String()))
		return n == 10, fmt.Sprintf("%d of 10 run %s", n, good)
	})
	// A device that joins after the rollback gets the good module, not the failed one.
	label(t, key, "sim-10")
	eventually(t, "the joiner runs the good module", time.Minute, func() (bool, string) {
		n := len(runningAt(t, key, "retried", good.String()))
		return n == 11, fmt.Sprintf("%d of 11 run %s", n, good)
	})
	remove(t, a)
}

// TestDeviceTimeoutWithAnInjectedClock: a Device that never connects does not report
// Running within deviceTimeout once the operator's clock passes it, and fails with the
// failure type timeout.
func TestDeviceTimeoutWithAnInjectedClock(t *testing.T) {
	const key = "e2e-timeout"
	ghost := &v1.Device{ObjectMeta: metav1.ObjectMeta{Name: "ghost", Namespace: "default", Labels: map[string]string{key: "yes"}},
		Spec: v1.DeviceSpec{Board: "virtual"}}
	if err := c().Create(context.Background(), ghost); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c().Delete(context.Background(), ghost) })
	app := cApp("timed", goodC, func(a *v1.Application) {
		a.Spec.Selector = selecting(key)
		a.Spec.Rollout = v1.RolloutSpec{DeviceTimeout: &metav1.Duration{Duration: 10 * time.Minute}}
	})
	if err := c().Create(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the ghost started", 2*time.Minute, func() (bool, string) {
		ro := getApp(t, "timed").Status.Rollout
		return ro != nil && ro.Started == 1, fmt.Sprintf("%+v", ro)
	})
	clk.Advance(11 * time.Minute)
	eventually(t, "the ghost timed out", 2*time.Minute, func() (bool, string) {
		r, msg := rolledOutReason(t, "timed")
		return r == v1.ReasonRolloutFailed && strings.Contains(msg, "ghost: timeout"), r + ": " + msg
	})
	if ro := getApp(t, "timed").Status.Rollout; ro.FailuresByType[v1.FailureTimeout] != 1 {
		t.Errorf("failures by type %v", ro.FailuresByType)
	}
	remove(t, getApp(t, "timed"))
}

// TestDeviceJoiningLaterGetsTheCurrentVersion: a Device that comes to match the selector
// after a rollout completed gets the module, with and without a rollout policy.
func TestDeviceJoiningLaterGetsTheCurrentVersion(t *testing.T) {
	cases := []struct {
		name    string
		rollout v1.RolloutSpec
		devices []string
		joiner  string
	}{
		{"all at once", v1.RolloutSpec{}, sims(20, 23), "sim-23"},
		{"with a rate", v1.RolloutSpec{Rate: &v1.RolloutRate{DevicesPerMinute: 600}}, sims(24, 27), "sim-27"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := fmt.Sprintf("e2e-join-%d", i)
			name := fmt.Sprintf("joined-%d", i)
			label(t, key, tc.devices...)
			app := cApp(name, goodC, func(a *v1.Application) {
				a.Spec.Selector = selecting(key)
				a.Spec.Rollout = tc.rollout
			})
			if err := c().Create(context.Background(), app); err != nil {
				t.Fatal(err)
			}
			eventually(t, "Ready", 2*time.Minute, func() (bool, string) { return ready(t, name) })
			dg := getApp(t, name).Status.Build.Digest.String()
			label(t, key, tc.joiner)
			eventually(t, "the joiner runs it", 2*time.Minute, func() (bool, string) {
				n := len(runningAt(t, key, name, dg))
				return n == len(tc.devices)+1, fmt.Sprintf("%d of %d run it", n, len(tc.devices)+1)
			})
			eventually(t, "Ready with the joiner", time.Minute, func() (bool, string) { return ready(t, name) })
			if a := getApp(t, name); a.Status.Rollout.Targeted != int32(len(tc.devices)+1) {
				t.Errorf("targeted %d", a.Status.Rollout.Targeted)
			}
			remove(t, getApp(t, name))
		})
	}
}

// TestScheduleWithAnInjectedClock: nothing starts before notBefore; at the operator's
// notBefore one device starts a minute; when endBy passes with Cancel, no more devices
// start and those that run keep the module.
func TestScheduleWithAnInjectedClock(t *testing.T) {
	const key = "e2e-schedule"
	label(t, key, sims(30, 34)...)
	start := clk.Now().Add(time.Hour)
	app := cApp("scheduled", goodC, func(a *v1.Application) {
		a.Spec.Selector = selecting(key)
		a.Spec.Rollout = v1.RolloutSpec{Rate: &v1.RolloutRate{DevicesPerMinute: 1},
			Schedule: &v1.RolloutSchedule{NotBefore: &metav1.Time{Time: start}, EndBy: &metav1.Time{Time: start.Add(90 * time.Second)}, EndBehavior: v1.EndCancel}}
	})
	if err := c().Create(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	eventually(t, "waiting for notBefore", 2*time.Minute, func() (bool, string) {
		r, msg := rolledOutReason(t, "scheduled")
		return r == v1.ReasonWaitingForSchedule, r + ": " + msg
	})
	dg := getApp(t, "scheduled").Status.Build.Digest.String()
	clk.Advance(time.Hour + time.Second)
	eventually(t, "the first device runs", time.Minute, func() (bool, string) {
		n := len(runningAt(t, key, "scheduled", dg))
		return n == 1, fmt.Sprintf("%d run it", n)
	})
	clk.Advance(time.Minute)
	eventually(t, "the second device runs", time.Minute, func() (bool, string) {
		n := len(runningAt(t, key, "scheduled", dg))
		return n == 2, fmt.Sprintf("%d run it", n)
	})
	clk.Advance(time.Minute) // past endBy
	eventually(t, "the schedule ended", time.Minute, func() (bool, string) {
		r, msg := rolledOutReason(t, "scheduled")
		return r == v1.ReasonScheduleEnded && strings.Contains(msg, "no more devices start"), r + ": " + msg
	})
	time.Sleep(2 * time.Second)
	if n := len(runningAt(t, key, "scheduled", dg)); n != 2 {
		t.Errorf("%d devices run it after the end, want the 2 started before", n)
	}
	remove(t, getApp(t, "scheduled"))
}

// TestScheduleEndRollsBack: with endBehavior Rollback, a rollout not done by endBy stops
// and the devices it reached get the previous good module back.
func TestScheduleEndRollsBack(t *testing.T) {
	const key = "e2e-endrollback"
	label(t, key, sims(35, 38)...)
	app := cApp("endrollback", goodC, func(a *v1.Application) { a.Spec.Selector = selecting(key) })
	if err := c().Create(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	eventually(t, "v1 Ready", 2*time.Minute, func() (bool, string) { return ready(t, "endrollback") })
	good := getApp(t, "endrollback").Status.Build.Digest.String()
	end := clk.Now().Add(90 * time.Second)
	update(t, "endrollback", func(a *v1.Application) {
		a.Spec.Source.Inline.Code = greeterC
		a.Spec.Rollout = v1.RolloutSpec{Rate: &v1.RolloutRate{DevicesPerMinute: 1},
			Schedule: &v1.RolloutSchedule{EndBy: &metav1.Time{Time: end}, EndBehavior: v1.EndRollback}}
	})
	eventually(t, "the first device runs v2", 2*time.Minute, func() (bool, string) {
		a := getApp(t, "endrollback")
		if a.Status.Build == nil || a.Status.Build.Digest.String() == good {
			return false, "v2 not built yet"
		}
		n := len(runningAt(t, key, "endrollback", a.Status.Build.Digest.String()))
		return n == 1, fmt.Sprintf("%d run v2", n)
	})
	clk.Advance(2 * time.Minute)
	eventually(t, "the schedule ended with a rollback", time.Minute, func() (bool, string) {
		r, msg := rolledOutReason(t, "endrollback")
		return r == v1.ReasonScheduleEnded && strings.Contains(msg, "rolled 3 devices back"), r + ": " + msg
	})
	eventually(t, "v1 everywhere again", time.Minute, func() (bool, string) {
		n := len(runningAt(t, key, "endrollback", good))
		return n == 3, fmt.Sprintf("%d of 3 run v1", n)
	})
	remove(t, getApp(t, "endrollback"))
}
