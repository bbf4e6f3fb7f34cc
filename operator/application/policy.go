package application

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wasmbed/wasmbed/api/events"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/rollout"
)

// reconcilePaced moves a rollout that has a policy (spec.rollout rate, abort criteria,
// retries, device timeout, schedule, maintenance windows or approvals): internal/rollout
// decides which devices start now, the operator asks dispatch for them by name and
// looks again when the policy's next time comes (RequeueAfter).
func (r *Reconciler) reconcilePaced(ctx context.Context, app *v1.Application, ro v1.RolloutStatus, targets []v1.Device) (ctrl.Result, error) {
	st, gen, spec := &app.Status, app.Generation, app.Spec.Rollout
	batch := func(step int32) []v1.Device {
		size, err := rollout.StepSize(spec, min(step, int32(rollout.Steps(spec)-1)), len(targets))
		if err != nil {
			return targets
		}
		return targets[:size]
	}
	if spec.Abort {
		return r.stop(ctx, app, &ro, batch(ro.Step), v1.ReasonRolloutAborted, "rollout aborted by spec.rollout.abort", true)
	}
	if n, ok := approvedStep(app); ok {
		ro.ApprovedStep = max(ro.ApprovedStep, min(n, int32(rollout.Steps(spec))))
	}
	views := make([]rollout.DeviceView, len(targets))
	for i := range targets {
		views[i] = r.view(app, &targets[i], &ro)
	}
	if spec.Paused {
		// Nothing starts or is retried; the counts stay current.
		ro.Succeeded, ro.Targeted = 0, int32(len(views))
		for _, v := range views {
			if v.Outcome == rollout.Succeeded {
				ro.Succeeded++
			}
		}
		ro.WaitingFor = "paused by spec.rollout.paused"
		st.Rollout = &ro
		st.MarkRolloutPaused(gen, fmt.Sprintf("paused by spec.rollout.paused at step %d of %d", ro.Step+1, rollout.Steps(spec)))
		return ctrl.Result{}, nil
	}
	now := r.opts.Now()
	plan := rollout.Decide(rollout.Input{Now: now, Spec: spec, Status: ro, Devices: views})
	start := append(slices.Clone(plan.Start), plan.Retry...)
	again := 0
	if len(start) == 0 && ro.RequestedAt != nil && now.Sub(ro.RequestedAt.Time) > 3*redispatchAfter {
		// Devices in flight without any report for a while: ask again in case the request
		// was lost (the gateway ignores a request it already holds).
		for _, e := range plan.Status.Devices {
			if !e.Final && e.Failure == "" && now.Sub(e.StartedAt.Time) > 3*redispatchAfter {
				start = append(start, e.Name)
				again++
			}
		}
	}
	if len(start) > 0 {
		// The cache may not show this reconciler's last status write yet: deciding on it
		// would start the same devices twice. Wait for it instead.
		var latest v1.Application
		if err := r.live.Get(ctx, client.ObjectKeyFromObject(app), &latest); err != nil {
			return ctrl.Result{}, fmt.Errorf("read application %s/%s: %w", app.Namespace, app.Name, err)
		}
		if latest.ResourceVersion != app.ResourceVersion {
			return ctrl.Result{RequeueAfter: 50 * time.Millisecond}, nil
		}
		size := int64(0)
		if st.Build != nil && st.Build.Digest == ro.Digest {
			size = st.Build.Size
		}
		if err := r.send(ctx, app, events.RolloutRequested, &events.RolloutRequestedData{
			Application: ref(app), Digest: ro.Digest, Size: size, Step: plan.Status.Step, Devices: start, Paced: true,
		}); err != nil {
			return ctrl.Result{}, err
		}
		at := metav1.NewTime(now)
		plan.Status.RequestedAt = &at
		policyStarts.WithLabelValues("first").Add(float64(len(plan.Start)))
		policyStarts.WithLabelValues("retry").Add(float64(len(plan.Retry)))
		policyStarts.WithLabelValues("again").Add(float64(again))
		if len(plan.Retry) > 0 {
			r.recorder.Eventf(app, nil, corev1.EventTypeNormal, "Retrying", ActionRollout, "retrying %d devices: %v", len(plan.Retry), plan.Retry)
		}
	}
	ro = plan.Status
	switch {
	case plan.Stop != nil:
		if c := meta.FindStatusCondition(st.Conditions, v1.ConditionRolledOut); c == nil || c.Reason != plan.Stop.Reason {
			policyStops.WithLabelValues(plan.Stop.Reason).Inc()
		}
		return r.stop(ctx, app, &ro, batch(ro.Step), plan.Stop.Reason, plan.Stop.Message, plan.Stop.Rollback)
	case plan.Done:
		st.MarkRolledOut(gen, ro)
		return ctrl.Result{}, nil
	}
	if c := meta.FindStatusCondition(st.Conditions, v1.ConditionRolledOut); plan.Reason != v1.ReasonRollingOut &&
		plan.Reason != v1.ReasonRateLimited && (c == nil || c.Reason != plan.Reason) {
		r.recorder.Eventf(app, nil, corev1.EventTypeNormal, plan.Reason, ActionRollout, "%s", plan.Message)
	}
	st.MarkRolloutWaiting(gen, ro, plan.Reason, plan.Message)
	after := r.opts.Resync
	if plan.RequeueAfter > 0 && plan.RequeueAfter < after {
		after = plan.RequeueAfter
	}
	return ctrl.Result{RequeueAfter: after}, nil
}

// view is what the policy needs of one target device: what it reported of this rollout.
func (r *Reconciler) view(app *v1.Application, d *v1.Device, ro *v1.RolloutStatus) rollout.DeviceView {
	v := rollout.DeviceView{Name: d.Name}
	a := appOn(d, app.Name)
	if a == nil || a.Digest != ro.Digest || a.Generation < ro.Generation || (a.UID != "" && a.UID != string(app.UID)) {
		return v
	}
	if a.ReportedAt != nil {
		v.ReportedAt = a.ReportedAt.Time
	}
	switch {
	case a.State == v1.AppRunning || a.State == v1.AppExited:
		v.Outcome = rollout.Succeeded
	case a.State == v1.AppFailed || (a.State == v1.AppTransferring && a.Message != ""):
		// A Transferring entry with a message is a delivery the gateway gave up on.
		v.Outcome, v.Failure, v.Message = rollout.Failed, rollout.ClassifyFailure(*a), a.Message
	}
	return v
}

// approvedStep reads the approval annotation: the step number (1-based) a user approved.
func approvedStep(app *v1.Application) (int32, bool) {
	s, ok := app.Annotations[rollout.ApproveAnnotation]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n < 1 {
		return 0, false
	}
	return int32(n), true
}

// consumeApproval removes the approval annotation once status records it, or when it
// cannot apply (a malformed value, no rollout in progress), saying why in an Event.
func (r *Reconciler) consumeApproval(ctx context.Context, app *v1.Application) error {
	raw, ok := app.Annotations[rollout.ApproveAnnotation]
	if !ok {
		return nil
	}
	ro := app.Status.Rollout
	rolled := meta.FindStatusCondition(app.Status.Conditions, v1.ConditionRolledOut)
	n, valid := approvedStep(app)
	switch {
	case !valid:
		r.recorder.Eventf(app, nil, corev1.EventTypeWarning, "InvalidApproval", ActionApprove, "%s=%q is not a step number (1, 2, ...); removed", rollout.ApproveAnnotation, raw)
	case ro == nil || terminal(rolled) || (rolled != nil && rolled.Status == metav1.ConditionTrue):
		r.recorder.Eventf(app, nil, corev1.EventTypeWarning, "InvalidApproval", ActionApprove, "no rollout in progress: the approval of step %d is removed", n)
	case !slices.ContainsFunc(app.Spec.Rollout.Steps, func(s v1.CanaryStep) bool { return s.RequireApproval }):
		r.recorder.Eventf(app, nil, corev1.EventTypeWarning, "InvalidApproval", ActionApprove, "no step of spec.rollout.steps requires approval: the approval of step %d is removed", n)
	case ro.ApprovedStep >= min(n, int32(rollout.Steps(app.Spec.Rollout))):
		r.recorder.Eventf(app, nil, corev1.EventTypeNormal, "Approved", ActionApprove, "step %d approved", ro.ApprovedStep)
	default:
		return nil // the rollout phase records it first
	}
	base := app.DeepCopy()
	delete(app.Annotations, rollout.ApproveAnnotation)
	if err := r.client.Patch(ctx, app, client.MergeFrom(base)); err != nil {
		return fmt.Errorf("remove %s: %w", rollout.ApproveAnnotation, err)
	}
	return nil
}
