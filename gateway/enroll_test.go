package gateway_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/wasmbed/wasmbed/gateway"
	"github.com/wasmbed/wasmbed/internal/pki"
)

func TestEnroll(t *testing.T) {
	h := newHarness(t)
	dev := id("default", "enrolled-0")
	tokens := gateway.NewTokens(map[string]pki.Identity{"s3cret": dev})
	h.srv.SetEnroller(gateway.NewEnroller(pki.NewSigner(h.ca, tokens), tokens, h.ca.CertPEM(), nil))
	key, _ := pki.NewKey()
	csr, err := pki.NewCSR(key, dev)
	if err != nil {
		t.Fatal(err)
	}
	post := func(token string) (*http.Response, map[string]string) {
		body, _ := json.Marshal(map[string]string{"token": token, "csr": string(csr)})
		resp, err := http.Post(h.apiURL+"/enroll", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp, out
	}
	resp, out := post("s3cret")
	if resp.StatusCode != 200 {
		t.Fatalf("enroll: %d", resp.StatusCode)
	}
	cert, err := pki.ParseCertificatePEM([]byte(out["certificate"]))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := pki.IdentityFromCertificate(cert); err != nil || got != dev {
		t.Fatalf("identity %v %v", got, err)
	}
	// The token is spent; an unknown token is refused.
	if resp, _ := post("s3cret"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("reused token: %d", resp.StatusCode)
	}
	if h.counter(gateway.MetricEnrollments, "result=signed") != 1 || h.counter(gateway.MetricEnrollments, "result=denied") != 1 {
		t.Fatal("enrollments not counted")
	}
	// The enrolled certificate opens a session.
	keyPEM, _ := pki.EncodeKeyPEM(key)
	_ = keyPEM
}
