package pki_test

import (
	"crypto/ed25519"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

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
	msg := []byte("manifest")
	sig, err := k.Sign(msg)
	if err != nil || !ed25519.Verify(again.Public(), msg, sig) {
		t.Fatalf("the reloaded key does not verify the key's signature: %v", err)
	}
	hexKey := hex.EncodeToString(k.Public())
	parse := []struct {
		in string
		ok bool
	}{
		{hexKey, true},
		{" " + hexKey + "\n", true},
		{hexKey[:62], false},
		{hexKey + "00", false},
		{"zz" + hexKey[2:], false},
	}
	for _, tc := range parse {
		pub, err := pki.ParsePublicKeyHex(tc.in)
		if (err == nil) != tc.ok || (tc.ok && !pub.Equal(k.Public())) {
			t.Errorf("ParsePublicKeyHex(%q) = %x, %v; want ok=%v", tc.in, pub, err, tc.ok)
		}
	}
	if err := os.WriteFile(path, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.LoadOrCreateSigningKey(path); err == nil {
		t.Error("loaded a junk key file instead of refusing it")
	}
}
