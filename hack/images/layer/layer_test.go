package layer_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/hack/images/layer"
)

// build writes a layer with add and returns its bytes.
func build(t *testing.T, add func(w *layer.Writer) error) ([]byte, error) {
	t.Helper()
	var buf bytes.Buffer
	w := layer.NewWriter(&buf)
	if err := add(w); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), nil
}

// entries lists a layer's headers.
func entries(t *testing.T, b []byte) []*tar.Header {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var out []*tar.Header
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h)
	}
}

func TestSameFilesSameBytes(t *testing.T) {
	add := func(when time.Time, owner string) func(w *layer.Writer) error {
		return func(w *layer.Writer) error {
			for _, h := range []*tar.Header{
				{Typeflag: tar.TypeDir, Name: "./usr/", Mode: 0o755, ModTime: when, Uname: owner},
				{Typeflag: tar.TypeReg, Name: "./usr/hello", Mode: 0o644, Size: 2, ModTime: when, AccessTime: when, Uname: owner, Gname: owner},
				{Typeflag: tar.TypeSymlink, Name: "/usr/hi", Linkname: "hello", ModTime: when},
			} {
				if err := w.Add(h, strings.NewReader("hi")); err != nil {
					return err
				}
			}
			return nil
		}
	}
	a, err := build(t, add(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), "alice"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := build(t, add(time.Now(), "bob"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("the same files at other times and owners' names gave other bytes")
	}
	for _, h := range entries(t, a) {
		if !h.ModTime.Equal(layer.Epoch) || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: time %v, owner %q:%q", h.Name, h.ModTime, h.Uname, h.Gname)
		}
	}
}

func TestAddRefuses(t *testing.T) {
	tests := []struct {
		name string
		hdrs []*tar.Header
	}{
		{"a file added twice", []*tar.Header{{Typeflag: tar.TypeReg, Name: "a"}, {Typeflag: tar.TypeReg, Name: "./a"}}},
		{"a directory where a file is", []*tar.Header{{Typeflag: tar.TypeReg, Name: "a"}, {Typeflag: tar.TypeDir, Name: "a/"}}},
		{"a hard link to nothing", []*tar.Header{{Typeflag: tar.TypeLink, Name: "a", Linkname: "b"}}},
		{"a device", []*tar.Header{{Typeflag: tar.TypeChar, Name: "dev/null"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := build(t, func(w *layer.Writer) error {
				for _, h := range tt.hdrs {
					if err := w.Add(h, strings.NewReader("")); err != nil {
						return err
					}
				}
				return nil
			})
			if err == nil {
				t.Error("added")
			}
		})
	}
}

func TestDirectoriesOnce(t *testing.T) {
	b, err := build(t, func(w *layer.Writer) error {
		for range 2 {
			if err := w.Dir("/etc", 0o755, 0, 0); err != nil {
				return err
			}
		}
		return w.Dir("tmp", 0o1777, 0, 0)
	})
	if err != nil {
		t.Fatal(err)
	}
	got := entries(t, b)
	if len(got) != 2 || got[0].Name != "etc/" || got[1].Mode != 0o1777 {
		t.Fatalf("entries %+v, want etc/ once and tmp/ with mode 1777", got)
	}
}

func TestAddTreeIgnoresUmask(t *testing.T) {
	tree := func(fileMode os.FileMode) []byte {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "bin", "node"), []byte("elf"), fileMode|0o100); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "README"), []byte("hi"), fileMode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, "bin", "node"), fileMode|0o100); err != nil {
			t.Fatal(err)
		}
		old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
		_ = os.Chtimes(filepath.Join(dir, "README"), old, old)
		b, err := build(t, func(w *layer.Writer) error { return w.AddTree(dir, "opt/node") })
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b := tree(0o600), tree(0o664)
	if !bytes.Equal(a, b) {
		t.Fatal("the same tree written with another umask gave other bytes")
	}
	modes := map[string]int64{}
	for _, h := range entries(t, a) {
		modes[h.Name] = h.Mode
	}
	want := map[string]int64{"opt/node/": 0o755, "opt/node/README": 0o644, "opt/node/bin/": 0o755, "opt/node/bin/node": 0o755}
	for name, mode := range want {
		if modes[name] != mode {
			t.Errorf("%s: mode %o, want %o (all: %v)", name, modes[name], mode, modes)
		}
	}
}
