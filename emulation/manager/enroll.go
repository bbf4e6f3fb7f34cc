package manager

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wasmbed/wasmbed/internal/pki"
)

// Defaults of EnrollConfig.
const (
	// DefaultCertValidity is the lifetime a board's certificate request asks for. It is
	// short because the key lives only in the board manager's memory: after a restart,
	// a Device still holding a certificate for the lost key is refused a new key until
	// that certificate expires or the Device is marked for re-enrollment.
	DefaultCertValidity = time.Hour
	// DefaultEnrollTimeout bounds the wait for one request to be approved and signed.
	DefaultEnrollTimeout = 2 * time.Minute
	// DefaultEnrollMinBackoff and DefaultEnrollMaxBackoff bound the jittered exponential
	// backoff between refused, failed or unanswered requests.
	DefaultEnrollMinBackoff = 2 * time.Second
	DefaultEnrollMaxBackoff = 5 * time.Minute
)

// ErrNotEnrolled is returned while a board's credentials hold no certificate yet.
var ErrNotEnrolled = errors.New("the device has no certificate yet: enrolling")

// Credentials are one board's device key, an ECDSA P-256 key generated in the board
// manager's memory and never written anywhere, and the latest certificate for it.
type Credentials struct {
	id   pki.Identity
	key  *ecdsa.PrivateKey
	cert atomic.Pointer[tls.Certificate]
}

// NewCredentials generates a key for the device id; it has no certificate until Enroll
// obtains one.
func NewCredentials(id pki.Identity) (*Credentials, error) {
	if err := id.Validate(); err != nil {
		return nil, fmt.Errorf("new credentials: %w", err)
	}
	key, err := pki.NewKey()
	if err != nil {
		return nil, fmt.Errorf("new credentials for %s: %w", id, err)
	}
	return &Credentials{id: id, key: key}, nil
}

// Identity returns the device the credentials are for.
func (c *Credentials) Identity() pki.Identity { return c.id }

// Certificate returns the latest certificate with its key, or nil before the first.
func (c *Credentials) Certificate() *tls.Certificate { return c.cert.Load() }

// KeyHash returns "sha256:<hex>" of the key's SubjectPublicKeyInfo, as Device status
// records it.
func (c *Credentials) KeyHash() (string, error) {
	der, err := x509.MarshalPKIXPublicKey(&c.key.PublicKey)
	if err != nil {
		return "", fmt.Errorf("key of %s: %w", c.id, err)
	}
	return pki.PublicKeyHash(der), nil
}

// use stores a certificate after checking it is for this key and identity, and that
// it verifies for client auth against roots.
func (c *Credentials) use(chainPEM []byte, roots *x509.CertPool) (*x509.Certificate, error) {
	var chain [][]byte
	for rest := chainPEM; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type == "CERTIFICATE" {
			chain = append(chain, blk.Bytes)
		}
	}
	if len(chain) == 0 {
		return nil, errors.New("status.certificate holds no PEM certificate")
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return nil, fmt.Errorf("status.certificate: %w", err)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&c.key.PublicKey) {
		return nil, errors.New("the issued certificate is not for the requested key")
	}
	id, err := pki.IdentityFromCertificate(leaf)
	if err != nil {
		return nil, fmt.Errorf("issued certificate: %w", err)
	}
	if id != c.id {
		return nil, fmt.Errorf("the issued certificate names %s, not %s", id, c.id)
	}
	if roots != nil {
		inter := x509.NewCertPool()
		for _, der := range chain[1:] {
			if ic, err := x509.ParseCertificate(der); err == nil {
				inter.AddCert(ic)
			}
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			return nil, fmt.Errorf("the issued certificate does not verify against the gateway's CA: %w", err)
		}
	}
	c.cert.Store(&tls.Certificate{Certificate: chain, PrivateKey: c.key, Leaf: leaf})
	return leaf, nil
}

// EnrollConfig says how a board's credentials are enrolled: a Kubernetes
// CertificateSigningRequest with signer wasmbed.dev/device and the device's
// wasmbed://<namespace>/<name> URI SAN, created with Client's credentials, which the
// operator approves only when they may "enroll" that Device. Zero durations take the
// defaults above.
type EnrollConfig struct {
	// Client creates and reads CertificateSigningRequests; it must not read from a
	// cache (the requester needs create and get on them: wasmbed-device-csr-requester,
	// and enroll on the Device: wasmbed-device-enroller).
	Client client.Client
	// RootCAs verifies each issued certificate before it is used (nil: not checked).
	RootCAs *x509.CertPool
	// Validity is asked for in spec.expirationSeconds (at least 10 minutes).
	Validity time.Duration
	// Timeout bounds the wait for one request to be approved and signed.
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the pauses between requests that did not succeed.
	MinBackoff, MaxBackoff time.Duration
	// Board is the model, for logs and metrics.
	Board   string
	Logger  *slog.Logger
	Metrics *Metrics
}

func (cfg *EnrollConfig) defaults() {
	if cfg.Validity <= 0 {
		cfg.Validity = DefaultCertValidity
	}
	cfg.Validity = max(cfg.Validity, 10*time.Minute) // the apiserver's floor
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultEnrollTimeout
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultEnrollMinBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(DefaultEnrollMaxBackoff, cfg.MinBackoff)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = discardMetrics
	}
}

// refusedError is a request the operator denied or could not sign.
type refusedError struct {
	condition, reason, message string
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("certificate request %s (%s): %s", e.condition, e.reason, e.message)
}

// Enroll keeps creds holding a valid certificate until ctx is done: it requests one
// when creds have none, and renews it for the same key once two thirds of its lifetime
// have passed. A request that is denied, fails, or is not signed within the timeout is
// logged with the reason, counted (wasmbed_board_enrollments_total{result}) and sent
// again after a jittered exponential backoff. It returns when ctx is done.
func Enroll(ctx context.Context, cfg EnrollConfig, creds *Credentials) {
	cfg.defaults()
	log := cfg.Logger.With("device", creds.id.String(), "board", cfg.Board)
	backoff := cfg.MinBackoff
	for ctx.Err() == nil {
		if cert := creds.Certificate(); cert != nil {
			l := cert.Leaf
			renewAt := l.NotBefore.Add(l.NotAfter.Sub(l.NotBefore) * 2 / 3)
			if !sleep(ctx, time.Until(renewAt)) {
				return
			}
			log.Info("renewing the device certificate for the same key", "not_after", l.NotAfter)
		}
		leaf, err := requestCertificate(ctx, cfg, creds)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			cfg.Metrics.enrollments.WithLabelValues("issued").Inc()
			log.Info("device certificate issued", "not_after", leaf.NotAfter)
			backoff = cfg.MinBackoff
			continue
		}
		result := "error"
		var refused *refusedError
		switch {
		case errors.As(err, &refused) && refused.condition == string(certificatesv1.CertificateDenied):
			result = "denied"
		case errors.As(err, &refused):
			result = "failed"
		case errors.Is(err, context.DeadlineExceeded):
			result = "timeout"
		}
		cfg.Metrics.enrollments.WithLabelValues(result).Inc()
		wait := jitter(backoff)
		attrs := []any{"result", result, "err", err, "retry_in", wait}
		if refused != nil {
			attrs = append(attrs, "reason", refused.reason, "message", refused.message)
		}
		log.Warn("device certificate not obtained", attrs...)
		backoff = min(2*backoff, cfg.MaxBackoff)
		// A certificate still valid stays in use meanwhile; its renewal time has
		// passed, so the loop asks again right after the pause.
		if !sleep(ctx, wait) {
			return
		}
	}
}

// requestCertificate creates one request and waits, polling with backoff, until it is
// issued, denied or failed, or the timeout passes.
func requestCertificate(ctx context.Context, cfg EnrollConfig, creds *Credentials) (*x509.Certificate, error) {
	cfg.defaults()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	reqPEM, err := pki.NewCSR(creds.key, creds.id)
	if err != nil {
		return nil, err
	}
	seconds := int32(cfg.Validity / time.Second)
	csr := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: fmt.Sprintf("wasmbed-board-%s-%s-", creds.id.Namespace, creds.id.Name),
			Labels:       map[string]string{"app.kubernetes.io/managed-by": "wasmbed-board-manager"},
		},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request: reqPEM, SignerName: pki.SignerName, ExpirationSeconds: &seconds,
			Usages: []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth, certificatesv1.UsageDigitalSignature},
		},
	}
	if err := cfg.Client.Create(ctx, csr); err != nil {
		return nil, fmt.Errorf("create certificate signing request for %s: %w", creds.id, err)
	}
	cfg.Logger.Debug("certificate signing request created", "device", creds.id.String(), "csr", csr.Name)
	poll := 100 * time.Millisecond
	for {
		if cond := condition(csr, certificatesv1.CertificateDenied); cond != nil {
			return nil, &refusedError{string(cond.Type), cond.Reason, cond.Message}
		}
		if cond := condition(csr, certificatesv1.CertificateFailed); cond != nil {
			return nil, &refusedError{string(cond.Type), cond.Reason, cond.Message}
		}
		if len(csr.Status.Certificate) > 0 {
			leaf, err := creds.use(csr.Status.Certificate, cfg.RootCAs)
			if err != nil {
				return nil, fmt.Errorf("certificate signing request %s: %w", csr.Name, err)
			}
			return leaf, nil
		}
		if !sleep(ctx, poll) {
			return nil, fmt.Errorf("certificate signing request %s not signed within %s: %w", csr.Name, cfg.Timeout, ctx.Err())
		}
		poll = min(2*poll, 5*time.Second)
		if err := cfg.Client.Get(ctx, client.ObjectKeyFromObject(csr), csr); err != nil {
			return nil, fmt.Errorf("read certificate signing request %s: %w", csr.Name, err)
		}
	}
}

func condition(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) *certificatesv1.CertificateSigningRequestCondition {
	for i, c := range csr.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return &csr.Status.Conditions[i]
		}
	}
	return nil
}
