// Package attestation is the signed record that a module passed validation: an in-toto
// Statement about the module's digest, with a validation predicate, in a DSSE envelope
// signed with Ed25519. The validator writes one beside each module it passes; dispatch
// signs a deployment only after verifying it (docs/security.md).
package attestation

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/wasmbed/wasmbed/api/digest"
)

// Media and predicate types.
const (
	// PayloadType is the DSSE payload type of an in-toto Statement.
	PayloadType = "application/vnd.in-toto+json"
	// StatementType is the in-toto Statement version.
	StatementType = "https://in-toto.io/Statement/v1"
	// ValidationPredicate is the predicate type of a Wasmbed validation result.
	ValidationPredicate = "https://wasmbed.dev/attestations/validation/v1"
	// MediaType is the media type of a DSSE envelope (the artifact type of the OCI
	// referrer that carries it).
	MediaType = "application/vnd.dsse.envelope.v1+json"
	// MaxEnvelopeBytes bounds an envelope read from a store.
	MaxEnvelopeBytes = 64 << 10
)

// Validation is what the validator checked and found.
type Validation struct {
	// Boards are the boards the module was validated against.
	Boards []string `json:"boards"`
	// ABIVersion is the ABI version the module was checked against.
	ABIVersion int `json:"abiVersion"`
	// Passed is true when the module may run on every board listed.
	Passed bool `json:"passed"`
	// Time is when validation ran.
	Time time.Time `json:"time"`
}

// Subject names the module a statement is about.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// Statement is an in-toto Statement with a validation predicate.
type Statement struct {
	Type          string     `json:"_type"`
	Subject       []Subject  `json:"subject"`
	PredicateType string     `json:"predicateType"`
	Predicate     Validation `json:"predicate"`
}

// Envelope is a DSSE envelope.
type Envelope struct {
	PayloadType string      `json:"payloadType"`
	Payload     string      `json:"payload"`
	Signatures  []Signature `json:"signatures"`
}

// Signature is one DSSE signature.
type Signature struct {
	KeyID string `json:"keyid,omitempty"`
	Sig   string `json:"sig"`
}

// Signer signs DSSE's pre-authentication encoding of a payload.
type Signer interface {
	Sign(message []byte) ([]byte, error)
}

// NewStatement returns the statement that module d was validated with result v.
func NewStatement(d digest.Digest, v Validation) (Statement, error) {
	if err := d.Validate(); err != nil {
		return Statement{}, fmt.Errorf("attestation: %w", err)
	}
	return Statement{Type: StatementType, PredicateType: ValidationPredicate, Predicate: v,
		Subject: []Subject{{Name: "module", Digest: map[string]string{"sha256": d.Hex()}}}}, nil
}

// Sign returns the envelope of s signed by signer, as JSON.
func Sign(s Statement, signer Signer, keyID string) ([]byte, error) {
	payload, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("attestation: %w", err)
	}
	sig, err := signer.Sign(pae(PayloadType, payload))
	if err != nil {
		return nil, fmt.Errorf("attestation: sign: %w", err)
	}
	return json.Marshal(Envelope{PayloadType: PayloadType, Payload: base64.StdEncoding.EncodeToString(payload),
		Signatures: []Signature{{KeyID: keyID, Sig: base64.StdEncoding.EncodeToString(sig)}}})
}

// ErrNotValidated is wrapped by Verify's error when the envelope is well signed but
// does not say that d passed validation.
var ErrNotValidated = errors.New("module did not pass validation")

// Verify checks that envelope is signed by pub and says that the module d passed
// validation against ABI version abi, and returns the validation. Any other envelope,
// however well formed, is an error that names what is wrong.
func Verify(envelope []byte, pub ed25519.PublicKey, d digest.Digest, abi int) (Validation, error) {
	if len(envelope) > MaxEnvelopeBytes {
		return Validation{}, fmt.Errorf("attestation: envelope is over %d bytes", MaxEnvelopeBytes)
	}
	if len(pub) != ed25519.PublicKeySize {
		return Validation{}, errors.New("attestation: no validator key to verify with")
	}
	var env Envelope
	dec := json.NewDecoder(bytes.NewReader(envelope))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		return Validation{}, fmt.Errorf("attestation: envelope: %w", err)
	}
	if env.PayloadType != PayloadType {
		return Validation{}, fmt.Errorf("attestation: payload type %.60q, want %s", env.PayloadType, PayloadType)
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return Validation{}, fmt.Errorf("attestation: payload: %w", err)
	}
	signed := slices.ContainsFunc(env.Signatures, func(s Signature) bool {
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		return err == nil && len(sig) == ed25519.SignatureSize && ed25519.Verify(pub, pae(env.PayloadType, payload), sig)
	})
	if !signed {
		return Validation{}, errors.New("attestation: not signed by the validator's key")
	}
	var s Statement
	if err := json.Unmarshal(payload, &s); err != nil {
		return Validation{}, fmt.Errorf("attestation: statement: %w", err)
	}
	switch {
	case s.Type != StatementType:
		return Validation{}, fmt.Errorf("attestation: statement type %.60q, want %s", s.Type, StatementType)
	case s.PredicateType != ValidationPredicate:
		return Validation{}, fmt.Errorf("attestation: predicate type %.60q, want %s", s.PredicateType, ValidationPredicate)
	case len(s.Subject) != 1 || s.Subject[0].Digest["sha256"] != d.Hex() || d.Hex() == "":
		return Validation{}, fmt.Errorf("attestation: not about module %s", d)
	case !s.Predicate.Passed:
		return Validation{}, fmt.Errorf("attestation: %s: %w", d, ErrNotValidated)
	case s.Predicate.ABIVersion != abi:
		return Validation{}, fmt.Errorf("attestation: validated against ABI %d, not %d", s.Predicate.ABIVersion, abi)
	case len(s.Predicate.Boards) == 0:
		return Validation{}, errors.New("attestation: names no board")
	}
	return s.Predicate, nil
}

// pae is DSSE's pre-authentication encoding: what is signed.
func pae(payloadType string, payload []byte) []byte {
	var b bytes.Buffer
	b.WriteString("DSSEv1 ")
	b.WriteString(strconv.Itoa(len(payloadType)))
	b.WriteByte(' ')
	b.WriteString(payloadType)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(len(payload)))
	b.WriteByte(' ')
	b.Write(payload)
	return b.Bytes()
}
