package manager

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/wasmbed/wasmbed/internal/pki"
)

// IssueCertificate issues a device certificate for id from ca and returns it with its
// key, in memory only: the key of an emulated board never leaves the board manager.
// A zero validity takes the CA's default.
func IssueCertificate(ca *pki.CA, id pki.Identity, validity time.Duration) (tls.Certificate, error) {
	certPEM, keyPEM, err := ca.IssueDevice(id, validity)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("issue certificate for %s: %w", id, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate for %s: %w", id, err)
	}
	return cert, nil
}
