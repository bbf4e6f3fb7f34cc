package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/wasmbed/wasmbed/api/digest"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/uuid"
)

// Payload is the data of a Wasmbed event. Validate reports the first missing or
// malformed field.
type Payload interface {
	Validate() error
}

// payloads maps each type to a constructor of its payload.
var payloads = map[Type]func() Payload{
	BuildRequested:       func() Payload { return &BuildRequestedData{} },
	ModuleBuilt:          func() Payload { return &ModuleBuiltData{} },
	BuildFailed:          func() Payload { return &BuildFailedData{} },
	ModuleValidated:      func() Payload { return &ModuleValidatedData{} },
	ModuleRejected:       func() Payload { return &ModuleRejectedData{} },
	RolloutRequested:     func() Payload { return &RolloutRequestedData{} },
	DeploymentRequested:  func() Payload { return &DeploymentRequestedData{} },
	DeploymentDispatched: func() Payload { return &DeploymentDispatchedData{} },
	DeploymentSucceeded:  func() Payload { return &DeploymentResultData{} },
	DeploymentFailed:     func() Payload { return &DeploymentResultData{} },
	DeploymentSummarized: func() Payload { return &DeploymentSummaryData{} },
	DeviceConnected:      func() Payload { return &DeviceConnectedData{} },
	DeviceDisconnected:   func() Payload { return &DeviceDisconnectedData{} },
	DeviceSeen:           func() Payload { return &DeviceSeenData{} },
	DeviceTelemetry:      func() Payload { return &DeviceTelemetryData{} },
}

// Types returns every event type of the contract.
func Types() []Type {
	out := make([]Type, 0, len(payloads))
	for t := range payloads {
		out = append(out, t)
	}
	return out
}

// PayloadFor returns an empty payload of type t, or false for a type outside the contract.
func PayloadFor(t Type) (Payload, bool) {
	f, ok := payloads[t]
	if !ok {
		return nil, false
	}
	return f(), true
}

// BadEventError is an event that breaks the contract: wrong type, missing or malformed
// data. Functions answer it with a 4xx status so the broker does not retry.
//
//	var bad *events.BadEventError
//	if errors.As(err, &bad) { /* reply 400 with bad.Error() */ }
type BadEventError struct {
	// Type is the event's type attribute.
	Type string
	// Reason says what is wrong.
	Reason string
}

func (e *BadEventError) Error() string {
	if e.Type == "" {
		return "bad event: " + e.Reason
	}
	return fmt.Sprintf("bad %s event: %s", e.Type, e.Reason)
}

// New builds a CloudEvent of type t with a fresh id, the given source and subject, data
// encoded as JSON and dataschema naming the payload's schema. It refuses data that does
// not validate.
func New(t Type, source, subject string, data Payload) (cloudevents.Event, error) {
	if err := data.Validate(); err != nil {
		return cloudevents.Event{}, fmt.Errorf("new %s event: %w", t, err)
	}
	e := cloudevents.NewEvent()
	e.SetID(uuid.NewString())
	e.SetTime(time.Now()) // when it happened: consumers order reports by it
	e.SetType(string(t))
	e.SetSource(source)
	e.SetSubject(subject)
	e.SetDataSchema(SchemaID(t))
	if ns, _, ok := strings.Cut(subject, "/"); ok {
		e.SetExtension(ExtNamespace, ns)
	}
	if err := e.SetData(cloudevents.ApplicationJSON, data); err != nil {
		return cloudevents.Event{}, fmt.Errorf("new %s event: encode data: %w", t, err)
	}
	return e, nil
}

// Decode checks that e is one of the wanted types (any contract type when none is
// given), decodes its JSON data and validates it. Contract violations are a
// *BadEventError.
func Decode(e cloudevents.Event, want ...Type) (Payload, error) {
	t := Type(e.Type())
	if len(want) > 0 {
		ok := false
		for _, w := range want {
			ok = ok || w == t
		}
		if !ok {
			return nil, &BadEventError{Type: e.Type(), Reason: fmt.Sprintf("this endpoint accepts %s", joinTypes(want))}
		}
	}
	p, ok := PayloadFor(t)
	if !ok {
		return nil, &BadEventError{Type: e.Type(), Reason: "unknown event type"}
	}
	if ds := e.DataSchema(); ds != "" && ds != SchemaID(t) {
		return nil, &BadEventError{Type: e.Type(), Reason: fmt.Sprintf("dataschema %q is not this type's schema %s", ds, SchemaID(t))}
	}
	if ct := e.DataContentType(); ct != "" && !strings.HasPrefix(ct, cloudevents.ApplicationJSON) {
		return nil, &BadEventError{Type: e.Type(), Reason: fmt.Sprintf("datacontenttype %q, want application/json", ct)}
	}
	if len(bytes.TrimSpace(e.Data())) == 0 {
		return nil, &BadEventError{Type: e.Type(), Reason: "no data"}
	}
	if err := json.Unmarshal(e.Data(), p); err != nil {
		return nil, &BadEventError{Type: e.Type(), Reason: "data: " + jsonReason(err)}
	}
	if err := p.Validate(); err != nil {
		return nil, &BadEventError{Type: e.Type(), Reason: err.Error()}
	}
	return p, nil
}

// DecodeAs decodes e (which must be of one of the wanted types) into a payload of type T.
func DecodeAs[T Payload](e cloudevents.Event, want ...Type) (T, error) {
	var zero T
	p, err := Decode(e, want...)
	if err != nil {
		return zero, err
	}
	v, ok := p.(T)
	if !ok {
		return zero, &BadEventError{Type: e.Type(), Reason: fmt.Sprintf("payload is %T, not %T", p, zero)}
	}
	return v, nil
}

func joinTypes(ts []Type) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = string(t)
	}
	return strings.Join(s, " or ")
}

func jsonReason(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q must be %s, not %s", te.Field, te.Type, te.Value)
	}
	return err.Error()
}

// Field checks --------------------------------------------------------------------------

var (
	dnsLabel  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dnsSub    = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)
	languages = map[string]bool{"c": true, "assemblyscript": true, "wat": true, "rust": true}
)

func checkName(field, v string) error {
	if v == "" {
		return fmt.Errorf("%s is required", field)
	}
	if len(v) > 253 || !dnsSub.MatchString(v) {
		return fmt.Errorf("%s %q is not a valid Kubernetes name", field, v)
	}
	return nil
}

func checkNamespace(field, v string) error {
	if v == "" {
		return fmt.Errorf("%s is required", field)
	}
	if len(v) > 63 || !dnsLabel.MatchString(v) {
		return fmt.Errorf("%s %q is not a valid namespace", field, v)
	}
	return nil
}

// CheckDigest reports whether d is "sha256:" followed by 64 lower-case hex digits.
func CheckDigest(field string, d digest.Digest) error {
	if d == "" {
		return fmt.Errorf("%s is required", field)
	}
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	return nil
}

func required(field, v string) error {
	if v == "" {
		return fmt.Errorf("%s is required", field)
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
