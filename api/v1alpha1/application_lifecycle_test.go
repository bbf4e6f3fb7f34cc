package v1alpha1

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestLifecycleOrderAndSummary(t *testing.T) {
	const d = "sha256:aa"
	build := BuildStatus{Digest: d, Size: 10}
	valid := ValidationStatus{Digest: d, Passed: true}
	cases := []struct {
		name      string
		steps     func(s *ApplicationStatus)
		phase     ApplicationPhase
		ready     metav1.ConditionStatus
		validated metav1.ConditionStatus
	}{
		{"built then validated", func(s *ApplicationStatus) { s.MarkBuilt(1, build); s.MarkValidated(1, valid) }, ApplicationRollingOut, metav1.ConditionUnknown, metav1.ConditionTrue},
		{"validated before built (other trigger)", func(s *ApplicationStatus) { s.MarkValidated(1, valid); s.MarkBuilt(1, build) }, ApplicationRollingOut, metav1.ConditionUnknown, metav1.ConditionTrue},
		{"rejected before built", func(s *ApplicationStatus) {
			s.MarkRejected(1, ValidationStatus{Digest: d, Reasons: []string{"too big"}})
			s.MarkBuilt(1, build)
		}, ApplicationFailed, metav1.ConditionFalse, metav1.ConditionFalse},
		{"build failed", func(s *ApplicationStatus) { s.MarkBuildFailed(1, ReasonBuildFailed, "main.c:1:1: error") }, ApplicationFailed, metav1.ConditionFalse, metav1.ConditionUnknown},
		{"rolled out", func(s *ApplicationStatus) {
			s.MarkBuilt(1, build)
			s.MarkValidated(1, valid)
			s.MarkRolledOut(1, RolloutStatus{Digest: d, Succeeded: 3, Targeted: 3})
		}, ApplicationRunning, metav1.ConditionTrue, metav1.ConditionTrue},
		{"paused", func(s *ApplicationStatus) {
			s.MarkBuilt(1, build)
			s.MarkValidated(1, valid)
			s.MarkRolloutPaused(1, "held")
		}, ApplicationPaused, metav1.ConditionUnknown, metav1.ConditionTrue},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s ApplicationStatus
			s.InitializeConditions(1)
			tc.steps(&s)
			if s.Phase != tc.phase {
				t.Errorf("phase = %s, want %s", s.Phase, tc.phase)
			}
			if r := meta.FindStatusCondition(s.Conditions, ConditionReady); r.Status != tc.ready {
				t.Errorf("Ready = %s (%s), want %s", r.Status, r.Reason, tc.ready)
			}
			if v := meta.FindStatusCondition(s.Conditions, ConditionValidated); v.Status != tc.validated {
				t.Errorf("Validated = %s, want %s", v.Status, tc.validated)
			}
		})
	}
}
