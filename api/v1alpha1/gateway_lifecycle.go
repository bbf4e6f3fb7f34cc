package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MarkAvailable records serving gateway pods reachable at endpoint.
func (s *GatewayStatus) MarkAvailable(gen int64, endpoint string) {
	s.Endpoint = endpoint
	for _, t := range []string{ConditionAvailable, ConditionReady} {
		meta.SetStatusCondition(&s.Conditions, metav1.Condition{Type: t, Status: metav1.ConditionTrue,
			ObservedGeneration: gen, Reason: ReasonDeploymentReady, Message: "serving at " + endpoint})
	}
}

// MarkUnavailable records a gateway that is not serving yet, with why.
func (s *GatewayStatus) MarkUnavailable(gen int64, why string) {
	for _, t := range []string{ConditionAvailable, ConditionReady} {
		meta.SetStatusCondition(&s.Conditions, metav1.Condition{Type: t, Status: metav1.ConditionFalse,
			ObservedGeneration: gen, Reason: ReasonDeploymentNotReady, Message: why})
	}
}
