package debian

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"github.com/wasmbed/wasmbed/hack/images/layer"
)

// Filter decides which of a package's files go into the image; false drops one.
type Filter func(name string) bool

// Slim drops documentation, manual pages and translations, as Debian's slim images
// do, but keeps each package's copyright file.
func Slim(name string) bool {
	name = layer.Clean(name)
	if strings.HasPrefix(name, "usr/share/doc/") {
		rest := strings.TrimPrefix(name, "usr/share/doc/")
		return !strings.Contains(rest, "/") || strings.HasSuffix(rest, "/copyright")
	}
	for _, p := range []string{"usr/share/man/", "usr/share/info/", "usr/share/locale/", "usr/share/lintian/", "usr/share/bug/"} {
		if strings.HasPrefix(name+"/", p) && name+"/" != p {
			return false
		}
	}
	return true
}

// AddTo writes the files of the .deb at path that keep admits (all when nil) into
// w, in the archive's own order.
func AddTo(ctx context.Context, w *layer.Writer, path string, keep Filter) error {
	return Walk(ctx, path, func(h *tar.Header, r io.Reader) error {
		if keep != nil && !keep(h.Name) {
			return nil
		}
		return w.Add(h, r)
	})
}

// Walk calls fn for every entry of the .deb at path, reading its data archive with
// dpkg-deb --fsys-tarfile (no root, nothing unpacked on disk).
func Walk(ctx context.Context, path string, fn func(*tar.Header, io.Reader) error) error {
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("dpkg-deb %s: %w", path, err)
	}
	werr := Each(out, fn)
	_, _ = io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("dpkg-deb --fsys-tarfile %s: %w: %s", path, err, stderr.String())
	}
	if werr != nil {
		return fmt.Errorf("%s: %w", path, werr)
	}
	return nil
}

// Each calls fn for every entry of the tar stream r.
func Each(r io.Reader, fn func(*tar.Header, io.Reader) error) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(h, tr); err != nil {
			return err
		}
	}
}
