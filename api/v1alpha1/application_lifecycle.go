package v1alpha1

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The Mark helpers are the only code that changes an Application's conditions and
// phase, so reconcilers never edit conditions by hand and Ready always follows from
// the other three.

func (s *ApplicationStatus) set(typ string, status metav1.ConditionStatus, gen int64, reason, msg string) {
	meta.SetStatusCondition(&s.Conditions, metav1.Condition{
		Type: typ, Status: status, ObservedGeneration: gen, Reason: reason, Message: msg,
	})
}

// InitializeConditions sets every Application condition to Unknown for generation gen,
// and clears the results of an earlier generation.
func (s *ApplicationStatus) InitializeConditions(gen int64) {
	for _, c := range []string{ConditionBuilt, ConditionValidated, ConditionRolledOut, ConditionReady} {
		s.set(c, metav1.ConditionUnknown, gen, ReasonPending, "waiting for the pipeline")
	}
	s.Build, s.Validation = nil, nil
	s.Phase = ApplicationPending
}

// MarkBuilding records that a build was requested.
func (s *ApplicationStatus) MarkBuilding(gen int64) {
	s.set(ConditionBuilt, metav1.ConditionUnknown, gen, ReasonBuilding, "build requested")
	s.summarize(gen)
}

// MarkBuilt records a successful build. Events may arrive out of order (different
// Triggers), so a verdict already recorded for the same module is kept.
func (s *ApplicationStatus) MarkBuilt(gen int64, b BuildStatus) {
	s.Build = &b
	s.set(ConditionBuilt, metav1.ConditionTrue, gen, ReasonBuildSucceeded,
		fmt.Sprintf("built %s (%d bytes)", b.Digest, b.Size))
	if v := meta.FindStatusCondition(s.Conditions, ConditionValidated); s.Validation == nil || s.Validation.Digest != b.Digest ||
		v == nil || v.ObservedGeneration != gen || v.Status == metav1.ConditionUnknown {
		s.set(ConditionValidated, metav1.ConditionUnknown, gen, ReasonValidating, "validating "+b.Digest.String())
	}
	s.summarize(gen)
}

// MarkBuildFailed records a failed build; msg carries the compiler's diagnostics.
func (s *ApplicationStatus) MarkBuildFailed(gen int64, reason, msg string) {
	s.set(ConditionBuilt, metav1.ConditionFalse, gen, reason, msg)
	s.summarize(gen)
}

// MarkValidated records a module that passed validation.
func (s *ApplicationStatus) MarkValidated(gen int64, v ValidationStatus) {
	s.Validation = &v
	s.set(ConditionValidated, metav1.ConditionTrue, gen, ReasonValidationPassed,
		fmt.Sprintf("%s fits every target board", v.Digest))
	s.summarize(gen)
}

// MarkRejected records a module the validator refused, with its reasons.
func (s *ApplicationStatus) MarkRejected(gen int64, v ValidationStatus) {
	s.Validation = &v
	msg := "module rejected"
	if len(v.Reasons) > 0 {
		msg = "module rejected: " + strings.Join(v.Reasons, "; ")
	}
	s.set(ConditionValidated, metav1.ConditionFalse, gen, ReasonModuleRejected, msg)
	s.summarize(gen)
}

// MarkRunningSteps records a validated module on its way through spec.steps.
func (s *ApplicationStatus) MarkRunningSteps(gen int64, steps int) {
	s.set(ConditionRolledOut, metav1.ConditionUnknown, gen, ReasonRunningSteps,
		fmt.Sprintf("the module goes through %d extra pipeline steps (spec.steps) before the rollout", steps))
	s.summarize(gen)
}

// MarkStepFailed records an extra pipeline step that failed; msg names the step.
func (s *ApplicationStatus) MarkStepFailed(gen int64, msg string) {
	s.set(ConditionRolledOut, metav1.ConditionFalse, gen, ReasonStepFailed, msg)
	s.summarize(gen)
}

// MarkRollingOut records rollout progress.
func (s *ApplicationStatus) MarkRollingOut(gen int64, r RolloutStatus) {
	r.Progress = fmt.Sprintf("%d/%d", r.Succeeded, r.Targeted)
	s.Rollout = &r
	s.set(ConditionRolledOut, metav1.ConditionUnknown, gen, ReasonRollingOut,
		fmt.Sprintf("step %d of %d: %d of %d devices running %s, %d failed",
			r.Step+1, r.Steps, r.Succeeded, r.Targeted, r.Digest, r.Failed))
	s.summarize(gen)
}

// MarkRolloutPaused records a rollout held by the user or a Canary pause.
func (s *ApplicationStatus) MarkRolloutPaused(gen int64, msg string) {
	s.set(ConditionRolledOut, metav1.ConditionUnknown, gen, ReasonRolloutPaused, msg)
	s.summarize(gen)
}

// MarkRolloutWaiting records a rollout held by its policy (approval, schedule,
// maintenance window, rate); reason is one of the Reason* constants of the policy and msg
// says what it waits for. Waits for a person or a time window make the phase Paused.
func (s *ApplicationStatus) MarkRolloutWaiting(gen int64, r RolloutStatus, reason, msg string) {
	r.Progress = fmt.Sprintf("%d/%d", r.Succeeded, r.Targeted)
	s.Rollout = &r
	s.set(ConditionRolledOut, metav1.ConditionUnknown, gen, reason, msg)
	s.summarize(gen)
}

// MarkRolledOut records that every target device runs digest, which becomes the
// previous good digest for later rollbacks.
func (s *ApplicationStatus) MarkRolledOut(gen int64, r RolloutStatus) {
	r.Progress = fmt.Sprintf("%d/%d", r.Succeeded, r.Targeted)
	s.Rollout = &r
	s.PreviousGoodDigest = r.Digest
	s.set(ConditionRolledOut, metav1.ConditionTrue, gen, ReasonRolloutSucceeded,
		fmt.Sprintf("%d devices run %s", r.Succeeded, r.Digest))
	s.summarize(gen)
}

// MarkRolloutFailed records a rollout stopped by failures, aborted or rolled back;
// reason is one of ReasonRolloutFailed, ReasonRolledBack, ReasonRolloutAborted,
// ReasonScheduleEnded or ReasonCannotFinish.
func (s *ApplicationStatus) MarkRolloutFailed(gen int64, reason, msg string) {
	s.set(ConditionRolledOut, metav1.ConditionFalse, gen, reason, msg)
	s.summarize(gen)
}

// MarkNoTargets records that the selector matches no Device.
func (s *ApplicationStatus) MarkNoTargets(gen int64) {
	s.set(ConditionRolledOut, metav1.ConditionFalse, gen, ReasonNoTargets,
		"spec.selector matches no Device in this namespace; label Devices or change the selector")
	s.summarize(gen)
}

// MarkPipelineError records that the pipeline could not be reached or failed.
func (s *ApplicationStatus) MarkPipelineError(gen int64, msg string) {
	s.set(ConditionReady, metav1.ConditionFalse, gen, ReasonPipelineError, msg)
	s.Phase = ApplicationFailed
}

// summarize derives Ready and the phase from the other conditions.
func (s *ApplicationStatus) summarize(gen int64) {
	built := meta.FindStatusCondition(s.Conditions, ConditionBuilt)
	valid := meta.FindStatusCondition(s.Conditions, ConditionValidated)
	rolled := meta.FindStatusCondition(s.Conditions, ConditionRolledOut)
	for _, c := range []*metav1.Condition{built, valid, rolled} {
		if c != nil && c.Status == metav1.ConditionFalse {
			s.set(ConditionReady, metav1.ConditionFalse, gen, c.Reason, c.Message)
			s.Phase = ApplicationFailed
			return
		}
	}
	switch {
	case rolled != nil && rolled.Status == metav1.ConditionTrue:
		s.set(ConditionReady, metav1.ConditionTrue, gen, rolled.Reason, rolled.Message)
		s.Phase = ApplicationRunning
		return
	case rolled != nil && (rolled.Reason == ReasonRolloutPaused || rolled.Reason == ReasonWaitingForApproval ||
		rolled.Reason == ReasonWaitingForSchedule || rolled.Reason == ReasonOutsideMaintenanceWindow):
		s.Phase = ApplicationPaused
	case rolled != nil && rolled.Reason == ReasonRunningSteps:
		s.Phase = ApplicationValidating
	case valid != nil && valid.Status == metav1.ConditionTrue:
		s.Phase = ApplicationRollingOut
	case built != nil && built.Status == metav1.ConditionTrue:
		s.Phase = ApplicationValidating
	default:
		s.Phase = ApplicationBuilding
	}
	c := rolled
	switch s.Phase {
	case ApplicationValidating:
		c = valid
	case ApplicationBuilding:
		c = built
	}
	reason, msg := ReasonPending, "waiting for the pipeline"
	if c != nil {
		reason, msg = c.Reason, c.Message
	}
	s.set(ConditionReady, metav1.ConditionUnknown, gen, reason, msg)
}
