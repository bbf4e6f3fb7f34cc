package device

import (
	"crypto/x509"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/pki"
)

// The identity Secret. The platform never knows a device's private key (the device, or
// the board manager offloading TLS for it, keeps it), so the Secret is not a
// kubernetes.io/tls Secret: it is an Opaque Secret with the device certificate and the
// CA that signed it, owned by the Device so that it goes away with it.
const (
	// SecretCertKey holds the device certificate, PEM.
	SecretCertKey = corev1.TLSCertKey // "tls.crt"
	// SecretCAKey holds the platform CA certificate, PEM.
	SecretCAKey = pki.CACertFile // "ca.crt"
	// DeviceLabel is set on the identity Secret to the Device's name.
	DeviceLabel = "wasmbed.dev/device"
)

// identityIndex indexes wasmbed.dev/device CertificateSigningRequests by the
// "<namespace>/<device>" in their URI SAN.
const identityIndex = "wasmbed.identity"

// SecretName returns the name of a Device's identity Secret: spec.identity.secretName,
// or "<device>-identity".
func SecretName(dev *v1.Device) string {
	if dev.Spec.Identity != nil && dev.Spec.Identity.SecretName != "" {
		return dev.Spec.Identity.SecretName
	}
	return dev.Name + "-identity"
}

// indexIdentity is the identityIndex function.
func indexIdentity(obj client.Object) []string {
	csr, ok := obj.(*certificatesv1.CertificateSigningRequest)
	if !ok {
		return nil
	}
	if id, ok := requestedIdentity(csr); ok {
		return []string{id.String()}
	}
	return nil
}

// validCertificate returns the certificate in certPEM when it chains to ca, is a
// client certificate for id and is valid at now; nil otherwise.
func validCertificate(ca *pki.CA, id pki.Identity, certPEM []byte, now time.Time) *x509.Certificate {
	if len(certPEM) == 0 {
		return nil
	}
	cert, err := pki.ParseCertificatePEM(certPEM)
	if err != nil {
		return nil
	}
	if _, err := cert.Verify(x509.VerifyOptions{
		Roots:       ca.Pool(),
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return nil
	}
	got, err := pki.IdentityFromCertificate(cert)
	if err != nil || got != id {
		return nil
	}
	return cert
}

// better reports whether the device should hold a rather than b (b may be nil): a
// certificate for the recorded key before one for any other key (the signer records
// the key of each certificate it issues, and X.509 times have one-second steps), then
// the newer one.
func better(a, b *x509.Certificate, recorded string) bool {
	if b == nil {
		return true
	}
	if ak, bk := pki.PublicKeyHash(a.RawSubjectPublicKeyInfo) == recorded, pki.PublicKeyHash(b.RawSubjectPublicKeyInfo) == recorded; ak != bk {
		return ak
	}
	return newer(a, b)
}

// newer reports whether a was issued after b (b may be nil).
func newer(a, b *x509.Certificate) bool {
	switch {
	case b == nil:
		return true
	case !a.NotBefore.Equal(b.NotBefore):
		return a.NotBefore.After(b.NotBefore)
	default:
		return a.NotAfter.After(b.NotAfter)
	}
}
