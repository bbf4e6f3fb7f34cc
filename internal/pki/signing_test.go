package pki_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/wasmbed/wasmbed/api/digest"

	"github.com/wasmbed/wasmbed/internal/pki"
)

func TestSigningKeyRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signing.key")
	k, err := pki.LoadOrCreateSigningKey(path)
	if err != nil {
		t.Fatal(err)
	}
	again, err := pki.LoadOrCreateSigningKey(path)
	if err != nil || !again.Public().Equal(k.Public()) {
		t.Fatalf("reloaded key differs: %v", err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v", fi.Mode().Perm())
	}
	dg := digest.Of([]byte("module"))
	sig, err := k.SignDigest(dg)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		digest []byte
		sig    []byte
		ok     bool
	}{
		{"good", dg.Bytes(), sig, true},
		{"other digest", make([]byte, 32), sig, false},
		{"flipped signature", dg.Bytes(), append([]byte{sig[0] ^ 1}, sig[1:]...), false},
		{"short signature", dg.Bytes(), sig[:63], false},
	}
	for _, tc := range cases {
		if got := pki.VerifyDigest(k.Public(), tc.digest, tc.sig); got != tc.ok {
			t.Errorf("%s: verify = %v", tc.name, got)
		}
	}
	if _, err := k.SignDigest("md5:abc"); err == nil {
		t.Error("signed a malformed digest")
	}
	if err := os.WriteFile(path, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.LoadOrCreateSigningKey(path); err == nil {
		t.Error("loaded a junk key file instead of refusing it")
	}
}
