// Package layer writes reproducible OCI image layers: the same files give the same
// bytes, so the same digest, on any machine and at any time. Every entry gets a fixed
// modification time and no user or group names, modes are normalised, a path is
// written once, and the gzip stream carries no name or time.
package layer

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Epoch is the modification time of every entry: the Unix epoch, as ko (and
// SOURCE_DATE_EPOCH=0) uses for its own layers.
var Epoch = time.Unix(0, 0).UTC()

// Writer writes one gzip-compressed tar layer. Entries keep the order they are added
// in; callers add them in a deterministic order (a sorted list of packages, each
// package's own archive order, sorted directory walks).
type Writer struct {
	gz   *gzip.Writer
	tw   *tar.Writer
	seen map[string]byte // path -> tar type flag
}

// NewWriter returns a Writer that writes the compressed layer to w.
func NewWriter(w io.Writer) *Writer {
	gz, _ := gzip.NewWriterLevel(w, gzip.DefaultCompression) // the level is valid
	return &Writer{gz: gz, tw: tar.NewWriter(gz), seen: map[string]byte{}}
}

// ErrConflict is returned when two entries claim one path with different types, or a
// path other than a directory is added twice.
var ErrConflict = errors.New("path added twice")

// Add writes one entry: a directory, a regular file (its content read from r), a
// symbolic or a hard link. The header's name is cleaned to a relative path
// ("usr/bin/x"); its times and user and group names are reset; its mode, owner and
// link target are kept. A directory already written is skipped.
func (w *Writer) Add(hdr *tar.Header, r io.Reader) error {
	name := Clean(hdr.Name)
	if name == "" {
		return nil // the root itself
	}
	if err := w.parents(name); err != nil {
		return err
	}
	if prev, ok := w.seen[name]; ok {
		if prev == tar.TypeDir && hdr.Typeflag == tar.TypeDir {
			return nil
		}
		return fmt.Errorf("%s: %w", name, ErrConflict)
	}
	h := &tar.Header{
		Typeflag: hdr.Typeflag,
		Name:     name,
		Linkname: hdr.Linkname,
		Size:     hdr.Size,
		Mode:     hdr.Mode & 0o7777,
		Uid:      hdr.Uid,
		Gid:      hdr.Gid,
		ModTime:  Epoch,
		Format:   tar.FormatPAX,
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		h.Name += "/"
		h.Size = 0
	case tar.TypeReg:
	case tar.TypeSymlink:
		h.Size = 0
		h.Mode = 0o777
	case tar.TypeLink:
		h.Size = 0
		h.Linkname = Clean(hdr.Linkname)
		if _, ok := w.seen[h.Linkname]; !ok {
			return fmt.Errorf("%s: hard link to %s, which the layer does not hold", name, h.Linkname)
		}
	default:
		return fmt.Errorf("%s: unsupported entry type %q", name, hdr.Typeflag)
	}
	if err := w.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if h.Typeflag == tar.TypeReg {
		n, err := io.Copy(w.tw, r)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if n != h.Size {
			return fmt.Errorf("%s: read %d bytes, header says %d", name, n, h.Size)
		}
	}
	w.seen[name] = h.Typeflag
	return nil
}

// parents adds the directories above name that the layer does not hold yet, owned
// by root with mode 0755, so that no runtime has to invent them.
func (w *Writer) parents(name string) error {
	dir := path.Dir(name)
	if dir == "." {
		return nil
	}
	if t, ok := w.seen[dir]; ok {
		if t != tar.TypeDir {
			return fmt.Errorf("%s: parent %s is not a directory: %w", name, dir, ErrConflict)
		}
		return nil
	}
	return w.Dir(dir, 0o755, 0, 0)
}

// Dir adds a directory owned by uid:gid with mode (e.g. 0o1777 for /tmp).
func (w *Writer) Dir(name string, mode int64, uid, gid int) error {
	return w.Add(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, Uid: uid, Gid: gid}, nil)
}

// File adds a regular file owned by root with mode and content.
func (w *Writer) File(name string, mode int64, content []byte) error {
	return w.Add(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(content))}, strings.NewReader(string(content)))
}

// Has reports whether the layer already holds name.
func (w *Writer) Has(name string) bool {
	_, ok := w.seen[Clean(name)]
	return ok
}

// Close finishes the tar and gzip streams; it does not close the underlying writer.
func (w *Writer) Close() error {
	if err := w.tw.Close(); err != nil {
		return err
	}
	return w.gz.Close()
}

// Clean turns an archive path ("./usr/bin/", "/etc/passwd") into the layer's form,
// relative without a trailing slash ("usr/bin", "etc/passwd"); the root is "".
func Clean(name string) string {
	c := path.Clean("/" + name)
	return strings.TrimPrefix(c, "/")
}

// AddTree adds the files under dir, in lexical order, at prefix in the layer, owned
// by root. Their modes are normalised (directories and executables 0755, other files
// 0644), since they depend on the umask of whoever wrote them; only regular files,
// directories and symbolic links are allowed.
func (w *Writer) AddTree(dir, prefix string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := path.Join(prefix, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return w.Dir(name, 0o755, 0, 0)
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return w.Add(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target}, nil)
		case info.Mode().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			mode := int64(0o644)
			if info.Mode()&0o111 != 0 {
				mode = 0o755
			}
			return w.Add(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: info.Size()}, f)
		}
		return fmt.Errorf("%s: unsupported file type %s", p, info.Mode().Type())
	})
}
