package pki

import (
	"crypto/sha256"
	"encoding/hex"
)

// PublicKeyHash returns "sha256:<64 lower-case hex>", the SHA-256 of a DER
// SubjectPublicKeyInfo: x509.Certificate.RawSubjectPublicKeyInfo or
// x509.CertificateRequest.RawSubjectPublicKeyInfo. A certificate and the request it was
// issued for hash the same. Device status records the hash of the key a device
// enrolled with, and gateways compare it with the key a device presents.
func PublicKeyHash(spki []byte) string {
	sum := sha256.Sum256(spki)
	return "sha256:" + hex.EncodeToString(sum[:])
}
