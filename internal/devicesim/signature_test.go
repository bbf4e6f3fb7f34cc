package devicesim

import (
	"strings"
	"testing"

	"github.com/wasmbed/wasmbed/api/digest"

	"github.com/wasmbed/wasmbed/internal/pki"
)

// The rows of docs/protocol.md's signature table, which the firmware implements too.
func TestSignatureRule(t *testing.T) {
	key, err := pki.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	dg := digest.Of([]byte("module"))
	good, err := key.SignDigest(dg)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := other.SignDigest(dg)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		withKey bool
		require bool
		sig     []byte
		want    string // "" accepted, else a substring of the refusal
	}{
		{"no key, signed: ignored", false, false, forged, ""},
		{"no key, unsigned", false, false, nil, ""},
		{"no key, required: fails closed", false, true, good, "no platform key"},
		{"key, unsigned, optional", true, false, nil, ""},
		{"key, unsigned, required", true, true, nil, "not signed"},
		{"key, good signature", true, true, good, ""},
		{"key, forged signature, optional", true, false, forged, "does not verify"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var k = key.Public()
			if !tc.withKey {
				k = nil
			}
			got := signatureProblem(k, tc.require, dg.Bytes(), tc.sig)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
