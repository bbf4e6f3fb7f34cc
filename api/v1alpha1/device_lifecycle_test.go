package v1alpha1

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestDeviceEnrollmentSummary: a Device whose key is revoked or that waits to re-enroll
// is Pending, and Ready says why rather than "no certificate yet".
func TestDeviceEnrollmentSummary(t *testing.T) {
	notAfter := metav1.NewTime(time.Now().Add(time.Hour))
	const key = "sha256:aa"
	for _, tc := range []struct {
		name   string
		steps  func(s *DeviceStatus)
		phase  DevicePhase
		reason string
	}{
		{"new", func(s *DeviceStatus) { s.MarkAwaitingCertificate(1) }, DevicePending, ReasonAwaitingCSR},
		{"enrolled", func(s *DeviceStatus) { s.RecordKey(key, &notAfter); s.MarkEnrolled(1, notAfter) }, DeviceEnrolled, ReasonNeverConnected},
		{"key revoked", func(s *DeviceStatus) {
			s.MarkEnrolled(1, notAfter)
			s.MarkKeyRevoked(1, "cleared")
		}, DevicePending, ReasonKeyRevoked},
		{"re-enrollment requested", func(s *DeviceStatus) {
			s.MarkEnrolled(1, notAfter)
			s.MarkReenrollmentRequested(1)
		}, DevicePending, ReasonReenrollmentRequested},
		{"re-enrolled", func(s *DeviceStatus) {
			s.MarkReenrollmentRequested(1)
			s.MarkEnrolled(1, notAfter)
		}, DeviceEnrolled, ReasonNeverConnected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s DeviceStatus
			tc.steps(&s)
			ready := meta.FindStatusCondition(s.Conditions, ConditionReady)
			if s.Phase != tc.phase || ready == nil || ready.Reason != tc.reason {
				t.Fatalf("phase %s, Ready %+v; want %s and reason %s", s.Phase, ready, tc.phase, tc.reason)
			}
		})
	}
	var s DeviceStatus
	s.RecordKey(key, &notAfter)
	s.RecordKey("", nil)
	if s.PublicKeyHash != "" || s.CertificateNotAfter == nil {
		t.Fatalf("RecordKey(\"\", nil) = %q, %v; want the key cleared and the expiry kept", s.PublicKeyHash, s.CertificateNotAfter)
	}
}
