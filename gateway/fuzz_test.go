package gateway_test

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/gateway"
	"github.com/wasmbed/wasmbed/internal/pki"
)

// FuzzEnrollRequest feeds arbitrary bodies to POST /enroll, the one decoder of untrusted
// network bytes the gateway adds besides the device protocol and CloudEvents.
func FuzzEnrollRequest(f *testing.F) {
	ca, err := pki.NewCA("fuzz", time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	key, _ := pki.NewKey()
	csr, _ := pki.NewCSR(key, pki.Identity{Namespace: "default", Name: "d"})
	f.Add(`{"token":"fuzz-token-0123456789","csr":` + strings.ReplaceAll(strings.ReplaceAll(string(csr), "\n", `\n`), `"`, `\"`) + `}`)
	f.Add(`{"token":"t","csr":"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----"}`)
	f.Add(`{"token":"","csr":""}`)
	f.Add(`[]`)
	tokens, err := gateway.OpenTokens(f.TempDir(), 0)
	if err != nil {
		f.Fatal(err)
	}
	defer tokens.Close()
	if err := tokens.Add(gateway.Token{Secret: "fuzz-token-0123456789", Identity: pki.Identity{Namespace: "default", Name: "d"}}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		e := gateway.NewEnroller(pki.NewSigner(ca, tokens), tokens, ca.CertPEM(), gateway.EnrollerOptions{Burst: 1 << 30})
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/enroll", strings.NewReader(body))
		req.TLS = &tls.ConnectionState{} // as over the TLS listener: the decoder is what is fuzzed
		e.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusForbidden:
		default:
			t.Fatalf("status %d for %q", rec.Code, body)
		}
	})
}

// FuzzParseAllowList checks the allow-list parser never panics and returns only valid
// identities.
func FuzzParseAllowList(f *testing.F) {
	f.Add("default/dev-0\n# comment\nteam-a/x # trailing\n")
	f.Add("bad\n")
	f.Fuzz(func(t *testing.T, data string) {
		ids, err := gateway.ParseAllowList([]byte(data))
		if err != nil {
			return
		}
		for _, id := range ids {
			if id.Validate() != nil {
				t.Fatalf("invalid identity %v accepted", id)
			}
		}
	})
}
