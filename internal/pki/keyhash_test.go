package pki_test

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/wasmbed/wasmbed/internal/pki"
)

// TestPublicKeyHash: the hash is the SHA-256 of the SubjectPublicKeyInfo, the same for
// a request and the certificate issued for it, and different for another key.
func TestPublicKeyHash(t *testing.T) {
	ca := newCA(t)
	id := pki.Identity{Namespace: "default", Name: "d"}
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csrPEM, err := pki.NewCSR(key, id)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.ParseCSR(csrPEM)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := pki.NewSigner(ca, pki.AllowAll).Sign(t.Context(), csrPEM, id)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.ParseCertificatePEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := ca.IssueDevice(id, 0)
	if err != nil {
		t.Fatal(err)
	}
	otherCert, err := pki.ParseCertificatePEM(other)
	if err != nil {
		t.Fatal(err)
	}

	got := pki.PublicKeyHash(cert.RawSubjectPublicKeyInfo)
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	if want := "sha256:" + hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("PublicKeyHash = %s, want %s", got, want)
	}
	if h := pki.PublicKeyHash(csr.RawSubjectPublicKeyInfo); h != got {
		t.Errorf("request hashes to %s, its certificate to %s", h, got)
	}
	if h := pki.PublicKeyHash(otherCert.RawSubjectPublicKeyInfo); h == got {
		t.Error("two keys hash the same")
	}
}
