package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The Mark helpers are the only code that changes a Device's conditions and phase.

func (s *DeviceStatus) set(typ string, status metav1.ConditionStatus, gen int64, reason, msg string) {
	meta.SetStatusCondition(&s.Conditions, metav1.Condition{
		Type: typ, Status: status, ObservedGeneration: gen, Reason: reason, Message: msg,
	})
}

// MarkAwaitingCertificate records a Device without a certificate yet.
func (s *DeviceStatus) MarkAwaitingCertificate(gen int64) {
	s.set(ConditionEnrolled, metav1.ConditionFalse, gen, ReasonAwaitingCSR,
		"waiting for the device's CertificateSigningRequest (signer wasmbed.dev/device)")
	s.summarize(gen)
}

// MarkEnrolled records a signed certificate that expires at notAfter.
func (s *DeviceStatus) MarkEnrolled(gen int64, notAfter metav1.Time) {
	s.CertificateNotAfter = &notAfter
	s.set(ConditionEnrolled, metav1.ConditionTrue, gen, ReasonCertificateIssued, "certificate issued")
	s.summarize(gen)
}

// RecordKey records the key the device's certificate was issued for ("sha256:<hex>"
// of its SubjectPublicKeyInfo) and, when notAfter is not nil, when that certificate
// expires. It changes no condition: the Device reconciler marks Enrolled.
func (s *DeviceStatus) RecordKey(keyHash string, notAfter *metav1.Time) {
	s.PublicKeyHash = keyHash
	if notAfter != nil {
		s.CertificateNotAfter = notAfter
	}
}

// MarkKeyRevoked records a Device whose certificate is for a key that is not, or no
// longer, its recorded key: gateways with the Kubernetes registry refuse it.
func (s *DeviceStatus) MarkKeyRevoked(gen int64, msg string) {
	s.set(ConditionEnrolled, metav1.ConditionFalse, gen, ReasonKeyRevoked, msg)
	s.summarize(gen)
}

// MarkReenrollmentRequested records a Device marked for re-enrollment: its current key
// is refused until a certificate for a new key is issued.
func (s *DeviceStatus) MarkReenrollmentRequested(gen int64) {
	s.set(ConditionEnrolled, metav1.ConditionFalse, gen, ReasonReenrollmentRequested,
		"annotation "+DeviceReenrollAnnotation+" is set: gateways refuse the current key; the next CertificateSigningRequest for a new key is approved")
	s.summarize(gen)
}

// MarkConnected records a live session on gateway at time at.
func (s *DeviceStatus) MarkConnected(gen int64, gateway string, at metav1.Time) {
	s.Gateway = gateway
	s.LastSeen = &at
	s.set(ConditionConnected, metav1.ConditionTrue, gen, ReasonSessionOpen, "session open on gateway "+gateway)
	s.summarize(gen)
}

// MarkDisconnected records the end of a session, with the gateway's reason.
func (s *DeviceStatus) MarkDisconnected(gen int64, at metav1.Time, why string) {
	s.LastSeen = &at
	s.set(ConditionConnected, metav1.ConditionFalse, gen, ReasonSessionClosed, why)
	s.summarize(gen)
}

// MarkDisabled records a Device refused by spec.disabled.
func (s *DeviceStatus) MarkDisabled(gen int64) {
	s.set(ConditionConnected, metav1.ConditionFalse, gen, ReasonDisabled,
		"spec.disabled is true: gateways refuse this device")
	s.summarize(gen)
}

// MarkEnabled undoes MarkDisabled once spec.disabled is cleared: the device stays
// Disconnected until a gateway reports a new session. It changes nothing otherwise.
func (s *DeviceStatus) MarkEnabled(gen int64) {
	if c := meta.FindStatusCondition(s.Conditions, ConditionConnected); c == nil || c.Reason != ReasonDisabled {
		return
	}
	s.set(ConditionConnected, metav1.ConditionFalse, gen, ReasonReenabled,
		"spec.disabled was cleared; waiting for the device to connect")
	s.summarize(gen)
}

// summarize derives the phase and Ready from Enrolled and Connected.
func (s *DeviceStatus) summarize(gen int64) {
	enrolled := meta.IsStatusConditionTrue(s.Conditions, ConditionEnrolled)
	conn := meta.FindStatusCondition(s.Conditions, ConditionConnected)
	switch {
	case conn != nil && conn.Status == metav1.ConditionTrue:
		s.Phase = DeviceConnected
		s.set(ConditionReady, metav1.ConditionTrue, gen, conn.Reason, conn.Message)
	case conn != nil && conn.Status == metav1.ConditionFalse:
		s.Phase = DeviceDisconnected
		s.set(ConditionReady, metav1.ConditionFalse, gen, conn.Reason, conn.Message)
	case enrolled:
		s.Phase = DeviceEnrolled
		s.set(ConditionReady, metav1.ConditionFalse, gen, ReasonNeverConnected, "enrolled; the device has not connected yet")
	default:
		s.Phase = DevicePending
		reason, msg := ReasonAwaitingCSR, "the device has no certificate yet"
		if c := meta.FindStatusCondition(s.Conditions, ConditionEnrolled); c != nil && c.Status == metav1.ConditionFalse && c.Reason != ReasonAwaitingCSR {
			reason, msg = c.Reason, c.Message // revoked, or waiting to re-enroll
		}
		s.set(ConditionReady, metav1.ConditionFalse, gen, reason, msg)
	}
}
