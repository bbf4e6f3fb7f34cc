package builder_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmbed/wasmbed/api/abi"
	"github.com/wasmbed/wasmbed/builder"
)

// exampleFiles maps each language to its example file extension.
var exampleExt = map[builder.Language]string{
	builder.C: ".c", builder.WAT: ".wat", builder.AssemblyScript: ".ts", builder.Rust: ".rs",
}

var exampleNames = []string{"blink", "sensor-telemetry", "config-driven"}

func readExample(t testing.TB, lang builder.Language, name string) []byte {
	t.Helper()
	p := filepath.Join("..", "examples", string(lang), name+exampleExt[lang])
	src, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read example: %v", err)
	}
	return src
}

// build fails the test with the builder's message (which names the package to
// install when a toolchain is missing) instead of skipping.
func build(t testing.TB, b *builder.Builder, req builder.Request) builder.Result {
	t.Helper()
	res, err := b.Build(context.Background(), req)
	if err != nil {
		var ce *builder.CompileError
		if errors.As(err, &ce) {
			t.Fatalf("build %s: %v\n%s", req.Language, err, ce.Log)
		}
		t.Fatalf("build %s: %v", req.Language, err)
	}
	return res
}

// host is a fake of the wasmbed host functions that records what a module did.
type host struct {
	leds      map[int32]int32
	published map[string]string
	logs      []string
	config    map[string]string
}

func (h *host) instantiate(ctx context.Context, rt wazero.Runtime) error {
	mem := func(m api.Module, ptr, n uint32) string {
		b, ok := m.Memory().Read(ptr, n)
		if !ok {
			panic("out of bounds memory access")
		}
		return string(b)
	}
	_, err := rt.NewHostModuleBuilder("wasmbed").
		NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, level, ptr, n uint32) {
		h.logs = append(h.logs, mem(m, ptr, n))
	}).Export("log").
		NewFunctionBuilder().WithFunc(func() int64 { return 1234 }).Export("clock_ms").
		NewFunctionBuilder().WithFunc(func(int32) {}).Export("sleep_ms").
		NewFunctionBuilder().WithFunc(func() {}).Export("yield").
		NewFunctionBuilder().WithFunc(func(pin, level int32) int32 { return 0 }).Export("gpio_write").
		NewFunctionBuilder().WithFunc(func(pin int32) int32 { return 0 }).Export("gpio_read").
		NewFunctionBuilder().WithFunc(func(led, on int32) int32 { h.leds[led] = on; return 0 }).Export("led_set").
		NewFunctionBuilder().WithFunc(func(sensor int32) int32 { return 21500 }).Export("sensor_read").
		NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, tp, tl, dp, dl uint32) int32 {
		h.published[mem(m, tp, tl)] = mem(m, dp, dl)
		return 0
	}).Export("publish").
		NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, kp, kl, bp, bc uint32) int32 {
		v, ok := h.config[mem(m, kp, kl)]
		if !ok {
			return -1
		}
		n := min(uint32(len(v)), bc)
		m.Memory().Write(bp, []byte(v)[:n])
		return int32(len(v))
	}).Export("config_get").
		Instantiate(ctx)
	return err
}

// TestExamples builds every example in every language with the real toolchains,
// checks the module with wazero and runs setup and two loops against a fake host.
func TestExamples(t *testing.T) {
	b := builder.New(builder.NewConfig())
	var report []string
	for _, lang := range builder.Languages {
		for _, name := range exampleNames {
			t.Run(string(lang)+"/"+name, func(t *testing.T) {
				res := build(t, b, builder.Request{Language: lang, Source: readExample(t, lang, name), Options: builder.Options{Optimize: true}})
				sum := sha256.Sum256(res.Module)
				if want := "sha256:" + hex.EncodeToString(sum[:]); string(res.Digest) != want || res.Size != len(res.Module) {
					t.Fatalf("digest %s size %d, want %s %d", res.Digest, res.Size, want, len(res.Module))
				}
				if res.Toolchain == "" {
					t.Error("no toolchain version")
				}
				if res.Size > 2048 {
					t.Errorf("module is %d bytes, want a small module (<= 2 KiB)", res.Size)
				}
				pages := checkModule(t, res.Module)
				if (lang == builder.C || lang == builder.WAT || lang == builder.Rust) && pages > 1 {
					t.Errorf("memory has %d pages, want 1", pages)
				}
				runExample(t, name, res.Module)
				report = append(report, fmt.Sprintf("%-15s %-17s %5d bytes  %d page(s)  %-8s %s", lang, name, res.Size, pages, res.Duration.Round(time.Millisecond), res.Toolchain))
			})
		}
	}
	t.Logf("module sizes:\n%s", strings.Join(report, "\n"))
}

// A WAT module whose memory is neither exported nor used by its own instructions, only
// read by the host through log's pointer, keeps that memory through wasm-opt.
func TestHostReadMemoryKept(t *testing.T) {
	const src = `(module
  (import "wasmbed" "log" (func $log (param i32 i32 i32)))
  (memory 1)
  (data (i32.const 16) "hello")
  (func (export "loop") (result i32)
    (call $log (i32.const 1) (i32.const 16) (i32.const 5))
    (i32.const -1)))`
	res := build(t, builder.New(builder.NewConfig()), builder.Request{Language: builder.WAT, Source: []byte(src), Options: builder.Options{Optimize: true}})
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	h := &host{leds: map[int32]int32{}, published: map[string]string{}}
	if err := h.instantiate(ctx, rt); err != nil {
		t.Fatalf("host module: %v", err)
	}
	mod, err := rt.InstantiateWithConfig(ctx, res.Module, wazero.NewModuleConfig().WithName("app"))
	if err != nil {
		t.Fatalf("instantiate: %v", err)
	}
	if _, err := mod.ExportedFunction("loop").Call(ctx); err != nil {
		t.Fatalf("loop: %v (log: %s)", err, res.Log)
	}
	if len(h.logs) != 1 || h.logs[0] != "hello" {
		t.Fatalf("logs %q, want [hello]", h.logs)
	}
}

// checkModule compiles module with the features of the ABI (abi.CoreFeatures: wasm-opt
// may use them, a data count section at least) and checks the application contract; it
// returns the memory's pages.
func checkModule(t *testing.T, module []byte) uint32 {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCoreFeatures(abi.CoreFeatures))
	defer rt.Close(ctx)
	cm, err := rt.CompileModule(ctx, module)
	if err != nil {
		t.Fatalf("compile with wazero: %v", err)
	}
	for _, f := range cm.ImportedFunctions() {
		if mod, name, _ := f.Import(); mod != "wasmbed" {
			t.Errorf("import %s.%s, want only wasmbed.*", mod, name)
		}
	}
	if len(cm.ImportedMemories()) != 0 {
		t.Error("module imports a memory")
	}
	loop, ok := cm.ExportedFunctions()["loop"]
	if !ok {
		t.Fatal("no loop export")
	}
	if len(loop.ParamTypes()) != 0 || len(loop.ResultTypes()) != 1 || loop.ResultTypes()[0] != api.ValueTypeI32 {
		t.Errorf("loop has params %v results %v, want () -> i32", loop.ParamTypes(), loop.ResultTypes())
	}
	var pages uint32
	for _, m := range cm.ExportedMemories() {
		pages = m.Min()
	}
	return pages
}

func runExample(t *testing.T, name string, module []byte) {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	h := &host{leds: map[int32]int32{}, published: map[string]string{}, config: map[string]string{"period_ms": "250"}}
	if err := h.instantiate(ctx, rt); err != nil {
		t.Fatalf("host module: %v", err)
	}
	mod, err := rt.InstantiateWithConfig(ctx, module, wazero.NewModuleConfig().WithName("app"))
	if err != nil {
		t.Fatalf("instantiate: %v", err)
	}
	if setup := mod.ExportedFunction("setup"); setup != nil {
		if _, err := setup.Call(ctx); err != nil {
			t.Fatalf("setup: %v", err)
		}
	}
	loop := mod.ExportedFunction("loop")
	var delays []int32
	var leds []int32
	for range 2 {
		r, err := loop.Call(ctx)
		if err != nil {
			t.Fatalf("loop: %v", err)
		}
		delays = append(delays, int32(r[0]))
		leds = append(leds, h.leds[0])
	}
	switch name {
	case "blink":
		if delays[0] != 500 || leds[0] == leds[1] {
			t.Errorf("blink: delays %v leds %v, want 500 and a toggling LED", delays, leds)
		}
	case "config-driven":
		if delays[0] != 250 || leds[0] == leds[1] {
			t.Errorf("config-driven: delays %v leds %v, want 250 (period_ms) and a toggling LED", delays, leds)
		}
	case "sensor-telemetry":
		if got := h.published["temperature"]; got != "21500" || delays[0] != 1000 {
			t.Errorf("sensor-telemetry: published %q delay %v, want \"21500\" every 1000 ms", got, delays)
		}
	}
}

// TestCompileErrors checks that a mistake in the source comes back as a
// CompileError whose first error names the right file, line and column.
func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name       string
		lang       builder.Language
		src        string
		want       string // prefix of the first error, file:line[:col]
		wantInText string
	}{
		{"c syntax", builder.C, "#include \"wasmbed.h\"\nWASMBED_EXPORT(loop) int32_t loop(void) {\n    return 500\n}\n", "main.c:3:15: error:", "expected ';'"},
		{"c undeclared", builder.C, "#include \"wasmbed.h\"\n\nWASMBED_EXPORT(loop) int32_t loop(void) {\n    led_sett(0, 1);\n    return 500;\n}\n", "main.c:4:5: error:", "led_sett"},
		{"c undefined at link", builder.C, "#include \"wasmbed.h\"\nint32_t helper(void);\nWASMBED_EXPORT(loop) int32_t loop(void) { return helper(); }\n", "main.c: error:", "undefined symbol: helper"},
		{"c no loop", builder.C, "#include \"wasmbed.h\"\nWASMBED_EXPORT(setup) void setup(void) {}\n", "main.c: error:", "export loop: missing"},
		{"wat", builder.WAT, "(module\n  (func (export \"loop\") (result i32)\n    (i32.konst 1)))\n", "main.wat:3:6: error:", "i32.konst"},
		{"wat simd refused", builder.WAT, "(module\n  (func (export \"loop\") (result i32)\n    (drop (v128.const i32x4 0 0 0 0))\n    (i32.const 0)))\n", "main.wat:3:12: error:", "v128"},
		{"wat foreign import", builder.WAT, "(module\n  (import \"env\" \"f\" (func))\n  (func (export \"loop\") (result i32) (i32.const 0)))\n", "main.wat: error:", "env.f"},
		{"assemblyscript", builder.AssemblyScript, "import { ledSet } from \"./wasmbed\";\n\nexport function loop(): i32 {\n  ledSet(0, truee);\n  return 500;\n}\n", "main.ts:4:13: error:", "truee"},
		{"rust", builder.Rust, "#![no_std]\nmod wasmbed;\n#[export_name = \"loop\"]\npub extern \"C\" fn app_loop() -> i32 {\n    let x: i32 = \"500\";\n    x\n}\n", "main.rs:5:18: error:", "mismatched types"},
		{"rust unknown edition", builder.Rust, "//! blink\n//@ edition: 2027\n#![no_std]\n", "main.rs:2: error:", `edition "2027": want one of 2015, 2018, 2021, 2024`},
		// Edition 2024 wants extern blocks marked unsafe; 2021 (the default) does not.
		{"rust edition 2024", builder.Rust, "//@ edition: 2024\n#![no_std]\nmod wasmbed;\nextern \"C\" {\n    fn helper() -> i32;\n}\n#[unsafe(export_name = \"loop\")]\npub extern \"C\" fn app_loop() -> i32 { unsafe { helper() } }\n", "main.rs:4:1: error:", "unsafe"},
	}
	b := builder.New(builder.NewConfig())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.Build(context.Background(), builder.Request{Language: tt.lang, Source: []byte(tt.src)})
			var ce *builder.CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v (%T), want *CompileError", err, err)
			}
			if !builder.IsUserError(err) {
				t.Error("IsUserError = false, want true")
			}
			first := ce.Errors()[0].String()
			if !strings.HasPrefix(first, tt.want) || !strings.Contains(first, tt.wantInText) {
				t.Errorf("first error %q, want prefix %q containing %q\nlog:\n%s", first, tt.want, tt.wantInText, ce.Log)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Error() = %q, want prefix %q", err.Error(), tt.want)
			}
			if strings.Contains(err.Error(), "goroutine") || strings.Contains(err.Error(), "/tmp/") {
				t.Errorf("Error() leaks internals: %q", err.Error())
			}
		})
	}
}

// TestWarningsOnSuccess checks that warnings of a successful build are reported.
func TestWarningsOnSuccess(t *testing.T) {
	src := "#include \"wasmbed.h\"\nWASMBED_EXPORT(loop) int32_t loop(void) {\n    int unused;\n    return 500;\n}\n"
	res := build(t, builder.New(builder.NewConfig()), builder.Request{Language: builder.C, Source: []byte(src)})
	if len(res.Diagnostics) == 0 || res.Diagnostics[0].Severity != builder.SeverityWarning || res.Diagnostics[0].Line != 3 {
		t.Errorf("diagnostics %v, want a warning on line 3", res.Diagnostics)
	}
}

// TestTimeout checks that a pathological build (a C file that includes itself
// 2^40 times) is killed at the deadline, process group and all.
func TestTimeout(t *testing.T) {
	tmp := t.TempDir()
	b := builder.New(builder.NewConfig().WithTempDir(tmp))
	src := "#if __INCLUDE_LEVEL__ < 40\n#include \"main.c\"\n#include \"main.c\"\n#endif\nint x;\n"
	start := time.Now()
	_, err := b.Build(context.Background(), builder.Request{Language: builder.C, Source: []byte(src), Options: builder.Options{Timeout: 2 * time.Second}})
	elapsed := time.Since(start)
	var le *builder.LimitError
	if !errors.As(err, &le) || le.Limit != builder.LimitTime {
		t.Fatalf("err = %v (%T), want a time LimitError", err, err)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !builder.IsUserError(err) {
		t.Errorf("timeout does not match DeadlineExceeded or is not a user error: %v", err)
	}
	if elapsed > 5*time.Second {
		t.Errorf("build took %s, want it killed at 2s", elapsed)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("build dir not removed: %v", entries)
	}
	if pids := processesIn(tmp); len(pids) != 0 {
		t.Errorf("compiler processes survived the timeout: %v", pids)
	}
	t.Logf("%v after %s", err, elapsed.Round(time.Millisecond))
}

// processesIn lists the processes whose working directory is under dir, or whose
// command line names it (bwrap, whose sandbox dies with it).
func processesIn(dir string) []string {
	var pids []string
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		cwd, _ := os.Readlink(filepath.Join(p, "cwd"))
		cmdline, _ := os.ReadFile(filepath.Join(p, "cmdline"))
		if strings.HasPrefix(cwd, dir) || strings.Contains(string(cmdline), dir) {
			pids = append(pids, filepath.Base(p))
		}
	}
	return pids
}

// TestConcurrentBuilds hammers one Builder from several goroutines.
func TestConcurrentBuilds(t *testing.T) {
	b := builder.New(builder.NewConfig())
	langs := []builder.Language{builder.C, builder.WAT}
	errs := make(chan error, 8)
	digests := make(chan string, 8)
	for i := range 8 {
		go func() {
			lang := langs[i%2]
			res, err := b.Build(context.Background(), builder.Request{Language: lang, Source: readExample(t, lang, "blink")})
			errs <- err
			digests <- string(lang) + " " + res.Digest.String()
		}()
	}
	seen := map[string]bool{}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		seen[<-digests] = true
	}
	if len(seen) != 2 {
		t.Errorf("builds are not reproducible: %v", seen)
	}
}

// TestDropUser checks that, as root, the sandbox can be started as an
// unprivileged host user, and that the compilers still build and see nothing else.
func TestDropUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch users; the builder image runs unprivileged instead")
	}
	secret := filepath.Join(t.TempDir(), "secret.h")
	if err := os.WriteFile(secret, []byte("#error leaked\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := builder.New(builder.NewConfig().WithUser(65534, 65534))
	res := build(t, b, builder.Request{Language: builder.C, Source: readExample(t, builder.C, "blink")})
	if !strings.Contains(res.Sandbox, "host-uid=65534") {
		t.Errorf("sandbox %q", res.Sandbox)
	}
	src := "#include \"" + secret + "\"\nint loop(void) { return 0; }\n"
	_, err := b.Build(context.Background(), builder.Request{Language: builder.C, Source: []byte(src)})
	var ce *builder.CompileError
	if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), "main.c:1:10: fatal error:") && !strings.HasPrefix(err.Error(), "main.c:1:10: error:") {
		t.Fatalf("err = %v, want the include refused at main.c:1:10", err)
	}
	if strings.Contains(ce.Log, "leaked") {
		t.Error("the compiler read a root-only file")
	}
}

// TestMemoryLimit checks that a macro expansion bomb hits the memory limit.
func TestMemoryLimit(t *testing.T) {
	var src strings.Builder
	src.WriteString("#define X0 x\n")
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&src, "#define X%d X%d X%d\n", i, i-1, i-1)
	}
	src.WriteString("int a = X40;\n")
	b := builder.New(builder.NewConfig().WithMemoryLimit(128 << 20))
	_, err := b.Build(context.Background(), builder.Request{Language: builder.C, Source: []byte(src.String()), Options: builder.Options{Timeout: 30 * time.Second}})
	var le *builder.LimitError
	if !errors.As(err, &le) || (le.Limit != builder.LimitMemory && le.Limit != builder.LimitTime) {
		t.Fatalf("err = %v (%T), want a memory LimitError", err, err)
	}
	t.Logf("%v", err)
}

// TestOutputTooLarge checks the module size cap, per request and by default.
func TestOutputTooLarge(t *testing.T) {
	b := builder.New(builder.NewConfig())
	_, err := b.Build(context.Background(), builder.Request{Language: builder.WAT, Source: readExample(t, builder.WAT, "blink"), Options: builder.Options{MaxOutputSize: 64}})
	var le *builder.LimitError
	if !errors.As(err, &le) || le.Limit != builder.LimitOutputSize || le.Max != 64 || le.Got <= 64 {
		t.Fatalf("err = %v (%T), want an output-size LimitError", err, err)
	}
	// 300 KB of initialised data is over the default 256 KiB cap.
	src := "#include \"wasmbed.h\"\nstatic const char big[300000] = {1, 2, 3};\nWASMBED_EXPORT(loop) int32_t loop(void) { return big[wasmbed_sensor_read(0)]; }\n"
	_, err = b.Build(context.Background(), builder.Request{Language: builder.C, Source: []byte(src), Options: builder.Options{MemoryPages: 8}})
	if !errors.As(err, &le) || le.Limit != builder.LimitOutputSize || le.Max != builder.DefaultMaxOutputSize {
		t.Fatalf("err = %v (%T), want an output-size LimitError at the default cap", err, err)
	}
	t.Logf("%v", err)
}

// TestRequestErrors checks requests refused before any compiler runs.
func TestRequestErrors(t *testing.T) {
	tests := []struct {
		name string
		req  builder.Request
		want error
	}{
		{"unknown language", builder.Request{Language: "cobol", Source: []byte("x")}, builder.ErrUnknownLanguage},
		{"empty source", builder.Request{Language: builder.C, Source: []byte(" \n")}, builder.ErrEmptySource},
		{"too many pages", builder.Request{Language: builder.C, Source: []byte("x"), Options: builder.Options{MemoryPages: 70000}}, builder.ErrInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := builder.Build(context.Background(), tt.req)
			if !errors.Is(err, tt.want) || !builder.IsUserError(err) {
				t.Fatalf("err = %v, want %v (a user error)", err, tt.want)
			}
		})
	}
	_, err := builder.Build(context.Background(), builder.Request{Language: builder.C, Source: make([]byte, builder.DefaultMaxSourceSize+1)})
	var le *builder.LimitError
	if !errors.As(err, &le) || le.Limit != builder.LimitSourceSize {
		t.Fatalf("err = %v, want a source-size LimitError", err)
	}
}

// TestMissingToolchain checks that a missing tool is a ToolchainError naming the
// package to install, and not the user's fault.
func TestMissingToolchain(t *testing.T) {
	tests := []struct {
		tool builder.Tool
		lang builder.Language
		want string
	}{
		{builder.ToolClang, builder.C, "apt-get install clang-19"},
		{builder.ToolWasmLD, builder.C, "apt-get install lld-19"},
		{builder.ToolWat2Wasm, builder.WAT, "apt-get install wabt"},
		{builder.ToolNode, builder.AssemblyScript, "apt-get install nodejs"},
		{builder.ToolAssemblyScript, builder.AssemblyScript, "builder/assemblyscript/install.sh"},
		{builder.ToolRustc, builder.Rust, "apt-get install rustc-web rust-web-src"},
		{builder.ToolRustSysroot, builder.Rust, "run hack/rust-sysroot.sh"},
		{builder.ToolPrlimit, builder.WAT, "apt-get install util-linux"},
		{builder.ToolBwrap, builder.WAT, "apt-get install bubblewrap"},
	}
	for _, tt := range tests {
		t.Run(string(tt.tool), func(t *testing.T) {
			b := builder.New(builder.NewConfig().WithTool(tt.tool, "/nonexistent/"+string(tt.tool)))
			_, err := b.Build(context.Background(), builder.Request{Language: tt.lang, Source: readExample(t, tt.lang, "blink")})
			var te *builder.ToolchainError
			if !errors.As(err, &te) || !te.Missing {
				t.Fatalf("err = %v (%T), want a missing ToolchainError", err, err)
			}
			if !strings.HasPrefix(err.Error(), "toolchain not installed: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to say %q", err, tt.want)
			}
			if builder.IsUserError(err) {
				t.Error("IsUserError = true for a missing toolchain")
			}
		})
	}
}

// TestOptionalWasmOpt checks that a missing wasm-opt only skips optimisation.
func TestOptionalWasmOpt(t *testing.T) {
	b := builder.New(builder.NewConfig().WithTool(builder.ToolWasmOpt, "/nonexistent/wasm-opt"))
	res := build(t, b, builder.Request{Language: builder.C, Source: readExample(t, builder.C, "blink"), Options: builder.Options{Optimize: true}})
	if res.Optimized || !strings.Contains(res.Log, "apt-get install binaryen") {
		t.Errorf("optimized=%v log %q, want unoptimised with a hint", res.Optimized, res.Log)
	}
}

// TestSandbox checks the isolation a build reports and that the compiler sees
// neither the builder's environment nor the network.
func TestSandbox(t *testing.T) {
	t.Setenv("WASMBED_SECRET", "hunter2")
	// clang expands __has_include and environment-independent macros only, so use
	// rustc's env! to read the environment at compile time.
	src := "#![no_std]\nmod wasmbed;\nconst S: Option<&str> = option_env!(\"WASMBED_SECRET\");\n#[export_name = \"loop\"]\npub extern \"C\" fn app_loop() -> i32 { if S.is_some() { 1 } else { 0 } }\n"
	res := build(t, builder.New(builder.NewConfig()), builder.Request{Language: builder.Rust, Source: []byte(src)})
	for _, want := range []string{"bwrap(userns,mountns,pidns,netns", "uid=65534", "ro-toolchain-only", "seccomp", "no-new-privs", "no-caps", "rlimit(", "env-scrubbed"} {
		if !strings.Contains(res.Sandbox, want) {
			t.Errorf("sandbox %q, want %q", res.Sandbox, want)
		}
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	h := &host{leds: map[int32]int32{}, published: map[string]string{}}
	if err := h.instantiate(ctx, rt); err != nil {
		t.Fatal(err)
	}
	mod, err := rt.Instantiate(ctx, res.Module)
	if err != nil {
		t.Fatal(err)
	}
	r, err := mod.ExportedFunction("loop").Call(ctx)
	if err != nil || r[0] != 0 {
		t.Errorf("the compiler saw the builder's environment (loop = %v, %v)", r, err)
	}
	t.Logf("sandbox: %s", res.Sandbox)
}

// BenchmarkBuild measures compile latency of the blink example per language.
func BenchmarkBuild(b *testing.B) {
	bld := builder.New(builder.NewConfig())
	for _, lang := range builder.Languages {
		b.Run(string(lang), func(b *testing.B) {
			src := readExample(b, lang, "blink")
			build(b, bld, builder.Request{Language: lang, Source: src}) // warm the version cache
			b.ResetTimer()
			for b.Loop() {
				build(b, bld, builder.Request{Language: lang, Source: src, Options: builder.Options{Optimize: true}})
			}
		})
	}
}

// TestSDKsDeclareTheABIVersion checks that every language's SDK file names the ABI
// version the platform implements (api/abi.Version).
func TestSDKsDeclareTheABIVersion(t *testing.T) {
	want := map[builder.Language]string{
		builder.C:              fmt.Sprintf("#define WASMBED_ABI_VERSION %d\n", abi.Version),
		builder.Rust:           fmt.Sprintf("pub const ABI_VERSION: i32 = %d;\n", abi.Version),
		builder.AssemblyScript: fmt.Sprintf("export const ABI_VERSION: i32 = %d;\n", abi.Version),
	}
	for lang, line := range want {
		name, content, err := builder.SDKFile(lang)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(content), line) {
			t.Errorf("%s does not declare %q", name, strings.TrimSpace(line))
		}
	}
}

// TestRustEditions checks that a Rust source chooses its edition with a `//@ edition:`
// header, and that the SDK compiles under each.
func TestRustEditions(t *testing.T) {
	body := "#![no_std]\nmod wasmbed;\n%s\npub extern \"C\" fn app_loop() -> i32 {\n    let v = [3u8, 1, 2];\n    let mut s = v;\n    s.sort_unstable();\n    wasmbed::log(wasmbed::Level::Info, if s == [1, 2, 3] { \"sorted\" } else { \"not sorted\" });\n    500\n}\n"
	tests := []struct {
		name, header, attr string
	}{
		{"default 2021", "", `#[export_name = "loop"]`},
		{"2018", "//@ edition: 2018\n", `#[export_name = "loop"]`},
		{"2024", "//! an app\n//@ edition: 2024\n", `#[unsafe(export_name = "loop")]`},
	}
	b := builder.New(builder.NewConfig())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.header + fmt.Sprintf(body, tt.attr)
			res, err := b.Build(context.Background(), builder.Request{Language: builder.Rust, Source: []byte(src)})
			if err != nil {
				t.Fatalf("build: %v", err)
			}
			if !bytes.Contains(res.Module, []byte("loop")) || !strings.Contains(res.Toolchain, "rustc 1.") {
				t.Errorf("module of %d bytes from %q exports no loop", res.Size, res.Toolchain)
			}
		})
	}
}
