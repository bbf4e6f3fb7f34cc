package wasmfile_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/wasmfile"
	wasmfix "github.com/wasmbed/wasmbed/testdata/wasm"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	wat, _ := wasmfix.FS.ReadFile("blink.wat")
	for _, tc := range []struct {
		file, language string
		data           []byte
		module         bool
		lang           v1.Language
		err            string
	}{
		{file: "blink.wasm", data: wasmfix.Blink, module: true},
		{file: "BLINK.WASM", data: wasmfix.Blink, module: true},
		{file: "blink.wat", data: wat, lang: v1.LanguageWAT},
		{file: "main.c", data: []byte("int main(void) { return 0; }"), lang: v1.LanguageC},
		{file: "lib.rs", data: []byte("fn main() {}"), lang: v1.LanguageRust},
		{file: "index.ts", data: []byte("export function setup(): void {}"), lang: v1.LanguageAssemblyScript},
		{file: "app.txt", language: "rust", data: []byte("fn main() {}"), lang: v1.LanguageRust},
		{file: "app.py", data: []byte("x"), err: `cannot tell what ".py" files are`},
		{file: "text.wasm", data: []byte("  (module)"), err: "WebAssembly text"},
		{file: "trunc.wasm", data: wasmfix.Blink[:len(wasmfix.Blink)-1], err: "not a valid WebAssembly module"},
		{file: "hdr.wasm", data: wasmfix.Blink[:8], module: true}, // the empty module
		{file: "short.wasm", data: []byte{0, 'a', 's'}, err: "does not start with the magic bytes"},
		{file: "blink.c", data: wasmfix.Blink, err: "compiled WebAssembly module, not source"},
		{file: "blank.c", data: []byte(" \n\t"), err: "the file is empty"},
	} {
		path := filepath.Join(dir, tc.file)
		if err := os.WriteFile(path, tc.data, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := wasmfile.Read(path, tc.language)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.file, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.file, err)
		case tc.module && !bytes.Equal(f.Module, tc.data):
			t.Errorf("%s: module of %d bytes", tc.file, len(f.Module))
		case !tc.module && (f.Language != tc.lang || f.Code != string(tc.data) || f.Module != nil):
			t.Errorf("%s: %+v", tc.file, f)
		}
	}
}

// FuzzChecks feeds arbitrary bytes to the checks of a deployed file: they never panic,
// what CheckModule accepts starts with the module header, and what CheckSource accepts
// is text.
func FuzzChecks(f *testing.F) {
	f.Add(wasmfix.Blink)
	f.Add([]byte("(module)"))
	f.Add([]byte{0, 'a', 's', 'm', 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if wasmfile.CheckModule(b) == nil && !bytes.HasPrefix(b, wasmfile.Header) {
			t.Fatalf("accepted a module without the header: % x", b[:min(len(b), 8)])
		}
		if wasmfile.CheckSource(b) == nil && bytes.IndexByte(b, 0) >= 0 {
			t.Fatal("accepted source with a NUL byte")
		}
	})
}
