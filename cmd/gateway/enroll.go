package main

import (
	"crypto/x509"
	"log/slog"

	"github.com/wasmbed/wasmbed/gateway"
	"github.com/wasmbed/wasmbed/internal/pki"
)

func pkiPool(ca *x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca)
	return p
}

// enableEnrollment serves POST /enroll with a local CA and a token file.
func enableEnrollment(srv *gateway.Server, caDir, tokenFile string, log *slog.Logger) error {
	ca, err := pki.LoadCA(caDir)
	if err != nil {
		return err
	}
	tokens, err := gateway.LoadTokens(tokenFile)
	if err != nil {
		return err
	}
	srv.SetEnroller(gateway.NewEnroller(pki.NewSigner(ca, tokens), tokens, ca.CertPEM(), log))
	return nil
}
