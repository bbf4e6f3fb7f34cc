package builder

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// job is one build in progress: its sandbox, its log and its warnings.
type job struct {
	sb      *sandbox
	lang    Language
	src     string
	source  []byte // the request's source text
	opts    Options
	tools   map[Tool]string
	views   map[Tool]*view
	timeout time.Duration
	log     logBuffer
	diags   []Diagnostic
}

// parser turns one tool's output into diagnostics and the text for the log.
type parser func(out []byte, src string) (diags []Diagnostic, text []byte)

func (j *job) logf(format string, args ...any) {
	fmt.Fprintf(&j.log, format, args...)
}

// step runs one compiler step and classifies how it ended: nil, a CompileError
// (diagnostics), a LimitError (time, cpu, memory, file size) or a ToolchainError.
func (j *job) step(ctx context.Context, tool Tool, argv []string, parse parser) error {
	j.logf("$ %s %s\n", filepath.Base(argv[0]), redactPaths(strings.Join(argv[1:], " ")))
	o := j.sb.run(ctx, j.views[tool], argv)
	diags, text := parse(o.output, j.src)
	j.log.Write(text)
	if o.dropped > 0 {
		j.logf("[%d bytes of output dropped]\n", o.dropped)
	}
	name := filepath.Base(argv[0])

	if ctx.Err() != nil {
		if context.Cause(ctx) == errBuildTimeout {
			return &LimitError{Limit: LimitTime, Max: int64(j.timeout)}
		}
		return fmt.Errorf("build canceled: %w", ctx.Err())
	}
	if o.startErr != nil {
		return &ToolchainError{Tool: name, Install: install[tool], Err: fmt.Errorf("start: %w", o.startErr), Log: j.log.tail()}
	}
	if o.sandboxErr != "" {
		return &ToolchainError{Tool: "bwrap", Install: install[ToolBwrap], Log: j.log.tail(),
			Err: fmt.Errorf("cannot create the build sandbox (compilers never run outside it): %s", o.sandboxErr)}
	}
	switch o.signal {
	case 0:
	case syscall.SIGXCPU:
		return &LimitError{Limit: LimitCPU, Max: int64(j.sb.cpu)}
	case syscall.SIGXFSZ:
		return &LimitError{Limit: LimitOutputSize, Max: fileSizeLimit}
	case syscall.SIGKILL:
		// The hard cpu limit, or the kernel's OOM killer.
		if o.cpuTime >= j.sb.cpu-time.Second/2 {
			return &LimitError{Limit: LimitCPU, Max: int64(j.sb.cpu)}
		}
		return &LimitError{Limit: LimitMemory, Max: j.sb.memory}
	default:
		if outOfMemory(o.output) {
			return &LimitError{Limit: LimitMemory, Max: j.sb.memory}
		}
		return &ToolchainError{Tool: name, Err: fmt.Errorf("killed by %s", o.signal), Log: j.log.tail()}
	}
	if o.exitCode == 0 {
		j.diags = append(j.diags, diags...)
		return nil
	}
	if outOfMemory(o.output) {
		return &LimitError{Limit: LimitMemory, Max: j.sb.memory}
	}
	if crashed(o.output) {
		return &ToolchainError{Tool: name, Err: fmt.Errorf("crashed (exit status %d)", o.exitCode), Log: j.log.tail()}
	}
	for _, d := range diags {
		if d.Severity == SeverityError {
			return &CompileError{Language: j.lang, Diagnostics: append(j.diags, diags...), Log: j.log.tail()}
		}
	}
	return &ToolchainError{Tool: name, Err: fmt.Errorf("exit status %d without diagnostics", o.exitCode), Log: j.log.tail()}
}

// outOfMemory recognises the ways the compilers report a failed allocation. Only
// line starts are matched, so a quoted source line cannot trigger it.
func outOfMemory(out []byte) bool {
	return hasLine(out, "LLVM ERROR: out of memory", "terminate called after throwing an instance of 'std::bad_alloc'",
		"memory allocation of ", "FATAL ERROR: ", "<--- JS stacktrace --->", "Allocation failed")
}

// crashed recognises compiler crashes, which are the toolchain's fault.
func crashed(out []byte) bool {
	return hasLine(out, "PLEASE submit a bug report", "Stack dump:", "error: internal compiler error",
		"Error: Cannot find module", "node:internal/")
}

func hasLine(out []byte, prefixes ...string) bool {
	for _, line := range bytes.Split(out, []byte("\n")) {
		line = bytes.TrimSpace(line)
		for _, p := range prefixes {
			if bytes.HasPrefix(line, []byte(p)) {
				return true
			}
		}
	}
	return false
}

// wasmOpt shrinks the module with binaryen, keeping to the features the ABI allows
// (abi.CoreFeatures: WebAssembly 2.0 without SIMD).
func (j *job) wasmOpt(ctx context.Context, path, in string) (string, error) {
	const out = "opt.wasm"
	argv := []string{path, "-Oz", "--mvp-features", "--enable-sign-ext", "--enable-mutable-globals",
		"--enable-multivalue", "--enable-nontrapping-float-to-int", "--enable-bulk-memory", "--enable-reference-types",
		"--strip-debug", "--strip-producers", in, "-o", out}
	if err := j.step(ctx, ToolWasmOpt, argv, parseGCC); err != nil {
		return "", err
	}
	return out, nil
}

// keepsMemory reports whether the optimized module opt still has the memory the module in
// had. wasm-opt removes a memory no instruction uses and no export names, but the ABI's
// host functions (log, publish, config_get) read memory 0 through their pointers: a
// module that loses it would trap on its first host call, so it is kept unoptimized.
func (j *job) keepsMemory(in, opt string, max int) (bool, error) {
	before, err := j.sb.readOutput(in, max)
	if err != nil {
		return false, err
	}
	after, err := j.sb.readOutput(opt, max)
	if err != nil {
		return false, err
	}
	if hasMemory(before) && !hasMemory(after) {
		j.logf("wasm-opt removed memory 0, which the host functions read (export it to let wasm-opt run): module not optimized\n")
		return false, nil
	}
	return true, nil
}

// hasMemory reports whether a well-formed module defines or imports a memory: a
// non-empty memory section (5), or an import of kind 2 (a memory) in the import section (2).
func hasMemory(b []byte) bool {
	r := bytes.NewReader(b)
	if _, err := r.Seek(8, io.SeekStart); err != nil {
		return false
	}
	for {
		id, err := r.ReadByte()
		if err != nil {
			return false
		}
		size, err := binary.ReadUvarint(r)
		if err != nil || size > uint64(r.Len()) {
			return false
		}
		sec := make([]byte, size)
		_, _ = io.ReadFull(r, sec)
		switch id {
		case 5:
			if n, _ := binary.Uvarint(sec); n > 0 {
				return true
			}
		case 2:
			if importsMemory(sec) {
				return true
			}
		}
	}
}

// importsMemory walks an import section: a vector of (module name, field name, kind, type).
func importsMemory(sec []byte) bool {
	r := bytes.NewReader(sec)
	n, err := binary.ReadUvarint(r)
	for i := uint64(0); err == nil && i < n; i++ {
		for k := 0; k < 2 && err == nil; k++ { // the two names
			var l uint64
			if l, err = binary.ReadUvarint(r); err == nil {
				_, err = r.Seek(int64(l), io.SeekCurrent)
			}
		}
		kind, kerr := r.ReadByte()
		if err != nil || kerr != nil {
			return false
		}
		switch kind {
		case 0: // function: a type index
			_, err = binary.ReadUvarint(r)
		case 2:
			return true
		case 1: // table: element type, then limits
			_, err = r.ReadByte()
			err = skipLimits(r, err)
		case 3: // global: value type, mutability
			_, err = r.Seek(2, io.SeekCurrent)
		default:
			return false
		}
	}
	return false
}

func skipLimits(r *bytes.Reader, err error) error {
	if err != nil {
		return err
	}
	flags, err := r.ReadByte()
	if err != nil {
		return err
	}
	if _, err = binary.ReadUvarint(r); err == nil && flags&1 != 0 {
		_, err = binary.ReadUvarint(r)
	}
	return err
}

// logBuffer keeps at most maxCapture bytes of log; tail returns the end of it.
type logBuffer struct {
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	if room := maxCapture - l.buf.Len(); room < len(p) {
		if room > 0 {
			l.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return l.buf.Write(p)
}

// tail returns the last logTail bytes, starting at a line.
func (l *logBuffer) tail() string {
	b := l.buf.Bytes()
	if len(b) <= logTail {
		return string(b)
	}
	b = b[len(b)-logTail:]
	if i := bytes.IndexByte(b, '\n'); i >= 0 && i < len(b)-1 {
		b = b[i+1:]
	}
	return string(b)
}
