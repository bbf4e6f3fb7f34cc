package main

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/wasmbed/wasmbed/gateway"
	"github.com/wasmbed/wasmbed/internal/pki"
)

func pkiPool(ca *x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca)
	return p
}

// enableEnrollment serves POST /enroll with a local CA and the bootstrap tokens of
// tokenFile, kept (hashed, with their spent marks) in STATE-DIR/enroll. The caller
// closes the returned Tokens.
func enableEnrollment(srv *gateway.Server, caDir, tokenFile, stateDir string, ttl time.Duration, log *slog.Logger) (*gateway.Tokens, error) {
	ca, err := pki.LoadCA(caDir)
	if err != nil {
		return nil, err
	}
	tokens, err := gateway.OpenTokens(filepath.Join(stateDir, "enroll"), ttl)
	if err != nil {
		return nil, err
	}
	if tokenFile != "" {
		data, err := os.ReadFile(tokenFile)
		if err != nil {
			tokens.Close()
			return nil, fmt.Errorf("read tokens: %w", err)
		}
		list, err := gateway.ParseTokenFile(data)
		if err == nil {
			err = tokens.Add(list...)
		}
		if err != nil {
			tokens.Close()
			return nil, fmt.Errorf("%s: %w", tokenFile, err)
		}
	}
	srv.SetEnroller(gateway.NewEnroller(pki.NewSigner(ca, tokens), tokens, ca.CertPEM(), gateway.EnrollerOptions{Logger: log}))
	return tokens, nil
}
