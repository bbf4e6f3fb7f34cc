package main

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

// Size limits of what deploy sends.
const (
	// maxModuleBytes leaves room for the ConfigMap's metadata under the apiserver's
	// 1 MiB limit on a ConfigMap (the console keeps the same bound).
	maxModuleBytes = 1000 << 10
	// maxSourceBytes is spec.source.inline.code's limit.
	maxSourceBytes = 256 << 10
)

// wasmHeader starts every WebAssembly core module: the magic and version 1.
var wasmHeader = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

// languageOfExtension maps a source file's extension to its language.
var languageOfExtension = map[string]v1.Language{
	".c":    v1.LanguageC,
	".rs":   v1.LanguageRust,
	".ts":   v1.LanguageAssemblyScript,
	".wat":  v1.LanguageWAT,
	".wast": v1.LanguageWAT,
}

// artifact is what deploy sends: a module, or source code with its language.
type artifact struct {
	wasm     []byte
	language v1.Language
	code     string
}

// readArtifact reads the file deploy was given and checks that it is what its
// extension (or language, when not empty) says, within the size the platform takes.
func readArtifact(path string, language string) (*artifact, error) {
	ext := strings.ToLower(filepath.Ext(path))
	isModule := ext == ".wasm"
	var lang v1.Language
	switch {
	case isModule && language != "":
		return nil, usageError("--language is for source files; %s is a compiled module", path)
	case language != "":
		lang = v1.Language(language)
		if !knownLanguage(lang) {
			return nil, usageError("--language %q: use c, rust, assemblyscript or wat", language)
		}
	case !isModule:
		var ok bool
		if lang, ok = languageOfExtension[ext]; !ok {
			return nil, usageError("%s: cannot tell what %q files are: give a .wasm module, a .c, .rs, .ts (AssemblyScript) or .wat source, or --language", path, ext)
		}
	}
	limit := int64(maxSourceBytes)
	if isModule {
		limit = maxModuleBytes
	}
	b, err := readLimited(path, limit)
	if err != nil {
		return nil, err
	}
	if isModule {
		if err := checkModule(b); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return &artifact{wasm: b}, nil
	}
	if err := checkSource(b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &artifact{language: lang, code: string(b)}, nil
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

// checkModule refuses bytes that are not a WebAssembly core module that compiles.
func checkModule(b []byte) error {
	switch {
	case len(b) == 0:
		return errors.New("the file is empty, not a WebAssembly module")
	case bytes.HasPrefix(bytes.TrimSpace(b), []byte("(module")):
		return errors.New("this is WebAssembly text, not a binary module: name it .wat to deploy it as source")
	case len(b) >= 8 && bytes.HasPrefix(b, wasmHeader[:4]) && !bytes.Equal(b[4:8], wasmHeader[4:]):
		return fmt.Errorf("not a WebAssembly core module (version bytes % x; components and other versions are not supported)", b[4:8])
	case !bytes.HasPrefix(b, wasmHeader):
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

// checkSource refuses source that is not text.
func checkSource(b []byte) error {
	switch {
	case len(bytes.TrimSpace(b)) == 0:
		return errors.New("the file is empty")
	case bytes.HasPrefix(b, wasmHeader[:4]):
		return errors.New("this is a compiled WebAssembly module, not source: name it .wasm")
	case !utf8.Valid(b):
		return errors.New("source must be UTF-8 text; this file is not")
	case bytes.IndexByte(b, 0) >= 0:
		return errors.New("source must be text; this file holds NUL bytes")
	}
	return nil
}
