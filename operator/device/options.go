package device

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wasmbed/wasmbed/internal/pki"
)

// minValidity is the shortest certificate the signer issues, the floor Kubernetes puts
// on spec.expirationSeconds.
const minValidity = 10 * time.Minute

// Options configure the Device and CertificateSigningRequest reconcilers. Exactly one of
// CA, CADir and CASecret names the platform CA.
type Options struct {
	// CA is the platform CA, already loaded.
	CA *pki.CA
	// CADir is a directory with ca.crt and ca.key (pki.LoadCA), read once at setup.
	CADir string
	// CASecret is a Secret with the CA as ca.crt and ca.key, or as tls.crt and tls.key
	// (a kubernetes.io/tls or cert-manager CA Secret). It is read on first use and kept.
	CASecret types.NamespacedName
	// Validity is the longest certificate issued; a CSR's spec.expirationSeconds may ask
	// for less (default pki.DefaultDeviceValidity).
	Validity time.Duration
}

// caSource loads the CA once, from wherever Options say.
type caSource struct {
	reader client.Reader
	secret types.NamespacedName

	mu sync.Mutex
	ca *pki.CA
}

func newCASource(opts Options, reader client.Reader) (*caSource, error) {
	set := 0
	for _, ok := range []bool{opts.CA != nil, opts.CADir != "", opts.CASecret.Name != ""} {
		if ok {
			set++
		}
	}
	if set != 1 {
		return nil, errors.New("device controller: set exactly one of Options.CA, CADir and CASecret")
	}
	src := &caSource{reader: reader, secret: opts.CASecret, ca: opts.CA}
	if opts.CADir != "" {
		ca, err := pki.LoadCA(opts.CADir)
		if err != nil {
			return nil, fmt.Errorf("device controller: %w", err)
		}
		src.ca = ca
	}
	return src, nil
}

// get returns the CA, reading the CA Secret the first time.
func (s *caSource) get(ctx context.Context) (*pki.CA, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ca != nil {
		return s.ca, nil
	}
	var sec corev1.Secret
	if err := s.reader.Get(ctx, s.secret, &sec); err != nil {
		return nil, fmt.Errorf("read ca secret %s: %w", s.secret, err)
	}
	certPEM, keyPEM := sec.Data[pki.CACertFile], sec.Data[pki.CAKeyFile]
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		certPEM, keyPEM = sec.Data[corev1.TLSCertKey], sec.Data[corev1.TLSPrivateKeyKey]
	}
	ca, err := pki.ParseCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("ca secret %s: %w", s.secret, err)
	}
	s.ca = ca
	return ca, nil
}

// validity returns how long a certificate asked for with expirationSeconds lives.
func (o Options) validity(expirationSeconds *int32) time.Duration {
	limit := o.Validity
	if limit <= 0 {
		limit = pki.DefaultDeviceValidity
	}
	if expirationSeconds == nil {
		return limit
	}
	d := time.Duration(*expirationSeconds) * time.Second
	return min(max(d, minValidity), limit)
}
