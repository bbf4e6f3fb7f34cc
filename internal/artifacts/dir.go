package artifacts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
func (d *Dir) Put(ctx context.Context, module []byte) (string, error) {
	if err := checkSize(module); err != nil {
		return "", fmt.Errorf("put: %w", err)
	}
	digest := Digest(module)
	hex := digest[len("sha256:"):]
	final := d.path(hex)
	if _, err := os.Stat(final); err == nil {
		return digest, nil
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("put %s: %w", digest, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(final), ".put-*")
	if err != nil {
		return "", fmt.Errorf("put %s: %w", digest, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(module); err != nil {
		tmp.Close()
		return "", fmt.Errorf("put %s: write: %w", digest, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("put %s: sync: %w", digest, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("put %s: close: %w", digest, err)
	}
	if err := os.Chmod(tmp.Name(), 0o444); err != nil {
		return "", fmt.Errorf("put %s: %w", digest, err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", fmt.Errorf("put %s: rename: %w", digest, err)
	}
	return digest, nil
}

// Get returns the module with digest.
func (d *Dir) Get(ctx context.Context, digest string) ([]byte, error) {
	hex, err := ParseDigest(digest)
	if err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get %s: %w", digest, err)
	}
	b, err := os.ReadFile(d.path(hex))
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
