package artifacts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/wasmbed/wasmbed/api/digest"
)

// Dir is a Store in a local directory: one file per module at <dir>/sha256/<hex>,
// written atomically (temporary file, fsync, rename).
type Dir struct {
	root string
}

// NewDir returns a store in dir, creating it if needed.
func NewDir(dir string) (*Dir, error) {
	if err := os.MkdirAll(filepath.Join(dir, "sha256"), 0o755); err != nil {
		return nil, fmt.Errorf("artifact dir: %w", err)
	}
	return &Dir{root: dir}, nil
}

func (d *Dir) path(hex string) string { return filepath.Join(d.root, "sha256", hex) }

// Put stores module and returns its digest.
func (d *Dir) Put(ctx context.Context, module []byte) (digest.Digest, error) {
	if err := checkSize(module); err != nil {
		return "", fmt.Errorf("put: %w", err)
	}
	sum := digest.Of(module)
	final := d.path(sum.Hex())
	if _, err := os.Stat(final); err == nil {
		return sum, nil
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("put %s: %w", sum, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(final), ".put-*")
	if err != nil {
		return "", fmt.Errorf("put %s: %w", sum, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(module); err != nil {
		tmp.Close()
		return "", fmt.Errorf("put %s: write: %w", sum, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("put %s: sync: %w", sum, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("put %s: close: %w", sum, err)
	}
	if err := os.Chmod(tmp.Name(), 0o444); err != nil {
		return "", fmt.Errorf("put %s: %w", sum, err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", fmt.Errorf("put %s: rename: %w", sum, err)
	}
	return sum, nil
}

// Get returns the module with digest.
func (d *Dir) Get(ctx context.Context, digest digest.Digest) ([]byte, error) {
	if err := digest.Validate(); err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get %s: %w", digest, err)
	}
	b, err := os.ReadFile(d.path(digest.Hex()))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("get %s: %w", digest, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", digest, err)
	}
	if err := verify(digest, b); err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	return b, nil
}
