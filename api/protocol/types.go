package protocol

import "strconv"

// MessageType identifies a message; it is the value of key 0 in every body.
type MessageType uint8

// Message types. Zero is reserved and never valid.
const (
	TypeHello        MessageType = 1
	TypeWelcome      MessageType = 2
	TypeHeartbeat    MessageType = 3
	TypeHeartbeatAck MessageType = 4
	TypeDeploy       MessageType = 5
	TypeDeployAck    MessageType = 6
	TypeChunk        MessageType = 7
	TypeChunkAck     MessageType = 8
	TypeStart        MessageType = 9
	TypeStop         MessageType = 10
	TypeRemove       MessageType = 11
	TypeAppStatus    MessageType = 12
	TypeTelemetry    MessageType = 13
	TypeLog          MessageType = 14
	TypeError        MessageType = 15
)

var typeNames = [...]string{
	TypeHello:        "hello",
	TypeWelcome:      "welcome",
	TypeHeartbeat:    "heartbeat",
	TypeHeartbeatAck: "heartbeat_ack",
	TypeDeploy:       "deploy",
	TypeDeployAck:    "deploy_ack",
	TypeChunk:        "chunk",
	TypeChunkAck:     "chunk_ack",
	TypeStart:        "start",
	TypeStop:         "stop",
	TypeRemove:       "remove",
	TypeAppStatus:    "app_status",
	TypeTelemetry:    "telemetry",
	TypeLog:          "log",
	TypeError:        "error",
}

// String returns the message type's name as in docs/protocol.md
// ("heartbeat_ack"), or "type(N)" for an unknown value.
func (t MessageType) String() string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}

// Known reports whether t is a message type of this protocol version.
func (t MessageType) Known() bool {
	return t >= TypeHello && t <= TypeError
}

// Sender says which side may send a message type.
type Sender uint8

// Senders of messages.
const (
	SenderNone Sender = iota
	SenderDevice
	SenderGateway
	SenderBoth
)

// String returns "device", "gateway", "both" or "none".
func (s Sender) String() string {
	switch s {
	case SenderDevice:
		return "device"
	case SenderGateway:
		return "gateway"
	case SenderBoth:
		return "both"
	}
	return "none"
}

// Sender returns the side allowed to send messages of type t; a receiver
// answers a message from the wrong side with CodeUnexpectedMessage.
func (t MessageType) Sender() Sender {
	switch t {
	case TypeHello, TypeHeartbeat, TypeDeployAck, TypeChunkAck, TypeAppStatus, TypeTelemetry, TypeLog:
		return SenderDevice
	case TypeWelcome, TypeHeartbeatAck, TypeDeploy, TypeChunk, TypeStart, TypeStop, TypeRemove:
		return SenderGateway
	case TypeError:
		return SenderBoth
	}
	return SenderNone
}

// AppState is the life-cycle state of an application on a device.
type AppState uint8

// Application states. Zero is reserved and never valid.
const (
	// StateReceiving: a transfer has started and is incomplete.
	StateReceiving AppState = 1
	// StateReceived: the module is complete and verified, and not running.
	StateReceived AppState = 2
	// StateRunning: the host calls the module's loop.
	StateRunning AppState = 3
	// StateStopped: stopped by a Stop message.
	StateStopped AppState = 4
	// StateExited: loop returned a negative value.
	StateExited AppState = 5
	// StateFailed: a trap, a failed verification or a failed instantiation.
	StateFailed AppState = 6
	// StateRemoved: the module was deleted by a Remove message.
	StateRemoved AppState = 7
)

var stateNames = [...]string{
	StateReceiving: "Receiving",
	StateReceived:  "Received",
	StateRunning:   "Running",
	StateStopped:   "Stopped",
	StateExited:    "Exited",
	StateFailed:    "Failed",
	StateRemoved:   "Removed",
}

// String returns the state's name, or "state(N)" for an unknown value.
func (s AppState) String() string {
	if int(s) < len(stateNames) && stateNames[s] != "" {
		return stateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// Valid reports whether s is a state of this protocol version.
func (s AppState) Valid() bool {
	return s >= StateReceiving && s <= StateRemoved
}

// LogLevel is the severity of a Log message; the values match the ABI's log.
type LogLevel uint8

// Log levels.
const (
	LevelDebug LogLevel = 0
	LevelInfo  LogLevel = 1
	LevelWarn  LogLevel = 2
	LevelError LogLevel = 3
)

// String returns "debug", "info", "warn", "error" or "level(N)".
func (l LogLevel) String() string {
	switch l {
	case LevelDebug:
		return "debug"
	case LevelInfo:
		return "info"
	case LevelWarn:
		return "warn"
	case LevelError:
		return "error"
	}
	return "level(" + strconv.Itoa(int(l)) + ")"
}

// ErrorCode is the typed reason carried by an Error message and by every error
// this package returns for bad input. An ErrorCode is itself an error so that
// errors.Is(err, CodeMalformed) works on any returned error.
type ErrorCode uint16

// Error codes. Zero is reserved and never valid. Receivers treat a code they
// do not know like CodeInternal.
const (
	// CodeMalformed: the body is not a well-formed, strictly valid CBOR map of
	// the expected shape (bad CBOR, duplicate key, wrong type, missing key).
	CodeMalformed ErrorCode = 1
	// CodeUnsupportedVersion: the frame's version byte is not Version.
	CodeUnsupportedVersion ErrorCode = 2
	// CodeFrameTooLarge: the frame's length exceeds the receiver's limit.
	CodeFrameTooLarge ErrorCode = 3
	// CodeUnknownMessage: key 0 holds a message type the receiver does not know.
	CodeUnknownMessage ErrorCode = 4
	// CodeUnexpectedMessage: a valid message at the wrong time or from the
	// wrong side (for example anything before Hello).
	CodeUnexpectedMessage ErrorCode = 5
	// CodeInvalidValue: a field is well typed but out of range (length, enum).
	CodeInvalidValue ErrorCode = 6
	// CodeUnauthorized: the claimed identity does not match the certificate.
	CodeUnauthorized ErrorCode = 7
	// CodeNotFound: the named application is not on the device.
	CodeNotFound ErrorCode = 8
	// CodeBadState: the command does not apply in the application's state.
	CodeBadState ErrorCode = 9
	// CodeNoSpace: the device cannot store or run the module.
	CodeNoSpace ErrorCode = 10
	// CodeTooLarge: the module exceeds the device's max module size.
	CodeTooLarge ErrorCode = 11
	// CodeBadOffset: a chunk's offset or length is not the one expected.
	CodeBadOffset ErrorCode = 12
	// CodeDigestMismatch: the received module's sha256 differs from Deploy's.
	CodeDigestMismatch ErrorCode = 13
	// CodeBadSignature: the module's ed25519 signature does not verify.
	CodeBadSignature ErrorCode = 14
	// CodeBusy: the receiver cannot take the request now; retry later.
	CodeBusy ErrorCode = 15
	// CodeHeartbeatTimeout: the peer was silent longer than the timeout.
	CodeHeartbeatTimeout ErrorCode = 16
	// CodeInternal: an unexpected failure in the sender.
	CodeInternal ErrorCode = 17
	// CodeGoingAway: the sender is shutting down and closes the session.
	CodeGoingAway ErrorCode = 18
)

var codeNames = [...]string{
	CodeMalformed:          "malformed",
	CodeUnsupportedVersion: "unsupported_version",
	CodeFrameTooLarge:      "frame_too_large",
	CodeUnknownMessage:     "unknown_message",
	CodeUnexpectedMessage:  "unexpected_message",
	CodeInvalidValue:       "invalid_value",
	CodeUnauthorized:       "unauthorized",
	CodeNotFound:           "not_found",
	CodeBadState:           "bad_state",
	CodeNoSpace:            "no_space",
	CodeTooLarge:           "too_large",
	CodeBadOffset:          "bad_offset",
	CodeDigestMismatch:     "digest_mismatch",
	CodeBadSignature:       "bad_signature",
	CodeBusy:               "busy",
	CodeHeartbeatTimeout:   "heartbeat_timeout",
	CodeInternal:           "internal",
	CodeGoingAway:          "going_away",
}

// String returns the code's name as in docs/protocol.md ("frame_too_large"),
// or "code(N)" for an unknown value.
func (c ErrorCode) String() string {
	if int(c) < len(codeNames) && codeNames[c] != "" {
		return codeNames[c]
	}
	return "code(" + strconv.Itoa(int(c)) + ")"
}

// Error returns the same text as String, so that a code can be matched with
// errors.Is.
func (c ErrorCode) Error() string { return c.String() }

// Fatal reports whether this code always ends the session: framing errors
// leave the byte stream unusable, and the others end the session by
// definition. Before Welcome every error ends the session.
func (c ErrorCode) Fatal() bool {
	switch c {
	case CodeUnsupportedVersion, CodeFrameTooLarge, CodeUnauthorized, CodeHeartbeatTimeout, CodeGoingAway:
		return true
	}
	return false
}
