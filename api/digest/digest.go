// Package digest is the content address of a WebAssembly module: "sha256:" followed by
// the 64 lower-case hex digits of the module's SHA-256. Events, CRDs, the artifact store,
// the gateway and the signatures all name modules by it; on the device protocol it
// travels as the 32 raw bytes (Bytes, FromBytes).
package digest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	godigest "github.com/opencontainers/go-digest"
)

// Prefix starts every digest.
const Prefix = "sha256:"

// Size is the number of bytes of a digest's hash.
const Size = sha256.Size

// Digest is "sha256:<64 lower-case hex>". The zero value means "no module"; Validate
// tells a well-formed digest from anything else. In a CRD, a field of this type is a
// string; fields that users write add the pattern ^sha256:[a-f0-9]{64}$ themselves.
type Digest string

// ErrEmpty is the error of Validate and Parse for the empty digest.
var ErrEmpty = errors.New("digest is empty")

// Of returns the digest of b.
func Of(b []byte) Digest {
	sum := sha256.Sum256(b)
	return Digest(Prefix + hex.EncodeToString(sum[:]))
}

// Parse returns s as a Digest, or an error that names what is wrong with it.
func Parse(s string) (Digest, error) {
	d := Digest(s)
	if err := d.Validate(); err != nil {
		return "", err
	}
	return d, nil
}

// FromBytes returns the digest of a 32-byte SHA-256 sum, as the device protocol carries it.
func FromBytes(sum []byte) (Digest, error) {
	if len(sum) != Size {
		return "", fmt.Errorf("digest is %d bytes, want %d", len(sum), Size)
	}
	return Digest(Prefix + hex.EncodeToString(sum)), nil
}

// Validate returns nil when d is "sha256:" followed by 64 lower-case hex digits.
func (d Digest) Validate() error {
	if d == "" {
		return ErrEmpty
	}
	h, ok := strings.CutPrefix(string(d), Prefix)
	if !ok || len(h) != 2*Size || strings.IndexFunc(h, notLowerHex) >= 0 {
		return fmt.Errorf("digest %q is not sha256:<64 lower-case hex digits>", clip(string(d)))
	}
	return nil
}

// Hex returns the 64 hex digits of a valid digest, or "" for an invalid one.
func (d Digest) Hex() string {
	if d.Validate() != nil {
		return ""
	}
	return string(d[len(Prefix):])
}

// Bytes returns the 32 bytes of a valid digest, or nil for an invalid one.
func (d Digest) Bytes() []byte {
	b, err := hex.DecodeString(d.Hex())
	if err != nil || len(b) != Size {
		return nil
	}
	return b
}

// Verify returns nil when b hashes to d.
func (d Digest) Verify(b []byte) error {
	if err := d.Validate(); err != nil {
		return err
	}
	if got := Of(b); got != d {
		return fmt.Errorf("content hashes to %s, want %s", got, d)
	}
	return nil
}

// String returns d as it is written everywhere.
func (d Digest) String() string { return string(d) }

// OCI returns d as an OCI content descriptor's digest.
func (d Digest) OCI() godigest.Digest { return godigest.Digest(d) }

func notLowerHex(r rune) bool { return !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') }

// clip keeps an error about hostile input short.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
