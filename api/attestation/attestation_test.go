package attestation

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/api/digest"
)

type key ed25519.PrivateKey

func (k key) Sign(m []byte) ([]byte, error) { return ed25519.Sign(ed25519.PrivateKey(k), m), nil }

// TestPAE holds the encoding to the DSSE specification's own example.
func TestPAE(t *testing.T) {
	if got := string(pae("http://example.com/HelloWorld", []byte("hello world"))); got != "DSSEv1 29 http://example.com/HelloWorld 11 hello world" {
		t.Fatalf("pae = %q", got)
	}
}

func TestVerify(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	otherPub, otherPriv, _ := ed25519.GenerateKey(nil)
	_ = otherPub
	mod := digest.Of([]byte("module"))
	ok := Validation{Boards: []string{"virtual"}, ABIVersion: 1, Passed: true, Time: time.Unix(0, 0).UTC()}
	sign := func(d digest.Digest, v Validation, k ed25519.PrivateKey) []byte {
		s, err := NewStatement(d, v)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Sign(s, key(k), "validator")
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := sign(mod, ok, priv)
	tamper := func(f func(*Envelope)) []byte {
		var e Envelope
		if err := json.Unmarshal(good, &e); err != nil {
			t.Fatal(err)
		}
		f(&e)
		b, _ := json.Marshal(e)
		return b
	}
	failed := ok
	failed.Passed = false
	noBoards := ok
	noBoards.Boards = nil
	oldABI := ok
	oldABI.ABIVersion = 0
	tests := []struct {
		name     string
		envelope []byte
		want     string
	}{
		{"valid", good, ""},
		{"signed by another key", sign(mod, ok, otherPriv), "not signed by the validator's key"},
		{"about another module", sign(digest.Of([]byte("other")), ok, priv), "not about module"},
		{"validation failed", sign(mod, failed, priv), "did not pass validation"},
		{"no board", sign(mod, noBoards, priv), "names no board"},
		{"another ABI", sign(mod, oldABI, priv), "ABI 0, not 1"},
		{"payload swapped after signing", tamper(func(e *Envelope) {
			p, _ := base64.StdEncoding.DecodeString(e.Payload)
			e.Payload = base64.StdEncoding.EncodeToString([]byte(strings.Replace(string(p), `"passed":true`, `"passed":true `, 1)))
		}), "not signed"},
		{"payload type changed", tamper(func(e *Envelope) { e.PayloadType = "text/plain" }), "payload type"},
		{"no signature", tamper(func(e *Envelope) { e.Signatures = nil }), "not signed"},
		{"not json", []byte("{"), "envelope"},
		{"unknown field", []byte(`{"payloadType":"x","payload":"","signatures":[],"extra":1}`), "unknown field"},
		{"oversized", make([]byte, MaxEnvelopeBytes+1), "over"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Verify(tt.envelope, pub, mod, 1)
			if tt.want == "" {
				if err != nil || !v.Passed || v.Boards[0] != "virtual" {
					t.Fatalf("Verify = %+v, %v", v, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Verify error = %v, want one containing %q", err, tt.want)
			}
		})
	}
	if _, err := Verify(sign(mod, failed, priv), pub, mod, 1); !errors.Is(err, ErrNotValidated) {
		t.Fatalf("a failed validation does not wrap ErrNotValidated: %v", err)
	}
	if _, err := Verify(good, nil, mod, 1); err == nil {
		t.Fatal("verified without a key")
	}
}

func FuzzVerify(f *testing.F) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	mod := digest.Of([]byte("module"))
	s, _ := NewStatement(mod, Validation{Boards: []string{"virtual"}, ABIVersion: 1, Passed: true})
	good, _ := Sign(s, key(priv), "")
	f.Add(good)
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"sig":"AA=="}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := Verify(b, pub, mod, 1); err == nil && string(b) != string(good) {
			// Another encoding of the same signed payload may verify; anything that
			// verifies must carry a signature of the validator over a passing statement.
			var e Envelope
			if json.Unmarshal(b, &e) != nil {
				t.Fatalf("verified bytes that are not an envelope: %q", b)
			}
		}
	})
}
