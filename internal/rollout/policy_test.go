package rollout_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/wasmbed/wasmbed/api/digest"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/rollout"
)

// t0 is a Monday, 10:00 UTC.
var t0 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

func names(n int) []rollout.DeviceView {
	out := make([]rollout.DeviceView, n)
	for i := range out {
		out[i].Name = fmt.Sprintf("d%02d", i)
	}
	return out
}

func dur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }
func ptr[T any](v T) *T                    { return &v }
func at(t time.Time) *metav1.Time          { m := metav1.NewTime(t); return &m }

// fleet runs the policy against a simulated fleet on a simulated clock: devices the
// policy starts report what outcome says after react.
type fleet struct {
	t       *testing.T
	spec    v1.RolloutSpec
	status  v1.RolloutStatus
	devs    []rollout.DeviceView
	now     time.Time
	started map[string][]time.Time // start times per device
	// outcome says what a device reports for its attempt (1-based); nil: Succeeded.
	outcome func(name string, attempt int) (rollout.Outcome, v1.FailureType)
	react   time.Duration // how long after a start the device reports
	plans   []rollout.Plan
}

func newFleet(t *testing.T, spec v1.RolloutSpec, n int) *fleet {
	return &fleet{t: t, spec: spec, devs: names(n), now: t0, started: map[string][]time.Time{}, react: time.Second,
		status: v1.RolloutStatus{Digest: digest.Digest("sha256:" + strings.Repeat("a", 64)), Steps: int32(rollout.Steps(spec))}}
}

// step decides once at the fleet's clock and applies the plan.
func (f *fleet) step() rollout.Plan {
	// Devices report what they were started for once react passed.
	for i := range f.devs {
		d := &f.devs[i]
		starts := f.started[d.Name]
		if len(starts) == 0 || f.now.Before(starts[len(starts)-1].Add(f.react)) {
			continue
		}
		o, typ := rollout.Succeeded, v1.FailureType("")
		if f.outcome != nil {
			o, typ = f.outcome(d.Name, len(starts))
		}
		if o == rollout.Pending {
			continue
		}
		d.Outcome, d.Failure, d.ReportedAt, d.Message = o, typ, starts[len(starts)-1].Add(f.react), string(typ)
	}
	p := rollout.Decide(rollout.Input{Now: f.now, Spec: f.spec, Status: f.status, Devices: slices.Clone(f.devs)})
	for _, n := range append(slices.Clone(p.Start), p.Retry...) {
		f.started[n] = append(f.started[n], f.now)
	}
	// The status goes through JSON, as it does through the apiserver: times keep only
	// what their encoding keeps.
	raw, err := json.Marshal(p.Status)
	if err != nil {
		f.t.Fatal(err)
	}
	f.status = v1.RolloutStatus{}
	if err := json.Unmarshal(raw, &f.status); err != nil {
		f.t.Fatal(err)
	}
	f.plans = append(f.plans, p)
	return p
}

// run steps until the rollout is done or stopped, advancing the clock by RequeueAfter
// (or a second), for at most limit of simulated time.
func (f *fleet) run(limit time.Duration) rollout.Plan {
	end := f.now.Add(limit)
	for {
		p := f.step()
		if p.Done || p.Stop != nil || f.now.After(end) {
			return p
		}
		adv := time.Second
		if p.RequeueAfter > 0 && p.RequeueAfter < adv {
			adv = p.RequeueAfter
		}
		f.now = f.now.Add(adv)
	}
}

func TestPaced(t *testing.T) {
	cases := []struct {
		spec v1.RolloutSpec
		want bool
	}{
		{v1.RolloutSpec{}, false},
		{v1.RolloutSpec{Strategy: v1.RolloutCanary, Steps: []v1.CanaryStep{{Percent: 10, Pause: dur(time.Minute)}, {Percent: 100}}}, false},
		{v1.RolloutSpec{Rate: &v1.RolloutRate{DevicesPerMinute: 1}}, true},
		{v1.RolloutSpec{DeviceTimeout: dur(time.Minute)}, true},
		{v1.RolloutSpec{Retries: []v1.RetryPolicy{{FailureType: v1.FailureAny, Attempts: 1}}}, true},
		{v1.RolloutSpec{AbortCriteria: []v1.AbortCriterion{{FailureType: v1.FailureTrap, ThresholdPercent: 10}}}, true},
		{v1.RolloutSpec{Schedule: &v1.RolloutSchedule{NotBefore: at(t0)}}, true},
		{v1.RolloutSpec{Strategy: v1.RolloutCanary, Steps: []v1.CanaryStep{{Percent: 10, RequireApproval: true}}}, true},
	}
	for i, tc := range cases {
		if got := rollout.Paced(tc.spec); got != tc.want {
			t.Errorf("case %d: Paced = %v, want %v", i, got, tc.want)
		}
	}
}

func TestRate(t *testing.T) {
	cases := []struct {
		name string
		rate v1.RolloutRate
		n    int
		// wantDone is when the last device starts, within a second.
		wantLastStart time.Duration
		wantRate      int32
	}{
		// 60 per minute: one a second; the first starts at once, the 30th after 29 s.
		{"constant", v1.RolloutRate{DevicesPerMinute: 60}, 30, 29 * time.Second, 60},
		// 6 per minute: 10 s apart.
		{"slow", v1.RolloutRate{DevicesPerMinute: 6}, 4, 30 * time.Second, 6},
		// Doubling after every 2 successes (devices report 1 s after they start): starts
		// at 0, 10 (6/min), 20, 25 (12/min), 30, 32.5 (24/min), 35, 36.25 (48/min), 37.5,
		// 38.125 s (96/min).
		{"exponential after succeeded", v1.RolloutRate{DevicesPerMinute: 6, Growth: &v1.RateGrowth{Factor: "2", AfterSucceeded: ptr(int32(2))}}, 10, 38 * time.Second, 96},
		// Growth by 1.5 after 3 started, capped at 10: starts at 0, 10, 20 (6/min), 30,
		// 36.7, 43.3 (9/min), then every 6 s from 50 to 80 s (10/min, the cap).
		{"exponential after started, capped", v1.RolloutRate{DevicesPerMinute: 6, Growth: &v1.RateGrowth{Factor: "1.5", AfterStarted: ptr(int32(3)), MaxDevicesPerMinute: ptr(int32(10))}}, 12, 80 * time.Second, 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFleet(t, v1.RolloutSpec{Rate: &tc.rate}, tc.n)
			p := f.run(time.Hour)
			if !p.Done {
				t.Fatalf("not done: %s %s", p.Reason, p.Message)
			}
			var last time.Time
			for _, s := range f.started {
				if len(s) != 1 {
					t.Fatalf("a device started %d times", len(s))
				}
				if s[0].After(last) {
					last = s[0]
				}
			}
			if got := last.Sub(t0); got < tc.wantLastStart-time.Second || got > tc.wantLastStart+time.Second {
				t.Errorf("last device started after %s, want %s", got, tc.wantLastStart)
			}
			if p.Status.Rate == nil || p.Status.Rate.DevicesPerMinute != tc.wantRate {
				t.Errorf("rate status %+v, want %d per minute", p.Status.Rate, tc.wantRate)
			}
		})
	}
}

func TestRateLimitedSaysWhenTheNextDeviceStarts(t *testing.T) {
	f := newFleet(t, v1.RolloutSpec{Rate: &v1.RolloutRate{DevicesPerMinute: 2}}, 3)
	p := f.step()
	if len(p.Start) != 1 || p.Reason != v1.ReasonRateLimited || p.RequeueAfter != 30*time.Second ||
		!strings.Contains(p.Status.WaitingFor, "next device at 2026-12-07T10:00:30Z") || p.Status.NextActionAt == nil {
		t.Fatalf("plan = start %v, %s, %q, requeue %s", p.Start, p.Reason, p.Status.WaitingFor, p.RequeueAfter)
	}
	f.now = f.now.Add(10 * time.Second)
	if p := f.step(); len(p.Start) != 0 || p.RequeueAfter != 20*time.Second {
		t.Fatalf("10 s later: start %v, requeue %s", p.Start, p.RequeueAfter)
	}
}

func TestAbortCriteriaAndRetries(t *testing.T) {
	trapOn := func(bad ...string) func(string, int) (rollout.Outcome, v1.FailureType) {
		return func(name string, _ int) (rollout.Outcome, v1.FailureType) {
			if slices.Contains(bad, name) {
				return rollout.Failed, v1.FailureTrap
			}
			return rollout.Succeeded, ""
		}
	}
	cases := []struct {
		name    string
		spec    v1.RolloutSpec
		n       int
		outcome func(string, int) (rollout.Outcome, v1.FailureType)
		// wantStop is the stop reason, "" for a rollout that completes.
		wantStop    string
		wantMsg     string
		wantStarts  map[string]int // attempts of some devices
		wantFailed  int32
		wantRetries int32
	}{
		{name: "trap under threshold completes",
			spec: v1.RolloutSpec{AbortCriteria: []v1.AbortCriterion{{FailureType: v1.FailureTrap, ThresholdPercent: 20, MinFinished: 5}}},
			n:    10, outcome: trapOn("d03"), wantFailed: 1},
		{name: "trap over threshold stops",
			spec: v1.RolloutSpec{AbortCriteria: []v1.AbortCriterion{{FailureType: v1.FailureTrap, ThresholdPercent: 20, MinFinished: 5}}},
			n:    10, outcome: trapOn("d01", "d02", "d03"), wantStop: v1.ReasonRolloutFailed, wantMsg: "abort criterion trap"},
		{name: "criterion of another type does not stop",
			spec: v1.RolloutSpec{AbortCriteria: []v1.AbortCriterion{{FailureType: v1.FailureTransfer, ThresholdPercent: 1}}},
			n:    4, outcome: trapOn("d01", "d02"), wantFailed: 2},
		{name: "without criteria maxFailures 0 stops at the first failure",
			spec: v1.RolloutSpec{DeviceTimeout: dur(time.Minute)},
			n:    4, outcome: trapOn("d02"), wantStop: v1.ReasonRolloutFailed, wantMsg: "maxFailures 0"},
		{name: "maxFailures above 0 still caps with criteria",
			spec: v1.RolloutSpec{MaxFailures: ptr(intstr.FromInt32(1)), AbortCriteria: []v1.AbortCriterion{{FailureType: v1.FailureAny, ThresholdPercent: 100}}},
			n:    4, outcome: trapOn("d00", "d02"), wantStop: v1.ReasonRolloutFailed, wantMsg: "maxFailures 1"},
		{name: "start failures retried then succeed",
			spec: v1.RolloutSpec{Retries: []v1.RetryPolicy{{FailureType: v1.FailureStart, Attempts: 2, Backoff: dur(10 * time.Second)}}},
			n:    3,
			outcome: func(name string, attempt int) (rollout.Outcome, v1.FailureType) {
				if name == "d01" && attempt < 3 {
					return rollout.Failed, v1.FailureStart
				}
				return rollout.Succeeded, ""
			},
			wantStarts: map[string]int{"d01": 3, "d00": 1}, wantRetries: 2},
		{name: "retries spent: failed for good",
			spec: v1.RolloutSpec{Retries: []v1.RetryPolicy{{FailureType: v1.FailureAny, Attempts: 1}},
				AbortCriteria: []v1.AbortCriterion{{FailureType: v1.FailureAny, ThresholdPercent: 50}}},
			n: 4, outcome: trapOn("d01"), wantStarts: map[string]int{"d01": 2}, wantFailed: 1, wantRetries: 1},
		{name: "specific retry policy wins over any",
			spec: v1.RolloutSpec{Retries: []v1.RetryPolicy{{FailureType: v1.FailureAny, Attempts: 3}, {FailureType: v1.FailureTrap, Attempts: 1}},
				AbortCriteria: []v1.AbortCriterion{{FailureType: v1.FailureAny, ThresholdPercent: 50}}},
			n: 4, outcome: trapOn("d01"), wantStarts: map[string]int{"d01": 2}, wantFailed: 1, wantRetries: 1},
		{name: "timeout is a failure type with its own retries",
			spec: v1.RolloutSpec{DeviceTimeout: dur(time.Minute), Retries: []v1.RetryPolicy{{FailureType: v1.FailureTimeout, Attempts: 1, Backoff: dur(time.Second)}},
				AbortCriteria: []v1.AbortCriterion{{FailureType: v1.FailureTimeout, ThresholdPercent: 30}}},
			n: 4,
			outcome: func(name string, _ int) (rollout.Outcome, v1.FailureType) {
				if name == "d02" {
					return rollout.Pending, "" // never answers
				}
				return rollout.Succeeded, ""
			},
			wantStarts: map[string]int{"d02": 2}, wantFailed: 1, wantRetries: 1},
		{name: "timeouts over threshold stop",
			spec: v1.RolloutSpec{DeviceTimeout: dur(time.Minute), AbortCriteria: []v1.AbortCriterion{{FailureType: v1.FailureTimeout, ThresholdPercent: 20}}},
			n:    4,
			outcome: func(name string, _ int) (rollout.Outcome, v1.FailureType) {
				if name == "d02" {
					return rollout.Pending, ""
				}
				return rollout.Succeeded, ""
			},
			wantStop: v1.ReasonRolloutFailed, wantMsg: "abort criterion timeout: 1 of 4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFleet(t, tc.spec, tc.n)
			f.outcome = tc.outcome
			p := f.run(time.Hour)
			switch {
			case tc.wantStop == "" && !p.Done:
				t.Fatalf("not done: stop %+v, %s %s", p.Stop, p.Reason, p.Message)
			case tc.wantStop != "" && (p.Stop == nil || p.Stop.Reason != tc.wantStop || !strings.Contains(p.Stop.Message, tc.wantMsg)):
				t.Fatalf("stop = %+v, want %s containing %q", p.Stop, tc.wantStop, tc.wantMsg)
			}
			if tc.wantStop != "" {
				return
			}
			for name, n := range tc.wantStarts {
				if got := len(f.started[name]); got != n {
					t.Errorf("%s started %d times, want %d", name, got, n)
				}
			}
			if p.Status.Failed != tc.wantFailed || p.Status.Retries != tc.wantRetries {
				t.Errorf("failed %d retries %d, want %d and %d (%+v)", p.Status.Failed, p.Status.Retries, tc.wantFailed, tc.wantRetries, p.Status.FailuresByType)
			}
		})
	}
}

func TestRetryBackoffDoubles(t *testing.T) {
	f := newFleet(t, v1.RolloutSpec{Retries: []v1.RetryPolicy{{FailureType: v1.FailureTransfer, Attempts: 3, Backoff: dur(10 * time.Second)}},
		AbortCriteria: []v1.AbortCriterion{{FailureType: v1.FailureAny, ThresholdPercent: 100}}}, 1)
	f.react = 0
	f.outcome = func(string, int) (rollout.Outcome, v1.FailureType) { return rollout.Failed, v1.FailureTransfer }
	p := f.run(time.Hour)
	if p.Stop == nil || p.Stop.Reason != v1.ReasonRolloutFailed {
		t.Fatalf("stop = %+v", p.Stop)
	}
	s := f.started["d00"]
	var gaps []time.Duration
	for i := 1; i < len(s); i++ {
		gaps = append(gaps, s[i].Sub(s[i-1]))
	}
	// The simulation sees each failure a second after it (its step), then waits the backoff.
	if want := []time.Duration{11 * time.Second, 21 * time.Second, 41 * time.Second}; !slices.Equal(gaps, want) {
		t.Errorf("retry gaps %v, want %v", gaps, want)
	}
}

func TestScheduleAndWindows(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	nightly := &v1.MaintenanceWindows{TimeZone: "Europe/Berlin", Windows: []v1.MaintenanceWindow{{Start: "22:00", Duration: metav1.Duration{Duration: 2 * time.Hour}}}}
	weekend := &v1.MaintenanceWindows{Windows: []v1.MaintenanceWindow{{Days: []v1.Weekday{"Sat", "Sun"}, Start: "00:00", Duration: metav1.Duration{Duration: 24 * time.Hour}}}}
	cases := []struct {
		name       string
		spec       v1.RolloutSpec
		now        time.Time
		status     v1.RolloutStatus
		wantReason string
		wantMsg    string
		wantStart  int
		wantAfter  time.Duration
	}{
		{name: "not before", spec: v1.RolloutSpec{Schedule: &v1.RolloutSchedule{NotBefore: at(t0.Add(4 * time.Hour))}},
			now: t0, wantReason: v1.ReasonWaitingForSchedule, wantMsg: "first device starts at 2026-12-07T14:00:00Z", wantAfter: 4 * time.Hour},
		{name: "not before passed", spec: v1.RolloutSpec{Schedule: &v1.RolloutSchedule{NotBefore: at(t0.Add(-time.Hour))}},
			now: t0, wantReason: v1.ReasonRollingOut, wantStart: 3},
		{name: "outside the nightly window", spec: v1.RolloutSpec{Maintenance: nightly},
			now: t0, wantReason: v1.ReasonOutsideMaintenanceWindow, wantMsg: "next opens at 2026-12-07T22:00:00+01:00", wantAfter: 11 * time.Hour},
		{name: "inside the nightly window", spec: v1.RolloutSpec{Maintenance: nightly},
			now: time.Date(2026, 12, 7, 23, 30, 0, 0, berlin), wantReason: v1.ReasonRollingOut, wantStart: 3, wantAfter: 30 * time.Minute},
		{name: "nightly window open past midnight", spec: v1.RolloutSpec{Maintenance: nightly},
			now: time.Date(2026, 12, 8, 0, 30, 0, 0, berlin), wantReason: v1.ReasonOutsideMaintenanceWindow, wantAfter: 21*time.Hour + 30*time.Minute},
		{name: "weekend window on a Monday", spec: v1.RolloutSpec{Maintenance: weekend},
			now: t0, wantReason: v1.ReasonOutsideMaintenanceWindow, wantMsg: "2026-12-12T00:00:00Z", wantAfter: 4*24*time.Hour + 14*time.Hour},
		{name: "no window before endBy can never finish",
			spec: v1.RolloutSpec{Maintenance: weekend, Schedule: &v1.RolloutSchedule{EndBy: at(t0.Add(24 * time.Hour)), EndBehavior: v1.EndCancel}},
			now:  t0, wantReason: v1.ReasonCannotFinish, wantMsg: "no maintenance window opens before spec.rollout.schedule.endBy"},
		{name: "endBy in the past before anything started",
			spec: v1.RolloutSpec{Schedule: &v1.RolloutSchedule{EndBy: at(t0.Add(-time.Minute)), EndBehavior: v1.EndCancel}},
			now:  t0, wantReason: v1.ReasonCannotFinish, wantMsg: "passed before any device started"},
		{name: "endBy passed: cancel keeps what runs",
			spec:   v1.RolloutSpec{Schedule: &v1.RolloutSchedule{EndBy: at(t0.Add(-time.Minute)), EndBehavior: v1.EndCancel}},
			status: v1.RolloutStatus{Started: 1, Devices: []v1.RolloutDevice{{Name: "d00", StartedAt: metav1.NewMicroTime(t0), Attempts: 1}}},
			now:    t0, wantReason: v1.ReasonScheduleEnded, wantMsg: "no more devices start"},
		{name: "endBy passed: continue is overdue",
			spec:   v1.RolloutSpec{Schedule: &v1.RolloutSchedule{EndBy: at(t0.Add(-time.Minute)), EndBehavior: v1.EndContinue}},
			status: v1.RolloutStatus{Started: 1, Devices: []v1.RolloutDevice{{Name: "d00", StartedAt: metav1.NewMicroTime(t0), Attempts: 1}}},
			now:    t0, wantReason: v1.ReasonRollingOut, wantMsg: "overdue", wantStart: 2},
		{name: "approval before the first step",
			spec: v1.RolloutSpec{Strategy: v1.RolloutCanary, Steps: []v1.CanaryStep{{Percent: 50, RequireApproval: true}, {Percent: 100}}},
			now:  t0, wantReason: v1.ReasonWaitingForApproval, wantMsg: "approval of step 1 of 2: annotate the Application wasmbed.dev/approve-step=1"},
		{name: "approved",
			spec:   v1.RolloutSpec{Strategy: v1.RolloutCanary, Steps: []v1.CanaryStep{{Percent: 50, RequireApproval: true}, {Percent: 100}}},
			status: v1.RolloutStatus{ApprovedStep: 1},
			now:    t0, wantReason: v1.ReasonRollingOut, wantStart: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.status.Digest = digest.Digest("sha256:" + strings.Repeat("b", 64))
			p := rollout.Decide(rollout.Input{Now: tc.now, Spec: tc.spec, Status: tc.status, Devices: names(3)})
			reason := p.Reason
			if p.Stop != nil {
				reason = p.Stop.Reason
			}
			msg := p.Message
			if p.Stop != nil {
				msg = p.Stop.Message
			}
			if reason != tc.wantReason || !strings.Contains(msg, tc.wantMsg) || len(p.Start) != tc.wantStart {
				t.Fatalf("plan = %s %q, started %v; want %s %q and %d started", reason, msg, p.Start, tc.wantReason, tc.wantMsg, tc.wantStart)
			}
			if tc.wantAfter != 0 && p.RequeueAfter != tc.wantAfter {
				t.Errorf("requeue after %s, want %s", p.RequeueAfter, tc.wantAfter)
			}
			if p.Stop != nil && p.RequeueAfter != 0 {
				t.Errorf("a stopped rollout requeues after %s", p.RequeueAfter)
			}
			if tc.wantReason != v1.ReasonRollingOut && p.Stop == nil && p.Status.WaitingFor != msg {
				t.Errorf("waitingFor %q, want the message", p.Status.WaitingFor)
			}
		})
	}
}

func TestCanaryStepsWithPauseAndApproval(t *testing.T) {
	spec := v1.RolloutSpec{Strategy: v1.RolloutCanary, Steps: []v1.CanaryStep{
		{Percent: 25, Pause: dur(time.Minute)}, {Percent: 50, RequireApproval: true}, {Percent: 100}}}
	f := newFleet(t, spec, 8)
	p := f.run(10 * time.Minute)
	if p.Reason != v1.ReasonWaitingForApproval || p.Status.Step != 1 || len(f.started) != 2 {
		t.Fatalf("before approval: %s step %d, %d started: %s", p.Reason, p.Status.Step, len(f.started), p.Message)
	}
	// The pause ran between steps 1 and 2: the second step waited a minute.
	f.status.ApprovedStep = 2
	p = f.run(10 * time.Minute)
	if !p.Done || len(f.started) != 8 || p.Status.Succeeded != 8 {
		t.Fatalf("after approval: done %v, %d started, %+v", p.Done, len(f.started), p.Status)
	}
}

func TestDeviceJoiningLaterIsStarted(t *testing.T) {
	f := newFleet(t, v1.RolloutSpec{Rate: &v1.RolloutRate{DevicesPerMinute: 600}}, 3)
	if p := f.run(time.Minute); !p.Done {
		t.Fatalf("not done: %s", p.Message)
	}
	f.devs = append(f.devs, rollout.DeviceView{Name: "late"})
	f.now = f.now.Add(time.Hour)
	p := f.step()
	if !slices.Equal(p.Start, []string{"late"}) || p.Done {
		t.Fatalf("a device joining later: start %v, done %v", p.Start, p.Done)
	}
	f.now = f.now.Add(2 * time.Second)
	if p := f.step(); !p.Done || p.Status.Succeeded != 4 {
		t.Fatalf("after it reports: done %v %+v", p.Done, p.Status)
	}
}

func TestParseWindowsRefusesBadInput(t *testing.T) {
	cases := []v1.MaintenanceWindows{
		{TimeZone: "Mars/Olympus", Windows: []v1.MaintenanceWindow{{Start: "10:00", Duration: metav1.Duration{Duration: time.Hour}}}},
		{TimeZone: "Local", Windows: []v1.MaintenanceWindow{{Start: "10:00", Duration: metav1.Duration{Duration: time.Hour}}}},
		{Windows: []v1.MaintenanceWindow{{Start: "25:00", Duration: metav1.Duration{Duration: time.Hour}}}},
		{Windows: []v1.MaintenanceWindow{{Start: "10:00", Duration: metav1.Duration{Duration: time.Second}}}},
		{Windows: []v1.MaintenanceWindow{{Days: []v1.Weekday{"Funday"}, Start: "10:00", Duration: metav1.Duration{Duration: time.Hour}}}},
		{},
	}
	for i, m := range cases {
		if _, err := rollout.ParseWindows(&m); err == nil || !strings.Contains(err.Error(), "spec.rollout.maintenance") {
			t.Errorf("case %d: err = %v, want one naming spec.rollout.maintenance", i, err)
		}
	}
	// A bad time zone that slipped past validation ends the rollout instead of hanging.
	p := rollout.Decide(rollout.Input{Now: t0, Spec: v1.RolloutSpec{Maintenance: &cases[0]}, Devices: names(1)})
	if p.Stop == nil || p.Stop.Reason != v1.ReasonCannotFinish {
		t.Errorf("bad time zone: %+v", p.Stop)
	}
}

func TestClassifyFailure(t *testing.T) {
	cases := []struct {
		a    v1.DeviceApplication
		want v1.FailureType
	}{
		{v1.DeviceApplication{State: v1.AppFailed, Failure: v1.FailureStart}, v1.FailureStart},
		{v1.DeviceApplication{State: v1.AppTransferring, Message: "too_large"}, v1.FailureTransfer},
		{v1.DeviceApplication{State: v1.AppFailed, Message: "unreachable"}, v1.FailureTrap},
	}
	for _, tc := range cases {
		if got := rollout.ClassifyFailure(tc.a); got != tc.want {
			t.Errorf("ClassifyFailure(%+v) = %s, want %s", tc.a, got, tc.want)
		}
	}
}

// FuzzDecide feeds the policy any spec and status (status can be written by anyone
// allowed to) and any device reports: it must not panic, start only target devices that
// have not succeeded, and never start and stop at once.
func FuzzDecide(f *testing.F) {
	f.Add([]byte(`{"strategy":"Canary","steps":[{"percent":50,"requireApproval":true},{"percent":100}],"rate":{"devicesPerMinute":6,"growth":{"factor":"2","afterStarted":1}}}`),
		[]byte(`{"digest":"sha256:00","step":1,"steps":2,"approvedStep":2,"devices":[{"name":"d00","startedAt":"2026-12-07T10:00:00Z","attempts":1}]}`), uint8(5), uint16(3))
	f.Add([]byte(`{"retries":[{"failureType":"any","attempts":3}],"deviceTimeout":"1m","maintenance":{"timeZone":"Europe/Berlin","windows":[{"start":"22:00","duration":"4h"}]}}`),
		[]byte(`{"step":-7,"rate":{"devicesPerMinute":0},"devices":[{"name":"x","attempts":-3,"failure":"start","retryAt":"2026-12-07T09:00:00Z"}]}`), uint8(9), uint16(0xffff))
	f.Fuzz(func(t *testing.T, specJSON, statusJSON []byte, n uint8, reports uint16) {
		var spec v1.RolloutSpec
		var status v1.RolloutStatus
		if json.Unmarshal(specJSON, &spec) != nil || json.Unmarshal(statusJSON, &status) != nil {
			return
		}
		if spec.Strategy == v1.RolloutCanary && len(spec.Steps) == 0 {
			return // the CRD refuses it
		}
		for _, s := range spec.Steps {
			if s.Percent < 1 || s.Percent > 100 {
				return // the CRD refuses it
			}
		}
		devs := names(int(n % 40))
		for i := range devs {
			switch (reports >> (i % 16)) & 3 {
			case 1:
				devs[i].Outcome = rollout.Succeeded
			case 2:
				devs[i].Outcome, devs[i].Failure, devs[i].ReportedAt = rollout.Failed, v1.FailureTrap, t0
			}
		}
		p := rollout.Decide(rollout.Input{Now: t0, Spec: spec, Status: status, Devices: devs})
		if p.Stop != nil && (len(p.Start) > 0 || len(p.Retry) > 0) {
			t.Fatalf("stops and starts devices at once: %+v", p)
		}
		if p.RequeueAfter < 0 {
			t.Fatalf("requeue after %s", p.RequeueAfter)
		}
		for _, name := range p.Start {
			i := slices.IndexFunc(devs, func(d rollout.DeviceView) bool { return d.Name == name })
			if i < 0 || devs[i].Outcome == rollout.Succeeded {
				t.Fatalf("started %s, which is not a target or succeeded", name)
			}
		}
	})
}
