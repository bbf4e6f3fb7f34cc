package builder

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// langSpec is how one language is built.
type langSpec struct {
	tools []Tool
	// steps are the compiler steps, each named by the tool whose view it runs in.
	steps []Tool
	// files returns the SDK files written next to the source.
	files func() map[string][]byte
	// build runs the compiler steps and returns the module's file name.
	build func(ctx context.Context, j *job) (string, error)
}

var languages = map[Language]*langSpec{
	C: {
		tools: []Tool{ToolClang, ToolWasmLD},
		steps: []Tool{ToolClang, ToolWasmLD},
		files: func() map[string][]byte {
			return map[string][]byte{"wasmbed.h": sdk(C), "wasmbed.imports": []byte(strings.Join(abiImportNames(), "\n") + "\n")}
		},
		build: buildC,
	},
	WAT: {
		tools: []Tool{ToolWat2Wasm},
		steps: []Tool{ToolWat2Wasm},
		files: func() map[string][]byte { return nil },
		build: buildWAT,
	},
	AssemblyScript: {
		tools: []Tool{ToolNode, ToolAssemblyScript},
		steps: []Tool{ToolAssemblyScript},
		files: func() map[string][]byte { return map[string][]byte{"wasmbed.ts": sdk(AssemblyScript)} },
		build: buildAssemblyScript,
	},
	Rust: {
		tools: []Tool{ToolRustc, ToolWasmLD, ToolRustSysroot},
		steps: []Tool{ToolRustc},
		files: func() map[string][]byte { return map[string][]byte{"wasmbed.rs": sdk(Rust)} },
		build: buildRust,
	},
}

func sdk(lang Language) []byte {
	_, content, err := SDKFile(lang)
	if err != nil {
		// The files are embedded: this cannot happen in a built binary.
		return nil
	}
	return content
}

// Stack sizes, in bytes, placed first in memory so an overflow traps instead of
// overwriting data.
const (
	cStackSize    = 4 << 10
	rustStackSize = 8 << 10
)

// cFlags are the clang flags of a C build: WebAssembly 2.0 without SIMD (the ABI's
// core features, docs/abi.md; named one by one so that a compiler whose default CPU
// has more cannot slip them in), size-optimised, freestanding, no libc. Bulk memory
// turns the compiler's memcpy and memset into single instructions.
var cFlags = []string{
	"--target=wasm32", "-mcpu=mvp", "-msign-ext", "-mmutable-globals", "-mmultivalue", "-mreference-types",
	"-mbulk-memory", "-mnontrapping-fptoint",
	"-Os", "-ffreestanding", "-nostdlib", "-fno-exceptions", "-Wall", "-Werror=implicit-function-declaration",
	"-fno-color-diagnostics", "-ferror-limit=20", "-fmacro-backtrace-limit=4", "-I.",
}

func buildC(ctx context.Context, j *job) (string, error) {
	cc := append([]string{j.tools[ToolClang]}, cFlags...)
	cc = append(cc, "-c", j.src, "-o", "main.o")
	if err := j.step(ctx, ToolClang, cc, parseGCC); err != nil {
		return "", err
	}
	ld := []string{j.tools[ToolWasmLD],
		"--no-entry", "--strip-all", "--gc-sections", "--stack-first",
		"-z", fmt.Sprintf("stack-size=%d", cStackSize),
		fmt.Sprintf("--initial-memory=%d", j.opts.MemoryPages*65536),
		"--allow-undefined-file=wasmbed.imports",
		"main.o", "-o", "main.wasm"}
	if err := j.step(ctx, ToolWasmLD, ld, parseGCC); err != nil {
		return "", err
	}
	return "main.wasm", nil
}

// watFlags are the wat2wasm flags: wabt's WebAssembly 2.0 features stay on (the
// ABI's core features), SIMD goes.
var watFlags = []string{"--disable-simd"}

func buildWAT(ctx context.Context, j *job) (string, error) {
	argv := append([]string{j.tools[ToolWat2Wasm]}, watFlags...)
	argv = append(argv, j.src, "-o", "main.wasm")
	if err := j.step(ctx, ToolWat2Wasm, argv, parseGCC); err != nil {
		return "", err
	}
	return "main.wasm", nil
}

// ascFlags are the asc flags: the stub runtime (bump allocator, no GC), maximum
// size optimisation, no abort import, and only sign-extension and mutable globals
// beyond WebAssembly 1.0.
var ascFlags = []string{
	"--runtime", "stub", "-O3z", "--noAssert", "--noColors", "--use", "abort=",
	"--disable", "bulk-memory,nontrapping-f2i,simd,reference-types,multi-value",
}

func buildAssemblyScript(ctx context.Context, j *job) (string, error) {
	heapMiB := j.sb.memory >> 21 // half the data limit for V8's heap
	argv := []string{j.tools[ToolNode], fmt.Sprintf("--max-old-space-size=%d", heapMiB), j.tools[ToolAssemblyScript],
		j.src, "--outFile", "main.wasm"}
	argv = append(argv, ascFlags...)
	argv = append(argv, "--initialMemory", fmt.Sprint(j.opts.MemoryPages))
	if err := j.step(ctx, ToolAssemblyScript, argv, parseASC); err != nil {
		return "", err
	}
	return "main.wasm", nil
}

// rustFeatures are the WebAssembly features of a Rust build, the ABI's core
// features; hack/rust-sysroot.sh builds core and alloc with the same.
const rustFeatures = "+sign-ext,+mutable-globals,+multivalue,+reference-types,+bulk-memory,+nontrapping-fptoint"

// rustFlags are the rustc flags of a Rust build: a no_std cdylib for
// wasm32-unknown-unknown, size-optimised, panic=abort, stripped, linked by wasm-ld
// against the wasm32 sysroot.
var rustFlags = []string{
	"--crate-type=cdylib", "--crate-name=app", "--target=wasm32-unknown-unknown",
	"-C", "target-cpu=mvp", "-C", "target-feature=" + rustFeatures, "-C", "opt-level=z", "-C", "panic=abort", "-C", "lto",
	"-C", "codegen-units=1", "-C", "strip=symbols", "-C", "debuginfo=0", "--error-format=json",
}

// Rust editions a source may ask for with a `//@ edition: <year>` line before its first
// item, the header rustc's own test suite uses; 2021 when it asks for none.
var rustEditions = []string{"2015", "2018", "2021", "2024"}

const defaultRustEdition = "2021"

// rustEdition reads the edition header from the comment lines that open src; a bad
// one is an error at its line.
func rustEdition(src []byte) (edition string, line int, err error) {
	for i, line := range strings.Split(string(src), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "//") {
			break
		}
		v, ok := strings.CutPrefix(line, "//@")
		if !ok {
			continue
		}
		v, ok = strings.CutPrefix(strings.TrimSpace(v), "edition:")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if !slices.Contains(rustEditions, v) {
			return "", i + 1, fmt.Errorf("edition %q: want one of %s", v, strings.Join(rustEditions, ", "))
		}
		return v, i + 1, nil
	}
	return defaultRustEdition, 0, nil
}

func buildRust(ctx context.Context, j *job) (string, error) {
	edition, line, err := rustEdition(j.source)
	if err != nil {
		return "", &CompileError{Language: Rust, Diagnostics: []Diagnostic{{File: filepath.Base(j.src), Line: line, Severity: SeverityError, Message: err.Error()}}}
	}
	argv := append([]string{j.tools[ToolRustc], "--edition=" + edition}, rustFlags...)
	argv = append(argv,
		"--sysroot", j.tools[ToolRustSysroot],
		"-C", "linker="+j.tools[ToolWasmLD],
		"-C", fmt.Sprintf("link-arg=--initial-memory=%d", j.opts.MemoryPages*65536),
		"-C", fmt.Sprintf("link-arg=-zstack-size=%d", rustStackSize),
		"-C", "link-arg=--stack-first",
		"-o", "main.wasm", j.src)
	if err := j.step(ctx, ToolRustc, argv, parseRustc); err != nil {
		return "", err
	}
	return "main.wasm", nil
}
