package builder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/wasmbed/wasmbed/api/digest"
)

// Language is the language of a Request's source.
type Language string

// The languages the builder compiles.
const (
	C              Language = "c"
	AssemblyScript Language = "assemblyscript"
	WAT            Language = "wat"
	Rust           Language = "rust"
)

// Languages lists every supported language.
var Languages = []Language{C, AssemblyScript, WAT, Rust}

// SourceName is the fixed file name a build gives the source of lang (main.c,
// main.ts, main.wat, main.rs); diagnostics name it.
func SourceName(lang Language) string {
	switch lang {
	case C:
		return "main.c"
	case AssemblyScript:
		return "main.ts"
	case WAT:
		return "main.wat"
	case Rust:
		return "main.rs"
	}
	return ""
}

// Defaults, in one place.
const (
	// DefaultTimeout bounds a whole build, every compiler step included.
	DefaultTimeout = 60 * time.Second
	// DefaultMaxSourceSize is the largest source a Request may carry.
	DefaultMaxSourceSize = 256 << 10
	// DefaultMaxOutputSize is the largest module a build may produce.
	DefaultMaxOutputSize = 256 << 10
	// DefaultMemoryLimit is the data-segment limit (RLIMIT_DATA) of each compiler process.
	DefaultMemoryLimit = 1 << 30
	// DefaultMemoryPages is the initial linear memory of C and Rust modules, in 64 KiB pages.
	DefaultMemoryPages = 1
	// fileSizeLimit (RLIMIT_FSIZE) caps every file a compiler writes, objects included.
	fileSizeLimit = 64 << 20
	// logTail is how much of the compilers' output a Result or error keeps.
	logTail = 8 << 10
)

// Request is one build: a single source file and its options.
type Request struct {
	// Language of Source.
	Language Language
	// Source is the text of the single source file, at most DefaultMaxSourceSize bytes.
	Source []byte
	// Options tune the build; the zero value is fine.
	Options Options
}

// Options tune one build. Zero values mean the builder's defaults.
type Options struct {
	// Optimize runs wasm-opt -Oz (MVP features only) on the module when binaryen is installed.
	Optimize bool
	// MaxOutputSize refuses modules larger than this many bytes (default DefaultMaxOutputSize).
	MaxOutputSize int
	// Timeout bounds this build; it cannot exceed the builder's timeout.
	Timeout time.Duration
	// MemoryPages is the initial memory of C and Rust modules in 64 KiB pages (default 1).
	MemoryPages int
}

// Result is a successful build.
type Result struct {
	// Module is the WebAssembly binary.
	Module []byte
	// Digest names Module; artifacts are addressed by it.
	Digest digest.Digest
	// Size is len(Module).
	Size int
	// Toolchain names the tools and versions that produced Module, e.g. "clang 14.0.6, wasm-ld 14.0.6".
	Toolchain string
	// Optimized reports whether wasm-opt ran.
	Optimized bool
	// Diagnostics are the compilers' warnings and notes.
	Diagnostics []Diagnostic
	// Log is the tail of the compilers' output, with the commands that ran.
	Log string
	// Sandbox describes the isolation the compilers ran under.
	Sandbox string
	// Duration is the wall time of the build.
	Duration time.Duration
}

// Severity of a Diagnostic.
type Severity string

// Diagnostic severities.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
	SeverityNote    Severity = "note"
)

// Diagnostic is one compiler message about the user's source. Line and Column
// are 1-based; 0 means unknown.
type Diagnostic struct {
	File     string   `json:"file"`
	Line     int      `json:"line,omitempty"`
	Column   int      `json:"column,omitempty"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
}

// String formats d like a compiler does: "main.c:3:5: error: expected ';'".
func (d Diagnostic) String() string {
	var b strings.Builder
	b.WriteString(d.File)
	if d.Line > 0 {
		fmt.Fprintf(&b, ":%d", d.Line)
		if d.Column > 0 {
			fmt.Fprintf(&b, ":%d", d.Column)
		}
	}
	fmt.Fprintf(&b, ": %s: %s", d.Severity, d.Message)
	return b.String()
}

// Tool names an external program the builder runs.
type Tool string

// The external programs, as named in Config.WithTool.
const (
	ToolClang    Tool = "clang"
	ToolWasmLD   Tool = "wasm-ld"
	ToolWat2Wasm Tool = "wat2wasm"
	ToolNode     Tool = "node"
	// ToolAssemblyScript is the directory holding node_modules/assemblyscript.
	ToolAssemblyScript Tool = "assemblyscript"
	ToolRustc          Tool = "rustc"
	// ToolRustSysroot is the directory holding rustc's wasm32 core, compiler_builtins
	// and alloc (lib/rustlib/wasm32-unknown-unknown/lib), which hack/rust-sysroot.sh
	// builds. Empty: ${XDG_CACHE_HOME:-~/.cache}/wasmbed/rust-wasm32/<rustc version>.
	ToolRustSysroot Tool = "rust-sysroot"
	ToolWasmOpt     Tool = "wasm-opt"
	ToolPrlimit     Tool = "prlimit"
	// ToolBwrap is bubblewrap, which puts every compiler step in its own namespaces.
	ToolBwrap Tool = "bwrap"
)

// Config is the builder's immutable configuration: each With method returns a
// modified copy. Start from NewConfig.
type Config struct {
	tools         map[Tool]string
	timeout       time.Duration
	memoryLimit   int64
	maxSourceSize int
	maxOutputSize int
	tempDir       string
	user          *[2]int
}

// NewConfig returns the defaults: Debian's tool names on PATH (clang-19,
// wasm-ld-19, wat2wasm, node, /usr/bin/rustc of rustc-web, wasm-opt, prlimit, bwrap),
// AssemblyScript in $WASMBED_ASC_DIR or ${XDG_CACHE_HOME:-~/.cache}/wasmbed/builder, Rust's
// wasm32 sysroot in $WASMBED_RUST_SYSROOT or the cache (ToolRustSysroot), and the
// Default* limits.
func NewConfig() Config {
	return Config{
		tools: map[Tool]string{
			ToolClang:          "clang-19",
			ToolWasmLD:         "wasm-ld-19",
			ToolWat2Wasm:       "wat2wasm",
			ToolNode:           "node",
			ToolAssemblyScript: defaultASCDir(),
			ToolRustc:          "/usr/bin/rustc",
			ToolRustSysroot:    os.Getenv("WASMBED_RUST_SYSROOT"),
			ToolWasmOpt:        "wasm-opt",
			ToolPrlimit:        "prlimit",
			ToolBwrap:          "bwrap",
		},
		timeout:       DefaultTimeout,
		memoryLimit:   DefaultMemoryLimit,
		maxSourceSize: DefaultMaxSourceSize,
		maxOutputSize: DefaultMaxOutputSize,
	}
}

func defaultASCDir() string {
	if d := os.Getenv("WASMBED_ASC_DIR"); d != "" {
		return d
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = "/nonexistent"
		}
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "wasmbed", "builder")
}

// WithTool sets the program (a name on PATH or an absolute path) used for t.
// For ToolAssemblyScript it is the directory that holds node_modules, for
// ToolRustSysroot the wasm32 sysroot.
func (c Config) WithTool(t Tool, path string) Config {
	tools := make(map[Tool]string, len(c.tools))
	for k, v := range c.tools {
		tools[k] = v
	}
	tools[t] = path
	c.tools = tools
	return c
}

// WithTimeout bounds every build (default DefaultTimeout).
func (c Config) WithTimeout(d time.Duration) Config {
	if d > 0 {
		c.timeout = d
	}
	return c
}

// WithMemoryLimit sets the RLIMIT_DATA of each compiler process, in bytes.
func (c Config) WithMemoryLimit(bytes int64) Config {
	if bytes > 0 {
		c.memoryLimit = bytes
	}
	return c
}

// WithMaxOutputSize sets the default module size cap in bytes.
func (c Config) WithMaxOutputSize(n int) Config {
	if n > 0 {
		c.maxOutputSize = n
	}
	return c
}

// WithTempDir sets where per-build directories are created (default os.TempDir()).
func (c Config) WithTempDir(dir string) Config {
	c.tempDir = dir
	return c
}

// WithUser starts the sandbox (bwrap) as the host user uid:gid instead of the
// builder's own; the builder must be root to do so, and the toolchains must be
// readable by that user. Inside the sandbox the compilers are uid 65534 either way.
func (c Config) WithUser(uid, gid int) Config {
	c.user = &[2]int{uid, gid}
	return c
}

// Builder compiles requests with one Config. It is safe for concurrent use.
type Builder struct {
	cfg Config

	mu       sync.Mutex
	versions map[string]string
	views    map[string]*view
}

// New returns a Builder for cfg.
func New(cfg Config) *Builder {
	if cfg.tools == nil {
		cfg = NewConfig()
	}
	return &Builder{cfg: cfg, versions: map[string]string{}, views: map[string]*view{}}
}

var defaultBuilder = New(NewConfig())

// Build compiles req with the default configuration (NewConfig).
func Build(ctx context.Context, req Request) (Result, error) {
	return defaultBuilder.Build(ctx, req)
}

// Build compiles req. A problem with the source is a *CompileError or a
// *LimitError; a missing or broken toolchain is a *ToolchainError; see IsUserError.
func (b *Builder) Build(ctx context.Context, req Request) (Result, error) {
	start := time.Now()
	if b.cfg.tools == nil {
		return Result{}, errors.New("builder not created with New")
	}
	lang, ok := languages[req.Language]
	if !ok {
		return Result{}, fmt.Errorf("%w %q (want c, assemblyscript, wat or rust)", ErrUnknownLanguage, string(req.Language))
	}
	if len(strings.TrimSpace(string(req.Source))) == 0 {
		return Result{}, ErrEmptySource
	}
	if len(req.Source) > b.cfg.maxSourceSize {
		return Result{}, &LimitError{Limit: LimitSourceSize, Max: int64(b.cfg.maxSourceSize), Got: int64(len(req.Source))}
	}
	opts := req.Options
	if opts.MaxOutputSize <= 0 {
		opts.MaxOutputSize = b.cfg.maxOutputSize
	}
	if opts.MemoryPages <= 0 {
		opts.MemoryPages = DefaultMemoryPages
	}
	if opts.MemoryPages > 65536 {
		return Result{}, fmt.Errorf("%w: memory pages %d over 65536", ErrInvalidRequest, opts.MemoryPages)
	}
	timeout := b.cfg.timeout
	if opts.Timeout > 0 && opts.Timeout < timeout {
		timeout = opts.Timeout
	}

	src := SourceName(req.Language)
	if diags := checkSource(req.Language, src, req.Source); len(diags) > 0 {
		return Result{}, &CompileError{Language: req.Language, Diagnostics: diags}
	}

	tc, err := b.toolchain(ctx, lang)
	if err != nil {
		return Result{}, err
	}
	steps := lang.steps
	if opts.Optimize {
		if wasmOpt, err := b.resolve(ToolWasmOpt); err == nil {
			tc.paths[ToolWasmOpt] = wasmOpt
			steps = append(steps[:len(steps):len(steps)], ToolWasmOpt)
		}
	}
	views, err := b.stepViews(ctx, steps, tc.paths)
	if err != nil {
		return Result{}, err
	}

	ctx, cancel := context.WithTimeoutCause(ctx, timeout, errBuildTimeout)
	defer cancel()
	sb, err := b.newSandbox(timeout)
	if err != nil {
		return Result{}, err
	}
	defer sb.close()

	if err := sb.writeFile(src, req.Source); err != nil {
		return Result{}, err
	}
	for name, content := range lang.files() {
		if err := sb.writeFile(name, content); err != nil {
			return Result{}, err
		}
	}

	job := &job{sb: sb, lang: req.Language, src: src, source: req.Source, opts: opts, tools: tc.paths, views: views, timeout: timeout}
	out, err := lang.build(ctx, job)
	if err != nil {
		return Result{}, err
	}
	res := Result{Toolchain: tc.version, Sandbox: sb.describe()}
	if wasmOpt, ok := tc.paths[ToolWasmOpt]; ok {
		opt, err := job.wasmOpt(ctx, wasmOpt, out)
		if err != nil {
			return Result{}, err
		}
		kept, err := job.keepsMemory(out, opt, opts.MaxOutputSize)
		if err != nil {
			return Result{}, err
		}
		if kept {
			out = opt
			res.Optimized = true
			res.Toolchain += ", " + b.version(ctx, ToolWasmOpt, wasmOpt)
		}
	} else if opts.Optimize {
		job.logf("wasm-opt not installed (apt-get install binaryen): module not optimized\n")
	}

	module, err := sb.readOutput(out, opts.MaxOutputSize)
	if err != nil {
		return Result{}, err
	}
	if diags := checkModule(ctx, src, module); len(diags) > 0 {
		return Result{}, &CompileError{Language: req.Language, Diagnostics: diags, Log: job.log.tail()}
	}
	res.Module = module
	res.Digest = digest.Of(module)
	res.Size = len(module)
	res.Diagnostics = job.diags
	res.Log = job.log.tail()
	res.Duration = time.Since(start)
	return res, nil
}
