package application

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/wasmbed/wasmbed/api/digest"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/wasmbed/wasmbed/api/events"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/rollout"
	"github.com/wasmbed/wasmbed/operator/receiver"
)

// redispatchAfter is how long a requested step may go without dispatch covering its
// whole batch before it is requested again (new devices, a lost event).
const redispatchAfter = 10 * time.Second

func metav1LabelSelector(app *v1.Application) (labels.Selector, error) {
	return metav1.LabelSelectorAsSelector(&app.Spec.Selector)
}

// reconcileBuild starts the pipeline for a new generation, or reuses the module when
// only rollout settings changed.
func (r *Reconciler) reconcileBuild(ctx context.Context, app *v1.Application) (ctrl.Result, error) {
	st, gen := &app.Status, app.Generation
	if st.ObservedGeneration == gen {
		built := meta.FindStatusCondition(st.Conditions, v1.ConditionBuilt)
		if built == nil || built.Reason != v1.ReasonSourceNotFound || built.Status != metav1.ConditionFalse {
			return ctrl.Result{}, nil
		}
		// The source was missing: look again (a ConfigMap may have been created).
	}
	targets, err := rollout.Targets(ctx, r.client, app)
	if err != nil {
		return ctrl.Result{}, err
	}
	boards := boardsOf(targets)

	if r.reuse(app, boards) {
		return ctrl.Result{}, nil
	}

	src, missing, err := r.source(ctx, app)
	if err != nil {
		return ctrl.Result{}, err
	}
	if missing != "" {
		if st.ObservedGeneration != gen {
			st.InitializeConditions(gen)
			st.Rollout = nil
			st.ObservedGeneration = gen
		}
		st.MarkBuildFailed(gen, v1.ReasonSourceNotFound, missing)
		r.recorder.Eventf(app, nil, corev1.EventTypeWarning, v1.ReasonSourceNotFound, ActionBuild, "%s", missing)
		return ctrl.Result{RequeueAfter: 30 * time.Second}, nil
	}
	if prev, ok := r.requested.Load(app.UID); !ok || prev.(int64) != gen {
		if err := r.send(ctx, app, events.BuildRequested, &events.BuildRequestedData{Application: ref(app), Source: src, Boards: boards}); err != nil {
			st.MarkPipelineError(gen, err.Error())
			return ctrl.Result{}, err
		}
		r.requested.Store(app.UID, gen)
	}
	st.InitializeConditions(gen)
	st.Rollout = nil
	st.MarkBuilding(gen)
	st.ObservedGeneration = gen
	r.recorder.Eventf(app, nil, corev1.EventTypeNormal, v1.ReasonBuilding, ActionBuild, "build requested for generation %d (boards %v)", gen, boards)
	return ctrl.Result{}, nil
}

// reuse carries the module of an earlier generation over when the source is the same
// and it was validated for every board now targeted. It reports whether it did.
func (r *Reconciler) reuse(app *v1.Application, boards []string) bool {
	st, gen := &app.Status, app.Generation
	b, v := st.Build, st.Validation
	if b == nil || v == nil || !v.Passed || v.Digest != b.Digest || b.SourceHash != receiver.SourceHash(app.Spec.Source) {
		return false
	}
	validated := map[string]bool{}
	for _, f := range v.Boards {
		validated[f.Board] = f.Fits
	}
	for _, board := range boards {
		if !validated[board] {
			return false
		}
	}
	prevRolled := meta.FindStatusCondition(st.Conditions, v1.ConditionRolledOut)
	prev := st.Rollout
	st.ObservedGeneration = gen
	st.MarkBuilt(gen, *b)
	st.MarkValidated(gen, *v)
	sameDelivery := prev != nil && prev.Digest == b.Digest && prev.ConfigHash == receiver.ConfigHash(app.Spec.Config)
	switch {
	case sameDelivery && prevRolled != nil && prevRolled.Status == metav1.ConditionTrue:
		st.MarkRolledOut(gen, *prev)
	case sameDelivery && !terminal(prevRolled):
		st.MarkRollingOut(gen, *prev)
	default:
		// A new configuration, or a new attempt after a failed rollout: start over with
		// the same module; the rollout phase requests step 0.
		st.MarkRollingOut(gen, v1.RolloutStatus{Digest: b.Digest, Steps: int32(rollout.Steps(app.Spec.Rollout)),
			Generation: gen, ConfigHash: receiver.ConfigHash(app.Spec.Config)})
	}
	return true
}

func terminal(c *metav1.Condition) bool {
	return c != nil && c.Status == metav1.ConditionFalse &&
		(c.Reason == v1.ReasonRolledBack || c.Reason == v1.ReasonRolloutFailed || c.Reason == v1.ReasonRolloutAborted ||
			c.Reason == v1.ReasonScheduleEnded)
}

// source turns spec.source into the build request's source. missing explains a source
// that cannot be read yet (the user's to fix).
func (r *Reconciler) source(ctx context.Context, app *v1.Application) (src events.Source, missing string, err error) {
	s := app.Spec.Source
	switch {
	case s.Inline != nil:
		return events.Source{Language: string(s.Inline.Language), Code: s.Inline.Code}, "", nil
	case s.ConfigMap != nil:
		var cm corev1.ConfigMap
		err := r.live.Get(ctx, client.ObjectKey{Namespace: app.Namespace, Name: s.ConfigMap.Name}, &cm)
		if apierrors.IsNotFound(err) {
			return src, fmt.Sprintf("spec.source.configMap: ConfigMap %s/%s not found; create it or fix the name", app.Namespace, s.ConfigMap.Name), nil
		}
		if err != nil {
			return src, "", fmt.Errorf("get ConfigMap %s/%s: %w", app.Namespace, s.ConfigMap.Name, err)
		}
		code, ok := cm.Data[s.ConfigMap.Key]
		if !ok {
			return src, fmt.Sprintf("spec.source.configMap: ConfigMap %s/%s has no key %q", app.Namespace, s.ConfigMap.Name, s.ConfigMap.Key), nil
		}
		if len(code) > events.MaxSourceBytes {
			return src, fmt.Sprintf("spec.source.configMap: key %q is %d bytes; the limit is %d", s.ConfigMap.Key, len(code), events.MaxSourceBytes), nil
		}
		return events.Source{Language: string(s.ConfigMap.Language), Code: code}, "", nil
	case s.Module != nil:
		m := &events.Module{OCI: s.Module.OCI, URL: s.Module.URL, Digest: s.Module.Digest}
		if s.Module.ConfigMap != nil {
			m.ConfigMap = &events.ConfigMapKey{Name: s.Module.ConfigMap.Name, Key: s.Module.ConfigMap.Key}
		}
		return events.Source{Module: m}, "", nil
	}
	return src, "spec.source names no source", nil
}

func boardsOf(devs []v1.Device) []string {
	var out []string
	for _, d := range devs {
		if !slices.Contains(out, d.Spec.Board) {
			out = append(out, d.Spec.Board)
		}
	}
	slices.Sort(out)
	if len(out) == 0 {
		// No target yet: validate for the virtual board so the user sees build and ABI
		// problems now; a new generation revalidates once real boards are targeted.
		out = []string{"virtual"}
	}
	return out
}

// reconcileRollout counts what the target devices report for the module being rolled
// out and moves the rollout: next Canary step, done, paused, or stopped (and rolled back).
func (r *Reconciler) reconcileRollout(ctx context.Context, app *v1.Application) (ctrl.Result, error) {
	st, gen, spec := &app.Status, app.Generation, app.Spec.Rollout
	// The rollout moves once the module's build and validation are both recorded for
	// this generation: module.built can reach the receiver after module.validated (a
	// retry), and a rollout must not complete on a status that lacks its build.
	valid := meta.FindStatusCondition(st.Conditions, v1.ConditionValidated)
	built := meta.FindStatusCondition(st.Conditions, v1.ConditionBuilt)
	if st.Rollout == nil || valid == nil || valid.Status != metav1.ConditionTrue || valid.ObservedGeneration != gen ||
		built == nil || built.Status != metav1.ConditionTrue || built.ObservedGeneration != gen || st.Build == nil {
		return ctrl.Result{}, nil
	}
	if terminal(meta.FindStatusCondition(st.Conditions, v1.ConditionRolledOut)) {
		return r.joinersAfterRollback(ctx, app)
	}
	ro := *st.Rollout
	targets, err := rollout.Targets(ctx, r.client, app)
	if err != nil {
		return ctrl.Result{}, err
	}
	n := len(targets)
	if n == 0 {
		st.MarkNoTargets(gen)
		return ctrl.Result{}, nil
	}
	if rollout.Paced(spec) {
		return r.reconcilePaced(ctx, app, ro, targets)
	}
	steps := rollout.Steps(spec)
	ro.Steps = int32(steps)
	if int(ro.Step) >= steps {
		ro.Step = int32(steps - 1)
	}
	size, err := rollout.StepSize(spec, ro.Step, n)
	if err != nil {
		return ctrl.Result{}, err
	}

	ro.Targeted, ro.Succeeded, ro.Failed = int32(n), 0, 0
	batchDone := 0
	for i, d := range targets {
		a := appOn(&d, app.Name)
		if a == nil || a.Digest != ro.Digest || a.Generation < ro.Generation || (a.UID != "" && a.UID != string(app.UID)) {
			continue // not (yet) this rollout's module and configuration, or another object's
		}
		switch a.State {
		case v1.AppRunning, v1.AppExited:
			ro.Succeeded++
			if i < size {
				batchDone++
			}
		case v1.AppFailed:
			ro.Failed++
			if ro.FirstFailure == "" {
				ro.FirstFailure = fmt.Sprintf("%s: %s", d.Name, a.Message)
			}
		}
	}
	// What the gateways sum up arrives before the Devices' own status, which is written
	// device by device: either source counts a device that is done.
	if rep, ok := countReports(st.GatewayReports, &ro); ok {
		ro.Succeeded = max(ro.Succeeded, min(rep.succeeded, int32(n)))
		ro.Failed = max(ro.Failed, rep.failed)
		batchDone = max(batchDone, min(int(rep.succeeded), size))
		if ro.FirstFailure == "" {
			ro.FirstFailure = rep.firstFailure
		}
	}
	maxFail, err := intstr.GetScaledValueFromIntOrPercent(spec.MaxFailures, n, true)
	if err != nil {
		maxFail = 0
	}
	now := metav1.NewTime(r.opts.Now())

	switch {
	case spec.Abort:
		return r.stop(ctx, app, &ro, targets[:size], v1.ReasonRolloutAborted, "rollout aborted by spec.rollout.abort", true)
	case int(ro.Failed) > maxFail:
		return r.stop(ctx, app, &ro, targets[:size], v1.ReasonRolloutFailed,
			fmt.Sprintf("%d of %d devices failed to run %s (maxFailures %d); first: %s", ro.Failed, n, ro.Digest, maxFail, ro.FirstFailure), true)
	case spec.Paused:
		st.Rollout = &ro
		st.MarkRolloutPaused(gen, fmt.Sprintf("paused by spec.rollout.paused at step %d of %d (%d of %d devices run %s)", ro.Step+1, steps, ro.Succeeded, n, ro.Digest))
		return ctrl.Result{}, nil
	}

	if batchDone == size && int(ro.Step)+1 < steps {
		if p := spec.Steps[ro.Step].Pause; p != nil && p.Duration > 0 {
			if ro.PausedUntil == nil {
				until := metav1.NewTime(now.Add(p.Duration))
				ro.PausedUntil = &until
			}
			if now.Before(ro.PausedUntil) {
				st.Rollout = &ro
				st.MarkRolloutPaused(gen, fmt.Sprintf("step %d of %d done; pausing until %s before the next step", ro.Step+1, steps, ro.PausedUntil.UTC().Format(time.RFC3339)))
				return ctrl.Result{RequeueAfter: ro.PausedUntil.Sub(now.Time)}, nil
			}
		}
		ro.Step++
		ro.PausedUntil, ro.Dispatched, ro.RequestedAt = nil, 0, nil
		size, _ = rollout.StepSize(spec, ro.Step, n)
	}
	if batchDone == size && int(ro.Step)+1 >= steps && int(ro.Succeeded) == n {
		st.MarkRolledOut(gen, ro)
		return ctrl.Result{}, nil
	}
	// Request the step from dispatch when it was never requested, or when dispatch has
	// not covered its whole batch for a while (devices added, an event lost).
	if ro.RequestedAt == nil || (int(ro.Dispatched) < size && now.Sub(ro.RequestedAt.Time) > redispatchAfter) {
		size64 := int64(0)
		if st.Build != nil && st.Build.Digest == ro.Digest {
			size64 = st.Build.Size
		}
		if err := r.send(ctx, app, events.RolloutRequested, &events.RolloutRequestedData{Application: ref(app), Digest: ro.Digest, Size: size64, Step: ro.Step}); err != nil {
			return ctrl.Result{}, err
		}
		ro.RequestedAt = &now
	}
	st.MarkRollingOut(gen, ro)
	return ctrl.Result{RequeueAfter: r.opts.Resync}, nil
}

// stop ends a rollout; with rollback and autoRollback it redeploys the previous good
// module to the devices of the current batch.
func (r *Reconciler) stop(ctx context.Context, app *v1.Application, ro *v1.RolloutStatus, batch []v1.Device, reason, msg string, rollback bool) (ctrl.Result, error) {
	st, gen := &app.Status, app.Generation
	auto := app.Spec.Rollout.AutoRollback == nil || *app.Spec.Rollout.AutoRollback
	prev := st.PreviousGoodDigest
	if rollback && auto && prev != "" && prev != ro.Digest && !ro.RolledBack {
		names := make([]string, len(batch))
		for i, d := range batch {
			names[i] = d.Name
		}
		if err := r.send(ctx, app, events.RolloutRequested, &events.RolloutRequestedData{Application: ref(app), Digest: prev, Devices: names}); err != nil {
			return ctrl.Result{}, err
		}
		ro.RolledBack = true
		if reason == v1.ReasonRolloutFailed {
			reason = v1.ReasonRolledBack
		}
		msg = fmt.Sprintf("%s; rolled %d devices back to %s", msg, len(names), prev)
	}
	st.Rollout = ro
	if c := meta.FindStatusCondition(st.Conditions, v1.ConditionRolledOut); c == nil || c.Reason != reason || c.Message != msg {
		r.recorder.Eventf(app, nil, corev1.EventTypeWarning, reason, ActionRollout, "%s", msg)
	}
	st.MarkRolloutFailed(gen, reason, msg)
	return ctrl.Result{}, nil
}

// joinersAfterRollback gives the devices that came to match the selector after a
// rollout was rolled back the module the others were rolled back to, the Application's
// current good version. Devices that report anything of this Application object are
// left alone.
func (r *Reconciler) joinersAfterRollback(ctx context.Context, app *v1.Application) (ctrl.Result, error) {
	st := &app.Status
	ro, prev := st.Rollout, st.PreviousGoodDigest
	if ro == nil || !ro.RolledBack || prev == "" || prev == ro.Digest {
		return ctrl.Result{}, nil
	}
	targets, err := rollout.Targets(ctx, r.client, app)
	if err != nil {
		return ctrl.Result{}, err
	}
	now := r.opts.Now()
	v, _ := r.joined.LoadOrStore(app.UID, &joinedDevices{at: map[string]time.Time{}})
	jd := v.(*joinedDevices)
	jd.mu.Lock()
	defer jd.mu.Unlock()
	var joiners []string
	waiting := false
	for i := range targets {
		// A joiner has nothing of this object: no entry, a Removed one, or another
		// (deleted) object's of the same name.
		if a := appOn(&targets[i], app.Name); a != nil && a.State != v1.AppRemoved && (a.UID == "" || a.UID == string(app.UID)) {
			continue
		}
		waiting = true
		// Asked already: the gateway keeps it for a device that is offline; ask again
		// only after a while, in case the request was lost.
		if at, ok := jd.at[targets[i].Name]; !ok || now.Sub(at) > joinerResend {
			joiners = append(joiners, targets[i].Name)
		}
	}
	if len(joiners) > 0 {
		if err := r.send(ctx, app, events.RolloutRequested, &events.RolloutRequestedData{Application: ref(app), Digest: prev, Devices: joiners}); err != nil {
			return ctrl.Result{}, err
		}
		for _, n := range joiners {
			jd.at[n] = now
		}
		r.recorder.Eventf(app, nil, corev1.EventTypeNormal, "JoinedAfterRollback", ActionRollout, "%d devices joined after the rollback: sent them %s", len(joiners), prev)
	}
	if waiting {
		return ctrl.Result{RequeueAfter: joinerResend}, nil
	}
	return ctrl.Result{}, nil
}

// joinerResend is how long a device that joined after a rollback may go without a
// report before it is sent the good module again.
const joinerResend = 5 * time.Minute

// joinedDevices remembers when the devices that joined an Application after its
// rollback were sent its good module (in memory: after a restart, one more request).
type joinedDevices struct {
	mu sync.Mutex
	at map[string]time.Time
}

// reportCounts is what the gateways report of a rollout's module.
type reportCounts struct {
	succeeded, failed int32
	firstFailure      string
}

// countReports sums the gateways' reports of ro's module for ro's generation or a later
// one; ok is false when no gateway reported it yet.
func countReports(reports []v1.GatewayReport, ro *v1.RolloutStatus) (out reportCounts, ok bool) {
	for _, r := range reports {
		if r.Digest != ro.Digest || r.Generation < ro.Generation {
			continue
		}
		ok = true
		out.succeeded += r.Succeeded
		out.failed += r.Failed
		if out.firstFailure == "" {
			out.firstFailure = r.FirstFailure
		}
	}
	return out, ok
}

func appOn(d *v1.Device, name string) *v1.DeviceApplication {
	for i := range d.Status.Applications {
		if d.Status.Applications[i].Name == name {
			return &d.Status.Applications[i]
		}
	}
	return nil
}

// finalize asks dispatch to remove the application from its devices; the receiver
// drops the finalizer when dispatch confirms.
func (r *Reconciler) finalize(ctx context.Context, app *v1.Application) error {
	if !controllerutil.ContainsFinalizer(app, receiver.Finalizer) {
		return nil
	}
	r.requested.Delete(app.UID)
	r.joined.Delete(app.UID)
	var digest digest.Digest
	switch {
	case app.Status.Rollout != nil:
		digest = app.Status.Rollout.Digest
	case app.Status.Build != nil:
		digest = app.Status.Build.Digest
	}
	if err := r.deleteSteps(ctx, app); err != nil {
		return err
	}
	if digest == "" { // never built: nothing on any device
		controllerutil.RemoveFinalizer(app, receiver.Finalizer)
		return client.IgnoreNotFound(r.client.Update(ctx, app))
	}
	key, now := client.ObjectKeyFromObject(app), r.opts.Now()
	if v, ok := r.removing.Load(key); ok {
		if last := v.(removal); last.uid == app.UID && now.Sub(last.at) < redispatchAfter {
			return nil // requested a moment ago; dispatch has not confirmed yet
		}
	}
	if err := r.send(ctx, app, events.RolloutRequested, &events.RolloutRequestedData{Application: ref(app), Digest: digest, Remove: true}); err != nil {
		return err
	}
	r.removing.Store(key, removal{uid: app.UID, at: now})
	r.recorder.Eventf(app, nil, corev1.EventTypeNormal, "Removing", ActionRemove, "%s", "removal from the devices requested")
	return nil
}

func metaName(ns, name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: ns, Name: name} }

// isNoKind reports an error for a kind the apiserver does not serve (Knative missing).
func isNoKind(err error) bool { return meta.IsNoMatchError(err) }
