package gateway

import "github.com/wasmbed/wasmbed/api/protocol"

// CloseReason says why a session (or a connection that never became one) ended. It is
// the label of the close metrics, the reason of device.disconnected events and an error.
type CloseReason string

// Close reasons.
const (
	// ReasonClientClosed: the device closed the connection between frames.
	ReasonClientClosed CloseReason = "client-closed"
	// ReasonTruncated: the connection ended inside a frame.
	ReasonTruncated CloseReason = "truncated"
	// ReasonReadError: reading failed for another reason (reset, TLS alert).
	ReasonReadError CloseReason = "read-error"
	// ReasonWriteError: writing failed (reset, broken pipe).
	ReasonWriteError CloseReason = "write-error"
	// ReasonSlowConsumer: the writer queue overflowed or a write timed out.
	ReasonSlowConsumer CloseReason = "slow-consumer"
	// ReasonHeartbeatTimeout: nothing arrived for the heartbeat timeout.
	ReasonHeartbeatTimeout CloseReason = "heartbeat-timeout"
	// ReasonHelloTimeout: no Hello arrived within the hello timeout.
	ReasonHelloTimeout CloseReason = "hello-timeout"
	// ReasonReplaced: the device opened a newer session.
	ReasonReplaced CloseReason = "replaced"
	// ReasonRevoked: the registry disabled or removed the device during its session.
	ReasonRevoked CloseReason = "revoked"
	// ReasonNotAllowed: the registry refused the device when it connected.
	ReasonNotAllowed CloseReason = "not-allowed"
	// ReasonRegistryUnavailable: the registry could not tell whether the device may
	// connect (it failed, or did not answer in time), so it may not: the gateway
	// fails closed. The device is told busy and retries later.
	ReasonRegistryUnavailable CloseReason = "registry-unavailable"
	// ReasonUnauthorized: the Hello named another device than the certificate.
	ReasonUnauthorized CloseReason = "unauthorized"
	// ReasonMaxSessions: the gateway already holds its maximum number of sessions
	// (connections before their Hello included); refused before the handshake.
	ReasonMaxSessions CloseReason = "max-sessions"
	// ReasonMaxPending: as many connections as allowed are between accept and Hello;
	// refused before the handshake.
	ReasonMaxPending CloseReason = "max-pending"
	// ReasonSourcePending: the connection's source address has as many connections
	// between accept and Hello as allowed; refused before the handshake.
	ReasonSourcePending CloseReason = "source-pending"
	// ReasonSourceRate: the connection's source address opens connections faster than
	// its rate allows; refused before the handshake.
	ReasonSourceRate CloseReason = "source-rate"
	// ReasonGoingAway: the gateway is shutting down.
	ReasonGoingAway CloseReason = "going-away"
	// ReasonUnsupportedVersion: a frame had another protocol version (garbage bytes).
	ReasonUnsupportedVersion CloseReason = "unsupported-version"
	// ReasonFrameTooLarge: a frame header announced a body over the limit.
	ReasonFrameTooLarge CloseReason = "frame-too-large"
	// ReasonMalformed: an empty frame, or an undecodable frame before Welcome.
	ReasonMalformed CloseReason = "malformed"
	// ReasonUnknownMessage: an unknown message type before Welcome.
	ReasonUnknownMessage CloseReason = "unknown-message"
	// ReasonUnexpectedMessage: a first frame that is not Hello.
	ReasonUnexpectedMessage CloseReason = "unexpected-message"
	// ReasonInvalidHello: a Hello with a field out of range.
	ReasonInvalidHello CloseReason = "invalid-hello"
	// ReasonHandshakeFailed: the TLS handshake failed (HandshakeReason says why).
	ReasonHandshakeFailed CloseReason = "handshake-failed"
)

// Error returns the reason's text, so that a CloseReason can be a context cause.
func (r CloseReason) Error() string { return string(r) }

// code is the protocol error the gateway sends (best effort) before closing, or 0.
func (r CloseReason) code() protocol.ErrorCode {
	switch r {
	case ReasonHeartbeatTimeout, ReasonHelloTimeout:
		return protocol.CodeHeartbeatTimeout
	case ReasonGoingAway, ReasonReplaced, ReasonMaxSessions:
		return protocol.CodeGoingAway
	case ReasonRevoked, ReasonNotAllowed, ReasonUnauthorized:
		return protocol.CodeUnauthorized
	case ReasonRegistryUnavailable:
		return protocol.CodeBusy
	}
	return 0
}

// reasonForCode maps a fatal protocol error found while reading to a close reason.
func reasonForCode(c protocol.ErrorCode) CloseReason {
	switch c {
	case protocol.CodeUnsupportedVersion:
		return ReasonUnsupportedVersion
	case protocol.CodeFrameTooLarge:
		return ReasonFrameTooLarge
	case protocol.CodeUnknownMessage:
		return ReasonUnknownMessage
	case protocol.CodeUnexpectedMessage:
		return ReasonUnexpectedMessage
	case protocol.CodeInvalidValue:
		return ReasonInvalidHello
	}
	return ReasonMalformed
}

// HandshakeReason says why a TLS handshake failed; it labels the handshake metric.
type HandshakeReason string

// Handshake outcomes.
const (
	HandshakeOK               HandshakeReason = "ok"
	HandshakeNoClientCert     HandshakeReason = "no-client-cert"
	HandshakeUnknownAuthority HandshakeReason = "unknown-authority"
	HandshakeExpired          HandshakeReason = "expired"
	HandshakeBadIdentity      HandshakeReason = "bad-identity"
	HandshakeTimeout          HandshakeReason = "timeout"
	HandshakeVersion          HandshakeReason = "protocol-version"
	HandshakeOther            HandshakeReason = "other"
)

// Error returns the reason's text.
func (r HandshakeReason) Error() string { return string(r) }
