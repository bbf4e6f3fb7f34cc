package protocol

import (
	"fmt"
	"unicode/utf8"
)

// Error is both the Error message (type 15) and the error value this package
// returns for bad input, so a session can send a decoding failure straight
// back to its peer. Match it by code with errors.Is(err, CodeMalformed) or
// inspect it with errors.As.
type Error struct {
	// Code is the typed reason; required.
	Code ErrorCode `cbor:"1,keyasint"`
	// Message is a short human-readable phrase; optional.
	Message string `cbor:"2,keyasint,omitempty"`
	// Related is the type of the message that caused the error; optional.
	Related MessageType `cbor:"3,keyasint,omitempty"`
	// App names the application concerned; optional.
	App string `cbor:"4,keyasint,omitempty"`

	cause error
}

// Type returns TypeError.
func (*Error) Type() MessageType { return TypeError }

// Error formats the code, the related message type, the message and the
// local cause (which is never sent on the wire).
func (e *Error) Error() string {
	s := e.Code.String()
	if e.Related != 0 {
		s += " (" + e.Related.String() + ")"
	}
	if e.App != "" {
		s += " app " + e.App
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.cause != nil && e.cause.Error() != e.Message {
		s += ": " + e.cause.Error()
	}
	return s
}

// Unwrap returns the local cause of the error, if any.
func (e *Error) Unwrap() error { return e.cause }

// Is reports whether target is the ErrorCode of e.
func (e *Error) Is(target error) bool {
	c, ok := target.(ErrorCode)
	return ok && c == e.Code
}

// Validate checks the code and the lengths of the text fields.
func (e *Error) Validate() error {
	if e.Code == 0 {
		return invalid(TypeError, "code is zero")
	}
	if err := checkText(TypeError, "message", e.Message, 0, MaxErrorMessageLen); err != nil {
		return err
	}
	if e.App != "" {
		return checkAppName(TypeError, e.App)
	}
	return nil
}

// NewError returns an Error with a code, a related message type (0 for none)
// and a message truncated to MaxErrorMessageLen at a character boundary.
func NewError(code ErrorCode, related MessageType, msg string) *Error {
	return &Error{Code: code, Related: related, Message: truncate(msg, MaxErrorMessageLen)}
}

func newError(code ErrorCode, related MessageType, msg string, cause error) *Error {
	e := NewError(code, related, msg)
	e.cause = cause
	return e
}

func invalid(t MessageType, format string, args ...any) *Error {
	return NewError(CodeInvalidValue, t, fmt.Sprintf(format, args...))
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
