// Package artifacts stores WebAssembly modules by content: a module's name is the
// sha256 of its bytes ("sha256:<hex>"). Locally the store is a directory; in a cluster,
// OCI artifacts in a registry. Events carry digests; consumers Get the bytes here.
package artifacts

import (
	"context"
	"errors"
	"fmt"

	"github.com/wasmbed/wasmbed/api/digest"
)

// MaxModuleBytes is the largest module any store accepts (the largest board budget).
const MaxModuleBytes = 4 << 20

// ErrNotFound is returned by Get for a digest the store does not hold.
var ErrNotFound = errors.New("module not found")

// Store keeps modules by digest, and beside each the attestation that it passed
// validation. Implementations are safe for concurrent use.
type Store interface {
	// Put stores module and returns its digest. Storing the same bytes twice is a no-op.
	Put(ctx context.Context, module []byte) (digest.Digest, error)
	// Get returns the module with digest, checked against it, or an error wrapping
	// ErrNotFound.
	Get(ctx context.Context, d digest.Digest) ([]byte, error)
	Attestations
}

// verify checks that b hashes to want.
func verify(want digest.Digest, b []byte) error {
	if got := digest.Of(b); got != want {
		return fmt.Errorf("stored module for %s hashes to %s: the store is corrupt", want, got)
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
