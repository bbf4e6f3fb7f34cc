package pki

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// SignerName is the signerName of the Kubernetes CertificateSigningRequests that the
// operator signs with the platform CA.
const SignerName = "wasmbed.dev/device"

// ErrDenied is wrapped by Signer.Sign when the Approver refuses a request.
var ErrDenied = errors.New("signing denied")

// SignRequest is what an Approver decides on: the identity the caller wants in the
// certificate and the parsed, signature-checked CSR.
type SignRequest struct {
	Identity Identity
	CSR      *x509.CertificateRequest
}

// Approver is the policy of one enrollment path: the operator approves a request when a
// matching Device exists, the gateway when a bootstrap token is valid for the identity.
// Approve returns nil to allow signing and an error saying why not otherwise.
type Approver interface {
	Approve(ctx context.Context, req SignRequest) error
}

// ApproverFunc adapts a function to the Approver interface.
type ApproverFunc func(ctx context.Context, req SignRequest) error

// Approve calls f.
func (f ApproverFunc) Approve(ctx context.Context, req SignRequest) error { return f(ctx, req) }

// AllowAll approves every request; it is for callers that already decided, such as the
// CLI run by the CA's owner, and for tests.
var AllowAll Approver = ApproverFunc(func(context.Context, SignRequest) error { return nil })

// Signer turns device CSRs into client certificates signed by the platform CA. It is
// immutable and safe for concurrent use; With methods return a modified copy.
type Signer struct {
	ca       *CA
	approver Approver
	validity time.Duration
}

// NewSigner returns a signer for ca that asks approver before signing, issuing
// certificates valid for DefaultDeviceValidity.
func NewSigner(ca *CA, approver Approver) *Signer {
	return &Signer{ca: ca, approver: approver, validity: DefaultDeviceValidity}
}

// WithValidity returns a copy of s that issues certificates valid for d, e.g. from a
// CertificateSigningRequest's expirationSeconds. A certificate never outlives the CA.
func (s *Signer) WithValidity(d time.Duration) *Signer {
	c := *s
	c.validity = d
	return &c
}

// WithApprover returns a copy of s that asks a instead.
func (s *Signer) WithApprover(a Approver) *Signer {
	c := *s
	c.approver = a
	return &c
}

// Sign checks csrPEM (a PEM "CERTIFICATE REQUEST" with an ECDSA P-256 key and a valid
// self-signature), asks the Approver, and returns a PEM client certificate for id. The
// identity always comes from id, never from the CSR's subject or SANs.
func (s *Signer) Sign(ctx context.Context, csrPEM []byte, id Identity) ([]byte, error) {
	if s == nil || s.ca == nil {
		return nil, errors.New("sign: signer has no ca")
	}
	if s.approver == nil {
		return nil, errors.New("sign: signer has no approver")
	}
	if s.validity <= 0 {
		return nil, fmt.Errorf("sign: validity %v is not positive", s.validity)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	if err := id.Validate(); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	csr, err := ParseCSR(csrPEM)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	if err := s.approver.Approve(ctx, SignRequest{Identity: id, CSR: csr}); err != nil {
		return nil, fmt.Errorf("sign %s: %w: %w", id, ErrDenied, err)
	}
	der, err := s.ca.issue(deviceTemplate(id), csr.PublicKey, s.validity)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", id, err)
	}
	return pemBlock("CERTIFICATE", der), nil
}

// ParseCSR parses a PEM certificate request, checks its signature and that its key is
// ECDSA P-256.
func ParseCSR(csrPEM []byte) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode(csrPEM)
	if block == nil {
		return nil, errors.New("no pem certificate request found")
	}
	if block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
		return nil, fmt.Errorf("pem block is %q, want CERTIFICATE REQUEST", block.Type)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate request: %w", err)
	}
	pub, ok := csr.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("certificate request key is %s, want ecdsa p-256", csr.PublicKeyAlgorithm)
	}
	if pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("certificate request key is ecdsa %s, want p-256", pub.Curve.Params().Name)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate request signature: %w", err)
	}
	return csr, nil
}

// NewCSR returns a PEM certificate request for id signed by key, as a device (real or
// virtual) sends it to enroll. The subject is informative only: the signer sets the
// identity.
func NewCSR(key *ecdsa.PrivateKey, id Identity) ([]byte, error) {
	tmpl := &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: id.String()},
	}
	if id.Validate() == nil {
		tmpl.URIs = append(tmpl.URIs, id.URI())
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("create certificate request: %w", err)
	}
	return pemBlock("CERTIFICATE REQUEST", der), nil
}
