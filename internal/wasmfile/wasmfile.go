// Package wasmfile reads the file a user deploys: a WebAssembly module or source code,
// checked to be what its extension says and within the size the platform takes.
package wasmfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/tetratelabs/wazero"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
)

// Size limits.
const (
	// MaxModuleBytes leaves room for a ConfigMap's metadata under the apiserver's 1 MiB
	// limit on a ConfigMap (the console keeps the same bound).
	MaxModuleBytes = 1000 << 10
	// MaxSourceBytes is spec.source.inline.code's limit.
	MaxSourceBytes = 256 << 10
)

// Header starts every WebAssembly core module: the magic and version 1.
var Header = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

// ErrUsage marks an error in how the file was named (an unknown extension or
// language), as opposed to its content.
var ErrUsage = errors.New("usage")

// languageOfExtension maps a source file's extension to its language.
var languageOfExtension = map[string]v1.Language{
	".c":    v1.LanguageC,
	".rs":   v1.LanguageRust,
	".ts":   v1.LanguageAssemblyScript,
	".wat":  v1.LanguageWAT,
	".wast": v1.LanguageWAT,
}

// File is a module (Module set) or source code with its language.
type File struct {
	Module   []byte
	Language v1.Language
	Code     string
}

// Read reads path: a .wasm module, or source in the language of its extension
// (.c, .rs, .ts for AssemblyScript, .wat) or of language when not empty.
func Read(path string, language string) (*File, error) {
	ext := strings.ToLower(filepath.Ext(path))
	isModule := ext == ".wasm"
	var lang v1.Language
	switch {
	case isModule && language != "":
		return nil, fmt.Errorf("%w: --language is for source files; %s is a compiled module", ErrUsage, path)
	case language != "":
		lang = v1.Language(language)
		if !knownLanguage(lang) {
			return nil, fmt.Errorf("%w: --language %q: use c, rust, assemblyscript or wat", ErrUsage, language)
		}
	case !isModule:
		var ok bool
		if lang, ok = languageOfExtension[ext]; !ok {
			return nil, fmt.Errorf("%w: %s: cannot tell what %q files are: give a .wasm module, a .c, .rs, .ts (AssemblyScript) or .wat source, or --language", ErrUsage, path, ext)
		}
	}
	limit := int64(MaxSourceBytes)
	if isModule {
		limit = MaxModuleBytes
	}
	b, err := readLimited(path, limit)
	if err != nil {
		return nil, err
	}
	if isModule {
		if err := CheckModule(b); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return &File{Module: b}, nil
	}
	if err := CheckSource(b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &File{Language: lang, Code: string(b)}, nil
}

func knownLanguage(l v1.Language) bool {
	switch l {
	case v1.LanguageC, v1.LanguageRust, v1.LanguageAssemblyScript, v1.LanguageWAT:
		return true
	}
	return false
}

// readLimited reads a regular file of at most limit bytes; a larger one is refused
// before it is read.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s has %d bytes; the platform takes at most %d (%d KiB) for this kind of file", path, fi.Size(), limit, limit>>10)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s grew past %d bytes while being read", path, limit)
	}
	return b, nil
}

// CheckModule refuses bytes that are not a WebAssembly core module that compiles.
func CheckModule(b []byte) error {
	switch {
	case len(b) == 0:
		return errors.New("the file is empty, not a WebAssembly module")
	case bytes.HasPrefix(bytes.TrimSpace(b), []byte("(module")):
		return errors.New("this is WebAssembly text, not a binary module: name it .wat to deploy it as source")
	case len(b) >= 8 && bytes.HasPrefix(b, Header[:4]) && !bytes.Equal(b[4:8], Header[4:]):
		return fmt.Errorf("not a WebAssembly core module (version bytes % x; components and other versions are not supported)", b[4:8])
	case !bytes.HasPrefix(b, Header):
		return errors.New("not a WebAssembly module: it does not start with the magic bytes \\0asm and version 1")
	}
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	m, err := rt.CompileModule(ctx, b)
	if err != nil {
		return fmt.Errorf("not a valid WebAssembly module: %w", err)
	}
	return m.Close(ctx)
}

// CheckSource refuses source that is not text.
func CheckSource(b []byte) error {
	switch {
	case len(bytes.TrimSpace(b)) == 0:
		return errors.New("the file is empty")
	case bytes.HasPrefix(b, Header[:4]):
		return errors.New("this is a compiled WebAssembly module, not source: name it .wasm")
	case !utf8.Valid(b):
		return errors.New("source must be UTF-8 text; this file is not")
	case bytes.IndexByte(b, 0) >= 0:
		return errors.New("source must be text; this file holds NUL bytes")
	}
	return nil
}
