package rollout

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
)

// The rollout policy: which devices may start now, what a rollout waits for and when
// to look again. It is a pure function of the time, the spec, the rollout status and
// what the target devices report, so the operator and the tests feed it any clock.

// MaxTracked bounds status.rollout.devices: no device starts while that many started
// devices have not succeeded.
const MaxTracked = 1000

// ApproveAnnotation approves a step of the current rollout: its value is the step's
// number (1-based). The operator records it in status.rollout.approvedStep and removes it.
const ApproveAnnotation = "wasmbed.dev/approve-step"

// maxBackoff caps the doubling retry backoff.
const maxBackoff = time.Hour

// defaultBackoff is the first retry's wait when the policy names none.
const defaultBackoff = 30 * time.Second

// defaultMaxRate caps a growing rate when the spec names no maximum.
const defaultMaxRate = 1000

// burstWindow is how much of the rate may start at once after the rollout waited (the
// operator looks at a rollout about once a second, not once per device).
const burstWindow = 5 * time.Second

// Paced reports whether spec uses the rollout policy (rate, abort criteria, retries,
// device timeout, schedule, maintenance windows or approvals). Then the operator starts
// every device itself, by name, and dispatch does not start step 0 on module.validated.
func Paced(spec v1.RolloutSpec) bool {
	if spec.Rate != nil || len(spec.AbortCriteria) > 0 || len(spec.Retries) > 0 || spec.DeviceTimeout != nil ||
		spec.Schedule != nil || spec.Maintenance != nil {
		return true
	}
	return spec.Strategy == v1.RolloutCanary && slices.ContainsFunc(spec.Steps, func(s v1.CanaryStep) bool { return s.RequireApproval })
}

// Outcome is what a device reported of one rollout.
type Outcome int

// Outcomes.
const (
	// Pending: nothing final reported for this rollout yet.
	Pending Outcome = iota
	// Succeeded: the device runs (or ran to its end) this rollout's module and configuration.
	Succeeded
	// Failed: the device reported this rollout's module failed.
	Failed
)

// DeviceView is one target device as the policy sees it.
type DeviceView struct {
	Name    string
	Outcome Outcome
	// Failure, Message and ReportedAt describe a Failed outcome.
	Failure    v1.FailureType
	Message    string
	ReportedAt time.Time
}

// ClassifyFailure returns the failure type of a failed device report: the gateway's
// when it said, transfer for a delivery that never completed, trap otherwise (a Hello
// listing an app Failed after a reset).
func ClassifyFailure(a v1.DeviceApplication) v1.FailureType {
	switch {
	case a.Failure != "":
		return a.Failure
	case a.State == v1.AppTransferring:
		return v1.FailureTransfer
	}
	return v1.FailureTrap
}

// Input is what the policy decides from.
type Input struct {
	Now     time.Time
	Spec    v1.RolloutSpec
	Status  v1.RolloutStatus
	Devices []DeviceView // every target, in rollout order (Sort)
}

// Stop ends a rollout.
type Stop struct {
	// Reason is a condition reason: RolloutFailed, ScheduleEnded or CannotFinish.
	Reason  string
	Message string
	// Rollback asks for the previous good module on the devices that got the new one
	// (subject to spec.rollout.autoRollback).
	Rollback bool
}

// Plan is the policy's decision.
type Plan struct {
	// Status is the rollout status to record.
	Status v1.RolloutStatus
	// Start are devices to start for the first time, Retry devices to start again.
	Start, Retry []string
	// Stop, when set, ends the rollout.
	Stop *Stop
	// Done: the last step finished (every target succeeded or failed for good).
	Done bool
	// Reason and Message are the RolledOut condition's while the rollout goes on.
	Reason, Message string
	// RequeueAfter is when to look again; 0 when only a device report or a user can
	// move the rollout.
	RequeueAfter time.Duration
}

// Decide applies the rollout policy at in.Now.
func Decide(in Input) Plan {
	p := &planner{in: in, now: in.Now, spec: in.Spec, ro: *in.Status.DeepCopy()}
	return p.decide()
}

type planner struct {
	in   Input
	now  time.Time
	spec v1.RolloutSpec
	ro   v1.RolloutStatus
	next time.Time // earliest time-based event
	plan Plan
}

func (p *planner) wake(t time.Time) {
	if t.IsZero() {
		return
	}
	if p.next.IsZero() || t.Before(p.next) {
		p.next = t
	}
}

func (p *planner) decide() Plan {
	ro, spec, now := &p.ro, p.spec, p.now
	n := len(p.in.Devices)
	steps := Steps(spec)
	ro.Steps, ro.Targeted = int32(steps), int32(n)
	// Status can be written by anyone allowed to: a step out of range is clamped.
	if int(ro.Step) >= steps {
		ro.Step = int32(steps - 1)
	}
	ro.Step = max(ro.Step, 0)
	ro.Overdue, ro.WaitingFor, ro.NextActionAt = false, "", nil
	if ro.FailuresByType == nil {
		ro.FailuresByType = map[v1.FailureType]int32{}
	}
	win, err := ParseWindows(spec.Maintenance)
	if err != nil {
		return p.stop(v1.ReasonCannotFinish, err.Error(), false)
	}

	succeeded := p.track()
	p.timeouts()
	failed := 0
	clear(ro.FailuresByType)
	for _, e := range ro.Devices {
		if e.Final {
			failed++
			ro.FailuresByType[e.Failure]++
		}
	}
	ro.Succeeded, ro.Failed = int32(succeeded), int32(failed)
	if len(ro.FailuresByType) == 0 {
		ro.FailuresByType = nil
	}
	if s := p.abort(succeeded, failed, n); s != nil {
		return p.stop(s.Reason, s.Message, s.Rollback)
	}

	// Steps that finished move the rollout on, after their pause.
	size, _ := StepSize(spec, ro.Step, n)
	for p.stepFinished(size) && int(ro.Step)+1 < steps {
		if ps := spec.Steps[ro.Step].Pause; ps != nil && ps.Duration > 0 {
			if ro.PausedUntil == nil {
				until := metav1.NewTime(now.Add(ps.Duration))
				ro.PausedUntil = &until
			}
			if now.Before(ro.PausedUntil.Time) {
				p.wake(ro.PausedUntil.Time)
				return p.wait(v1.ReasonRolloutPaused, fmt.Sprintf("step %d of %d done; next step at %s",
					ro.Step+1, steps, ro.PausedUntil.UTC().Format(time.RFC3339)))
			}
		}
		ro.Step++
		ro.PausedUntil = nil
		size, _ = StepSize(spec, ro.Step, n)
	}
	if p.stepFinished(size) {
		if sched := spec.Schedule; sched != nil && sched.EndBy != nil && !now.Before(sched.EndBy.Time) &&
			sched.EndBehavior == v1.EndContinue {
			ro.Overdue = true
		}
		p.plan.Done = true
		p.plan.Status = *ro
		p.plan.Reason = v1.ReasonRolloutSucceeded
		return p.plan
	}

	// The schedule's end.
	if sched := spec.Schedule; sched != nil && sched.EndBy != nil && !now.Before(sched.EndBy.Time) {
		end := sched.EndBy.UTC().Format(time.RFC3339)
		switch {
		case sched.EndBehavior == v1.EndContinue:
			ro.Overdue = true
		case ro.Started == 0:
			return p.stop(v1.ReasonCannotFinish, fmt.Sprintf("spec.rollout.schedule.endBy %s passed before any device started; move it or remove it", end), false)
		case sched.EndBehavior == v1.EndRollback:
			return p.stop(v1.ReasonScheduleEnded, fmt.Sprintf("spec.rollout.schedule.endBy %s passed with %d of %d devices done", end, succeeded, n), true)
		default:
			return p.stop(v1.ReasonScheduleEnded, fmt.Sprintf("spec.rollout.schedule.endBy %s passed with %d of %d devices done; no more devices start, those that run keep the module", end, succeeded, n), false)
		}
	}

	// Devices that may start: retries due, and the current step's devices not started.
	tracked := map[string]bool{}
	for _, e := range ro.Devices {
		tracked[e.Name] = true
	}
	var candidates []string
	for _, d := range p.in.Devices[:size] {
		if d.Outcome != Succeeded && !tracked[d.Name] {
			candidates = append(candidates, d.Name)
		}
	}
	retryLater := false
	for _, e := range ro.Devices {
		if !e.Final && e.Failure != "" {
			retryLater = true
		}
	}
	inFlight := func() int {
		c := 0
		for _, e := range ro.Devices {
			if !e.Final && e.Failure == "" {
				c++
			}
		}
		return c
	}
	if len(candidates) == 0 && !retryLater {
		return p.rolling(fmt.Sprintf("waiting for %d started devices to report", inFlight()))
	}

	// Gates every start passes: the schedule's start, the maintenance windows.
	if sched := spec.Schedule; sched != nil && sched.NotBefore != nil && now.Before(sched.NotBefore.Time) {
		if msg := p.neverOpens(win, sched.NotBefore.Time); msg != "" {
			return p.stop(v1.ReasonCannotFinish, msg, false)
		}
		p.wake(sched.NotBefore.Time)
		return p.wait(v1.ReasonWaitingForSchedule, fmt.Sprintf("spec.rollout.schedule.notBefore: the first device starts at %s",
			sched.NotBefore.UTC().Format(time.RFC3339)))
	}
	if win != nil && !win.Open(now) {
		if msg := p.neverOpens(win, now); msg != "" {
			return p.stop(v1.ReasonCannotFinish, msg, false)
		}
		opens, _ := win.NextOpen(now)
		p.wake(opens)
		return p.wait(v1.ReasonOutsideMaintenanceWindow, fmt.Sprintf("outside the maintenance windows; the next opens at %s",
			opens.In(win.loc).Format(time.RFC3339)))
	}
	if win != nil {
		_, closes := win.openUntil(now)
		p.wake(closes)
	}

	// Retries that are due.
	for i := range ro.Devices {
		e := &ro.Devices[i]
		if e.Final || e.Failure == "" || e.RetryAt == nil {
			continue
		}
		if now.Before(e.RetryAt.Time) {
			p.wake(e.RetryAt.Time)
			continue
		}
		e.Attempts++
		e.StartedAt, e.Failure, e.RetryAt = metav1.NewMicroTime(now), "", nil
		ro.Retries++
		p.plan.Retry = append(p.plan.Retry, e.Name)
	}

	// New devices: approval, capacity, rate.
	if len(candidates) > 0 {
		if spec.Strategy == v1.RolloutCanary && spec.Steps[ro.Step].RequireApproval && ro.ApprovedStep < ro.Step+1 {
			return p.wait(v1.ReasonWaitingForApproval, fmt.Sprintf("waiting for approval of step %d of %d: annotate the Application %s=%d, or approve it in the console",
				ro.Step+1, steps, ApproveAnnotation, ro.Step+1))
		}
		room := MaxTracked - len(ro.Devices)
		if room <= 0 {
			return p.wait(v1.ReasonRateLimited, fmt.Sprintf("%d started devices have not succeeded; no device starts until some do", len(ro.Devices)))
		}
		allow, nextAt := p.rate(succeeded, min(room, len(candidates)))
		start := candidates[:min(allow, room, len(candidates))]
		for _, name := range start {
			ro.Devices = append(ro.Devices, v1.RolloutDevice{Name: name, StartedAt: metav1.NewMicroTime(now), Attempts: 1})
		}
		ro.Started += int32(len(start))
		p.plan.Start = start
		if len(start) < len(candidates) {
			p.wake(nextAt)
			p.countDispatched(size)
			return p.wait(v1.ReasonRateLimited, fmt.Sprintf("rate limit: %d devices per minute; next device at %s; %d of step %d's devices not started yet",
				ro.Rate.DevicesPerMinute, nextAt.UTC().Format(time.RFC3339), len(candidates)-len(start), ro.Step+1))
		}
	}
	return p.rolling(fmt.Sprintf("waiting for %d started devices to report", inFlight()))
}

// track updates status.rollout.devices from the reports and returns how many targets
// succeeded.
func (p *planner) track() int {
	ro, now := &p.ro, p.now
	byName := make(map[string]*DeviceView, len(p.in.Devices))
	succeeded := 0
	for i := range p.in.Devices {
		d := &p.in.Devices[i]
		byName[d.Name] = d
		if d.Outcome == Succeeded {
			succeeded++
		}
	}
	kept := ro.Devices[:0:0]
	seen := map[string]bool{}
	for _, e := range ro.Devices {
		d := byName[e.Name]
		if d == nil || d.Outcome == Succeeded {
			continue // no longer a target, or it succeeded
		}
		seen[e.Name] = true
		if !e.Final && e.Failure == "" && d.Outcome == Failed &&
			(e.FailedReport == nil || d.ReportedAt.After(e.FailedReport.Time)) {
			p.fail(&e, d.Failure, d.Message, d.ReportedAt)
		}
		kept = append(kept, e)
	}
	// A device that failed without being tracked: it trapped after it had succeeded.
	for _, d := range p.in.Devices {
		if d.Outcome == Failed && !seen[d.Name] && len(kept) < MaxTracked {
			e := v1.RolloutDevice{Name: d.Name, StartedAt: metav1.NewMicroTime(now), Attempts: 1}
			p.fail(&e, d.Failure, d.Message, d.ReportedAt)
			kept = append(kept, e)
		}
	}
	ro.Devices = kept
	if len(ro.Devices) == 0 {
		ro.Devices = nil
	}
	return succeeded
}

// timeouts fails the devices in flight longer than spec.rollout.deviceTimeout.
func (p *planner) timeouts() {
	t := p.spec.DeviceTimeout
	if t == nil || t.Duration <= 0 {
		return
	}
	for i := range p.ro.Devices {
		e := &p.ro.Devices[i]
		if e.Final || e.Failure != "" {
			continue
		}
		deadline := e.StartedAt.Add(t.Duration)
		if p.now.Before(deadline) {
			p.wake(deadline)
			continue
		}
		p.fail(e, v1.FailureTimeout, fmt.Sprintf("not Running within spec.rollout.deviceTimeout %s", t.Duration), time.Time{})
	}
}

// fail records a failure of e, with a retry when the policy has one left.
func (p *planner) fail(e *v1.RolloutDevice, typ v1.FailureType, msg string, reportedAt time.Time) {
	if typ == "" {
		typ = v1.FailureTrap
	}
	e.Failure = typ
	if len(msg) > 256 {
		msg = msg[:256]
	}
	e.Message = msg
	if !reportedAt.IsZero() {
		at := metav1.NewMicroTime(reportedAt)
		e.FailedReport = &at
	}
	if r := retryFor(p.spec, typ); r != nil && e.Attempts-1 < r.Attempts {
		backoff := defaultBackoff
		if r.Backoff != nil && r.Backoff.Duration > 0 {
			backoff = r.Backoff.Duration
		}
		for i := int32(1); i < e.Attempts && backoff < maxBackoff; i++ {
			backoff *= 2
		}
		at := metav1.NewMicroTime(p.now.Add(min(backoff, maxBackoff)))
		e.RetryAt = &at
		return
	}
	e.Final, e.RetryAt = true, nil
	if p.ro.FirstFailure == "" {
		p.ro.FirstFailure = fmt.Sprintf("%s: %s: %s", e.Name, typ, msg)
	}
}

// retryFor returns the retry policy for a failure type: its own, else "any".
func retryFor(spec v1.RolloutSpec, typ v1.FailureType) *v1.RetryPolicy {
	var anyType *v1.RetryPolicy
	for i := range spec.Retries {
		switch spec.Retries[i].FailureType {
		case typ:
			return &spec.Retries[i]
		case v1.FailureAny:
			anyType = &spec.Retries[i]
		}
	}
	return anyType
}

// abort applies maxFailures and the abort criteria.
func (p *planner) abort(succeeded, failed, n int) *Stop {
	spec := p.spec
	maxFail, err := intstr.GetScaledValueFromIntOrPercent(spec.MaxFailures, n, true)
	if err != nil {
		maxFail = 0
	}
	if (len(spec.AbortCriteria) == 0 || maxFail > 0) && failed > maxFail {
		return &Stop{Reason: v1.ReasonRolloutFailed, Rollback: true,
			Message: fmt.Sprintf("%d of %d devices failed (maxFailures %d); first: %s", failed, n, maxFail, p.ro.FirstFailure)}
	}
	finished := succeeded + failed
	for _, c := range spec.AbortCriteria {
		count := failed
		if c.FailureType != v1.FailureAny {
			count = int(p.ro.FailuresByType[c.FailureType])
		}
		if count == 0 || finished < max(1, int(c.MinFinished)) || count*100 < int(c.ThresholdPercent)*finished {
			continue
		}
		return &Stop{Reason: v1.ReasonRolloutFailed, Rollback: true,
			Message: fmt.Sprintf("abort criterion %s: %d of %d finished devices failed (%d%% >= %d%% after at least %d finished); first: %s",
				c.FailureType, count, finished, count*100/finished, c.ThresholdPercent, max(1, c.MinFinished), p.ro.FirstFailure)}
	}
	return nil
}

// stepFinished reports whether every device of the first size succeeded or failed for good.
func (p *planner) stepFinished(size int) bool {
	final := map[string]bool{}
	for _, e := range p.ro.Devices {
		if e.Final {
			final[e.Name] = true
		}
	}
	for _, d := range p.in.Devices[:size] {
		if d.Outcome != Succeeded && !final[d.Name] {
			return false
		}
	}
	return true
}

// rate returns how many of want devices may start now and when the next may.
func (p *planner) rate(succeeded, want int) (int, time.Time) {
	spec, ro, now := p.spec, &p.ro, p.now
	if spec.Rate == nil {
		ro.Rate = nil
		return want, time.Time{}
	}
	rs := ro.Rate
	if rs == nil {
		rs = &v1.RateStatus{DevicesPerMinute: spec.Rate.DevicesPerMinute, BaseSucceeded: int32(succeeded), BaseStarted: ro.Started}
	}
	if g := spec.Rate.Growth; g == nil {
		rs.DevicesPerMinute = spec.Rate.DevicesPerMinute
	} else {
		limit := int32(defaultMaxRate)
		if g.MaxDevicesPerMinute != nil {
			limit = *g.MaxDevicesPerMinute
		}
		rs.DevicesPerMinute = max(rs.DevicesPerMinute, spec.Rate.DevicesPerMinute)
		grow := (g.AfterSucceeded != nil && int32(succeeded)-rs.BaseSucceeded >= *g.AfterSucceeded) ||
			(g.AfterStarted != nil && ro.Started-rs.BaseStarted >= *g.AfterStarted)
		if grow && rs.DevicesPerMinute < limit {
			f, err := strconv.ParseFloat(g.Factor, 64)
			if err != nil || f < 1 {
				f = 1
			}
			rs.DevicesPerMinute = min(limit, max(rs.DevicesPerMinute+1, int32(math.Floor(float64(rs.DevicesPerMinute)*f))))
			rs.BaseSucceeded, rs.BaseStarted = int32(succeeded), ro.Started
		}
		rs.DevicesPerMinute = min(rs.DevicesPerMinute, limit)
	}
	rs.DevicesPerMinute = max(rs.DevicesPerMinute, 1)
	ro.Rate = rs
	interval := time.Minute / time.Duration(rs.DevicesPerMinute)
	burst := max(1, int(math.Ceil(float64(rs.DevicesPerMinute)*burstWindow.Seconds()/60)))
	if rs.NextStartAt != nil && now.Before(rs.NextStartAt.Time) {
		return 0, rs.NextStartAt.Time
	}
	from := now
	if rs.NextStartAt != nil {
		from = rs.NextStartAt.Time
	}
	if floor := now.Add(-time.Duration(burst-1) * interval); from.Before(floor) {
		from = floor
	}
	allow := min(want, burst, 1+int(now.Sub(from)/interval))
	next := metav1.NewMicroTime(from.Add(time.Duration(allow) * interval))
	rs.NextStartAt = &next
	return allow, next.Time
}

// neverOpens explains, when the maintenance windows cannot open before the schedule's
// end (or at all) after from, why the rollout can never finish.
func (p *planner) neverOpens(win *Windows, from time.Time) string {
	if win == nil {
		return ""
	}
	if !win.Open(from) {
		opens, ok := win.NextOpen(from)
		if !ok {
			return "spec.rollout.maintenance: no window ever opens"
		}
		from = opens
	}
	if s := p.spec.Schedule; s != nil && s.EndBy != nil && s.EndBehavior != v1.EndContinue && !from.Before(s.EndBy.Time) {
		return fmt.Sprintf("no maintenance window opens before spec.rollout.schedule.endBy %s (the next opens at %s); move endBy or change the windows",
			s.EndBy.UTC().Format(time.RFC3339), from.In(win.loc).Format(time.RFC3339))
	}
	return ""
}

func (p *planner) countDispatched(size int) {
	tracked := map[string]bool{}
	for _, e := range p.ro.Devices {
		tracked[e.Name] = true
	}
	c := 0
	for _, d := range p.in.Devices[:size] {
		if d.Outcome == Succeeded || tracked[d.Name] {
			c++
		}
	}
	p.ro.Dispatched = int32(c)
}

func (p *planner) finish(reason, msg string) Plan {
	size, _ := StepSize(p.spec, p.ro.Step, len(p.in.Devices))
	p.countDispatched(size)
	if p.plan.Stop != nil {
		p.plan.Start, p.plan.Retry = nil, nil
		p.plan.Status = p.ro
		return p.plan
	}
	if !p.next.IsZero() {
		at := metav1.NewTime(p.next)
		p.ro.NextActionAt = &at
		p.plan.RequeueAfter = max(p.next.Sub(p.now), 50*time.Millisecond)
	}
	p.plan.Reason, p.plan.Message = reason, msg
	p.plan.Status = p.ro
	return p.plan
}

// wait ends a decision with the rollout held by reason; msg is also status.waitingFor.
func (p *planner) wait(reason, msg string) Plan {
	p.ro.WaitingFor = msg
	return p.finish(reason, msg)
}

// rolling ends a decision with devices on their way; what remains is in the message.
func (p *planner) rolling(waiting string) Plan {
	ro := &p.ro
	var b strings.Builder
	fmt.Fprintf(&b, "step %d of %d: %d of %d devices run %s, %d failed", ro.Step+1, ro.Steps, ro.Succeeded, ro.Targeted, ro.Digest, ro.Failed)
	if ro.Retries > 0 {
		fmt.Fprintf(&b, ", %d retries", ro.Retries)
	}
	if ro.Overdue {
		b.WriteString("; overdue: spec.rollout.schedule.endBy passed")
	}
	ro.WaitingFor = waiting
	return p.finish(v1.ReasonRollingOut, b.String())
}

func (p *planner) stop(reason, msg string, rollback bool) Plan {
	p.plan.Stop = &Stop{Reason: reason, Message: msg, Rollback: rollback}
	return p.finish(reason, msg)
}
