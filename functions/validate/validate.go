// Package function is the validate function: it checks a built module against the
// Wasmbed ABI and every target board, runs a smoke test in a wazero sandbox, and
// replies dev.wasmbed.module.validated or dev.wasmbed.module.rejected with reasons a
// user can act on.
package validate

import (
	"github.com/wasmbed/wasmbed/api/attestation"
	"github.com/wasmbed/wasmbed/api/digest"

	"github.com/wasmbed/wasmbed/api/abi"

	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/tetratelabs/wazero"

	"github.com/wasmbed/wasmbed/api/boards"
	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/internal/artifacts"
	"github.com/wasmbed/wasmbed/internal/eventserver"
	"github.com/wasmbed/wasmbed/internal/wasmhost"
)

// Defaults of the smoke test.
const (
	// DefaultSmokeLoops is how many times the smoke test calls loop.
	DefaultSmokeLoops = 3
	// DefaultCallBudget bounds each call of the smoke test (start, setup, one loop). It
	// is wall-clock time, so it is generous: a busy validator must not reject a module
	// for the machine's load.
	DefaultCallBudget = 500 * time.Millisecond
)

// Config configures the function.
type Config struct {
	// Store holds the modules named by digest, and keeps the attestation of each module
	// that passes.
	Store artifacts.Store
	// Attester signs the attestation that a module passed validation; dispatch signs
	// deployments only of modules it attested. Its key is the validator's alone.
	Attester Attester
	// SmokeLoops and CallBudget tune the smoke test; zero means the defaults.
	SmokeLoops int
	CallBudget time.Duration
	// Logger receives one line per verdict.
	Logger *slog.Logger
}

// Attester signs attestation envelopes (pki.SigningKey is one).
type Attester interface {
	attestation.Signer
	KeyID() string
}

// Function is the validate function. It is safe for concurrent use.
type Function struct {
	cfg   Config
	cache wazero.CompilationCache

	mu    sync.Mutex
	hosts map[uint32]*wasmhost.Host // by memory limit in pages
}

// New returns the validate function. It does no expensive work, so a new instance is
// ready to serve at once.
func New(cfg Config) (*Function, error) {
	if cfg.Store == nil {
		return nil, errors.New("validate: an artifact store is required")
	}
	if cfg.Attester == nil {
		return nil, errors.New("validate: an attester key is required: dispatch deploys only attested modules")
	}
	if cfg.SmokeLoops <= 0 {
		cfg.SmokeLoops = DefaultSmokeLoops
	}
	if cfg.CallBudget <= 0 {
		cfg.CallBudget = DefaultCallBudget
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Function{cfg: cfg, cache: wazero.NewCompilationCache(), hosts: map[uint32]*wasmhost.Host{}}, nil
}

// Close releases the wazero runtimes.
func (f *Function) Close(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for _, h := range f.hosts {
		errs = append(errs, h.Close(ctx))
	}
	f.hosts = map[uint32]*wasmhost.Host{}
	errs = append(errs, f.cache.Close(ctx))
	return errors.Join(errs...)
}

// host returns a host whose memory cap is pages, creating it once.
func (f *Function) host(ctx context.Context, pages uint32) (*wasmhost.Host, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h, ok := f.hosts[pages]; ok {
		return h, nil
	}
	h, err := wasmhost.NewHost(ctx, wasmhost.NewHostConfig().
		WithMemoryLimitPages(pages).WithCallBudget(f.cfg.CallBudget).WithCompilationCache(f.cache))
	if err != nil {
		return nil, fmt.Errorf("wazero host: %w", err)
	}
	f.hosts[pages] = h
	return h, nil
}

// Handle validates the module of a dev.wasmbed.module.built event.
func (f *Function) Handle(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	in, err := events.DecodeAs[*events.ModuleBuiltData](e, events.ModuleBuilt)
	if err != nil {
		return nil, err
	}
	module, err := f.cfg.Store.Get(ctx, in.Digest)
	if errors.Is(err, artifacts.ErrNotFound) {
		return nil, eventserver.Permanent(fmt.Errorf("module %s is not in the artifact store", in.Digest))
	}
	if err != nil {
		return nil, fmt.Errorf("fetch module %s: %w", in.Digest, err)
	}
	report, err := f.Validate(ctx, module, in.Boards)
	if err != nil {
		return nil, err
	}
	ref := in.Application
	var out cloudevents.Event
	if len(report.Reasons) > 0 {
		f.cfg.Logger.Info("module rejected", "application", ref.Subject(), "digest", in.Digest, "reasons", report.Reasons)
		out, err = events.New(events.ModuleRejected, events.SourceValidate, ref.Subject(),
			&events.ModuleRejectedData{Application: ref, Digest: in.Digest, Report: report})
	} else {
		if err := f.attest(ctx, in.Digest, in.Boards); err != nil {
			return nil, err
		}
		f.cfg.Logger.Info("module validated", "application", ref.Subject(), "digest", in.Digest, "boards", in.Boards)
		out, err = events.New(events.ModuleValidated, events.SourceValidate, ref.Subject(),
			&events.ModuleValidatedData{Application: ref, Digest: in.Digest, Size: int64(len(module)), Report: report})
	}
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Validate checks module for the named boards. A module that fails a check is not an
// error: the report's Reasons say what to change. Errors are the validator's own
// (wazero could not start).
func (f *Function) Validate(ctx context.Context, module []byte, boardNames []string) (events.ValidationReport, error) {
	report := events.ValidationReport{Digest: digest.Of(module), Size: int64(len(module))}
	reject := func(format string, args ...any) {
		report.Reasons = append(report.Reasons, fmt.Sprintf(format, args...))
	}

	info, err := inspect(module)
	if err != nil {
		reject("not a valid WebAssembly module: %v", err)
		return report, nil
	}

	// Budgets of every target board; the smoke test runs under the smallest memory cap.
	capPages := uint32(0)
	for _, name := range boardNames {
		b, err := boards.Lookup(name)
		if err != nil {
			reject("target board: %v", err)
			continue
		}
		fit := fitOn(b, int64(len(module)), info)
		if msg := abiFit(ctx, module, b.ABIVersion); msg != "" {
			fit.Fits = false
			fit.Message = strings.TrimPrefix(fit.Message+"; "+msg, "; ")
		}
		report.Boards = append(report.Boards, fit)
		if !fit.Fits {
			reject("does not fit %s: %s", b.Name, fit.Message)
		}
		pages := uint32((b.AppMemoryBytes + 65535) / 65536)
		if capPages == 0 || pages < capPages {
			capPages = pages
		}
	}
	if capPages == 0 {
		capPages = wasmhost.DefaultMemoryLimitPages
	}
	// A module that fits in a compact memory declares more pages than the smallest
	// board has; the sandbox still gives it its declared minimum.
	if info.hasMemory && info.minPages > capPages && info.usedBytes() <= uint64(capPages)*65536 {
		capPages = info.minPages
	}

	host, err := f.host(ctx, capPages)
	if err != nil {
		return report, err
	}
	mod, err := host.Compile(ctx, module)
	if err != nil {
		for _, r := range compileReasons(err) {
			reject("%s", r)
		}
		return report, nil
	}
	defer host.Forget(ctx, mod)
	report.Imports, report.Exports = mod.Imports(), mod.Exports()
	report.SmokeTest = f.smoke(ctx, host, mod, reject)
	return report, nil
}

// fitOn checks the module's size and memory against one board's budgets.
func fitOn(b boards.Board, size int64, info moduleInfo) events.BoardFit {
	fit := events.BoardFit{Board: b.Name, Fits: true, MemoryBytes: int64(info.minPages) * 65536}
	var msgs []string
	if size > b.MaxModuleBytes {
		fit.Fits = false
		msgs = append(msgs, fmt.Sprintf("the module is %s; the board accepts modules up to %s", kib(size), kib(b.MaxModuleBytes)))
	}
	if b.MaxTableElements > 0 && info.tableMin > b.MaxTableElements {
		// The firmware's loader refuses it with this reason (firmware/README.md).
		fit.Fits = false
		msgs = append(msgs, fmt.Sprintf("the module's table has %d elements; the board allows %d (table size exceeds the device limit)", info.tableMin, b.MaxTableElements))
	}
	if fit.MemoryBytes > b.AppMemoryBytes {
		used := int64(info.usedBytes())
		compact := (used + 1023) / 1024 * 1024
		if compact > 0 && compact <= b.AppMemoryBytes {
			fit.MemoryBytes = compact
			msgs = append(msgs, fmt.Sprintf("runs in a compact %s memory (declares %s)", kib(compact), kib(int64(info.minPages)*65536)))
		} else {
			fit.Fits = false
			msgs = append(msgs, fmt.Sprintf("the module needs %s of linear memory; the board has %s for applications (declare fewer pages, e.g. -Wl,--initial-memory=65536, and a smaller stack)",
				kib(max(int64(info.minPages)*65536, used)), kib(b.AppMemoryBytes)))
		}
	}
	fit.Message = strings.Join(msgs, "; ")
	return fit
}

func kib(n int64) string {
	if n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%.1f KiB", float64(n)/1024)
}

// features names the WebAssembly features by the words wazero's errors use for them.
var features = []struct{ needle, feature string }{
	{"simd", "SIMD (v128 instructions)"},
	{"threads", "threads and atomics"},
	{"reference-types", "reference types"},
	{"bulk-memory", "bulk memory operations (memory.copy, memory.fill)"},
	{"multi-value", "multiple return values"},
	{"nontrapping-float-to-int", "saturating float-to-int conversions"},
	{"sign-extension-ops", "sign-extension operators"},
	{"tail-call", "tail calls"},
}

// featureIn returns the feature a wazero error names, and its needle.
func featureIn(msg string) (feature, needle string) {
	for _, f := range features {
		if strings.Contains(msg, f.needle) {
			return f.feature, f.needle
		}
	}
	return "", ""
}

// abiFit checks module against the features of ABI version v, that of a board whose
// firmware may implement an older ABI than this validator's: "" when it compiles under
// them (or fails for a reason the main compile reports), else a sentence naming the
// feature the board cannot run.
func abiFit(ctx context.Context, module []byte, v int) string {
	if v == abi.Version {
		return ""
	}
	allowed, ok := abi.Features(v)
	if !ok {
		return fmt.Sprintf("its firmware implements ABI %d, which this validator does not know", v)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().WithCoreFeatures(allowed))
	defer rt.Close(ctx)
	cm, err := rt.CompileModule(ctx, module)
	if err == nil {
		cm.Close(ctx)
		return ""
	}
	if feature, _ := featureIn(err.Error()); feature != "" {
		return fmt.Sprintf("uses %s, which the board's firmware (ABI %d) cannot run", feature, v)
	}
	return ""
}

// compileReasons turns a wazero or ABI error into sentences a user can act on.
func compileReasons(err error) []string {
	var abiErr *abi.Error
	if errors.As(err, &abiErr) {
		return abiErr.Problems
	}
	msg := err.Error()
	if feature, needle := featureIn(msg); feature != "" {
		return []string{fmt.Sprintf("uses %s, which is outside the Wasmbed ABI %d (WebAssembly 2.0 without SIMD): build without it (clang: no -msimd128 or -mcpu=mvp; wat2wasm: --disable-%s) (%s)", feature, abi.Version, needle, msg)}
	}
	if strings.Contains(msg, "memory") && strings.Contains(msg, "limit") {
		return []string{"declares more linear memory than any target board has: " + msg}
	}
	return []string{"the module does not compile: " + msg}
}

// smoke instantiates the module on a simulated board, calls setup and a few loops.
func (f *Function) smoke(ctx context.Context, host *wasmhost.Host, mod *wasmhost.Module, reject func(string, ...any)) string {
	board := wasmhost.NewSimBoard(wasmhost.SimBoardConfig{Clock: wasmhost.NewSimClock(time.Unix(0, 0))})
	app, err := host.Instantiate(ctx, mod, board)
	if err != nil {
		reject("traps while instantiating (start function or data segments): %s", trapText(err))
		return "instantiation failed"
	}
	defer app.Close(ctx)
	if err := app.Setup(ctx); err != nil {
		reject("traps in setup: %s", trapText(err))
		return "setup failed"
	}
	loops := 0
	for ; loops < f.cfg.SmokeLoops; loops++ {
		_, exited, err := app.Loop(ctx)
		if err != nil {
			reject("traps in loop call %d: %s", loops+1, trapText(err))
			return fmt.Sprintf("loop %d failed", loops+1)
		}
		if exited {
			loops++
			break
		}
	}
	return fmt.Sprintf("instantiated, setup and %d loop calls ran within the %s budget per call; %d log lines, %d telemetry records",
		loops, f.cfg.CallBudget, len(board.Logs()), len(board.Records()))
}

func trapText(err error) string {
	if errors.Is(err, wasmhost.ErrBudgetExceeded) {
		return "fuel exhausted: the call ran longer than its budget; return from loop with a delay instead of waiting in a busy loop"
	}
	if errors.Is(err, wasmhost.ErrTimeBudget) {
		return fmt.Sprintf("time budget exceeded: the call lasted over %d ms, sleep_ms included; return from loop with a delay instead of sleeping in it",
			abi.CallTimeMs)
	}
	var trap *wasmhost.TrapError
	if errors.As(err, &trap) {
		return trap.Reason
	}
	return err.Error()
}

// attest records, signed, that module d passed validation for boards.
func (f *Function) attest(ctx context.Context, d digest.Digest, boards []string) error {
	stmt, err := attestation.NewStatement(d, attestation.Validation{Boards: boards, ABIVersion: abi.Version, Passed: true, Time: time.Now().UTC()})
	if err != nil {
		return err
	}
	env, err := attestation.Sign(stmt, f.cfg.Attester, f.cfg.Attester.KeyID())
	if err != nil {
		return err
	}
	if err := f.cfg.Store.PutAttestation(ctx, d, env); err != nil {
		return fmt.Errorf("attest %s: %w", d, err)
	}
	return nil
}
