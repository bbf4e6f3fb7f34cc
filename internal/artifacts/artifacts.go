// Package artifacts stores WebAssembly modules by content: a module's name is the
// sha256 of its bytes ("sha256:<hex>"). Locally the store is a directory; in a cluster,
// OCI artifacts in a registry. Events carry digests; consumers Get the bytes here.
package artifacts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
)

// MaxModuleBytes is the largest module any store accepts (the largest board budget).
const MaxModuleBytes = 4 << 20

// ErrNotFound is returned by Get for a digest the store does not hold.
var ErrNotFound = errors.New("module not found")

// Store keeps modules by digest. Implementations are safe for concurrent use.
type Store interface {
	// Put stores module and returns its digest. Storing the same bytes twice is a no-op.
	Put(ctx context.Context, module []byte) (string, error)
	// Get returns the module with digest, checked against it, or an error wrapping
	// ErrNotFound.
	Get(ctx context.Context, digest string) ([]byte, error)
}

var digestRe = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)

// Digest returns "sha256:<hex>" of b.
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ParseDigest checks that d is "sha256:<64 lower-case hex>" and returns the hex part.
func ParseDigest(d string) (string, error) {
	if !digestRe.MatchString(d) {
		return "", fmt.Errorf("digest %q is not sha256:<64 hex digits>", d)
	}
	return d[len("sha256:"):], nil
}

// verify checks that b hashes to digest.
func verify(digest string, b []byte) error {
	if got := Digest(b); got != digest {
		return fmt.Errorf("stored module for %s hashes to %s: the store is corrupt", digest, got)
	}
	return nil
}

func checkSize(module []byte) error {
	if len(module) == 0 {
		return errors.New("empty module")
	}
	if len(module) > MaxModuleBytes {
		return fmt.Errorf("module is %d bytes; the store's limit is %d", len(module), MaxModuleBytes)
	}
	return nil
}
