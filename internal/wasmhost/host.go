package wasmhost

import (
	"github.com/wasmbed/wasmbed/api/abi"
	"github.com/wasmbed/wasmbed/api/digest"
	"github.com/wasmbed/wasmbed/api/protocol"

	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// Defaults of HostConfig.
const (
	// DefaultMemoryLimitPages is 4 pages (256 KiB), the RAM of the largest supported
	// board (nRF52840).
	DefaultMemoryLimitPages = 4
	// DefaultCallBudget bounds the computing of one call into an application, the
	// stand-in for a device's fuel (time in sleep_ms not counted).
	DefaultCallBudget = 100 * time.Millisecond
	// DefaultTimeBudget bounds one call on the board's clock, sleep_ms and host calls
	// included: the devices' budget (abi.CallTimeMs).
	DefaultTimeBudget = abi.CallTimeMs * time.Millisecond
)

// HostConfig configures a Host. It is immutable: each With method returns a copy.
type HostConfig struct {
	memoryLimitPages uint32
	callBudget       time.Duration
	timeBudget       time.Duration
	features         api.CoreFeatures
	cache            wazero.CompilationCache
}

// NewHostConfig returns the default configuration.
func NewHostConfig() HostConfig {
	return HostConfig{
		memoryLimitPages: DefaultMemoryLimitPages,
		callBudget:       DefaultCallBudget,
		timeBudget:       DefaultTimeBudget,
		features:         abi.CoreFeatures,
	}
}

// WithMemoryLimitPages caps every application's memory at n 64 KiB pages (1..65536).
func (c HostConfig) WithMemoryLimitPages(n uint32) HostConfig {
	c.memoryLimitPages = n
	return c
}

// WithCallBudget sets how long one call into an application may compute (sleep_ms not
// counted) before it fails with "fuel exhausted".
func (c HostConfig) WithCallBudget(d time.Duration) HostConfig {
	c.callBudget = d
	return c
}

// WithTimeBudget sets how long one call may last on the board's clock, sleep_ms and host
// calls included, before it fails with "time budget exceeded". Devices use
// DefaultTimeBudget; a smaller one suits tests.
func (c HostConfig) WithTimeBudget(d time.Duration) HostConfig {
	c.timeBudget = d
	return c
}

// WithCoreFeatures sets the WebAssembly features modules may use, for boards that
// support more than abi.CoreFeatures.
func (c HostConfig) WithCoreFeatures(f api.CoreFeatures) HostConfig {
	c.features = f
	return c
}

// WithCompilationCache shares wazero's compilation cache with other Hosts (for example
// one Host per board memory budget); it is not closed by Host.Close.
func (c HostConfig) WithCompilationCache(cache wazero.CompilationCache) HostConfig {
	c.cache = cache
	return c
}

// Host compiles and runs applications. It holds one wazero runtime with the "wasmbed"
// host module and a cache of compiled modules by digest; it is safe for concurrent use
// and meant to be shared by every application of a process with the same limits.
type Host struct {
	cfg       HostConfig
	rt        wazero.Runtime
	ownsCache bool
	cache     wazero.CompilationCache

	mu       sync.Mutex
	compiled map[digest.Digest]*Module
}

// NewHost creates a Host.
func NewHost(ctx context.Context, cfg HostConfig) (*Host, error) {
	if cfg.memoryLimitPages == 0 || cfg.memoryLimitPages > 65536 {
		return nil, fmt.Errorf("new host: memory limit of %d pages is not in 1..65536", cfg.memoryLimitPages)
	}
	if cfg.callBudget <= 0 {
		return nil, fmt.Errorf("new host: call budget %v is not positive", cfg.callBudget)
	}
	if cfg.timeBudget <= 0 {
		return nil, fmt.Errorf("new host: time budget %v is not positive", cfg.timeBudget)
	}
	h := &Host{cfg: cfg, cache: cfg.cache, compiled: map[digest.Digest]*Module{}}
	if h.cache == nil {
		h.cache, h.ownsCache = wazero.NewCompilationCache(), true
	}
	h.rt = wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
		WithCoreFeatures(cfg.features).
		WithMemoryLimitPages(cfg.memoryLimitPages).
		WithCloseOnContextDone(true).
		WithCompilationCache(h.cache))
	if err := instantiateHostModule(ctx, h.rt); err != nil {
		h.Close(ctx)
		return nil, fmt.Errorf("new host: %w", err)
	}
	return h, nil
}

// Close releases the runtime, every compiled module and every application still open.
func (h *Host) Close(ctx context.Context) error {
	err := h.rt.Close(ctx)
	if h.ownsCache {
		err = errors.Join(err, h.cache.Close(ctx))
	}
	h.mu.Lock()
	h.compiled = map[digest.Digest]*Module{}
	h.mu.Unlock()
	return err
}

// Module is a compiled application, checked against the ABI.
type Module struct {
	digest   digest.Digest
	compiled wazero.CompiledModule
	hasSetup bool
}

// Digest returns the module's content address, "sha256:<hex>".
func (m *Module) Digest() digest.Digest { return m.digest }

// Imports returns the module's imported functions as "module.name", in import order.
func (m *Module) Imports() []string {
	var out []string
	for _, def := range m.compiled.ImportedFunctions() {
		mod, name, _ := def.Import()
		out = append(out, mod+"."+name)
	}
	return out
}

// Exports returns the names of the module's exports, sorted.
func (m *Module) Exports() []string {
	var out []string
	for name := range m.compiled.ExportedFunctions() {
		out = append(out, name)
	}
	for name := range m.compiled.ExportedMemories() {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// Compile decodes, validates and compiles a module, or returns the cached result for
// the same bytes. It fails with an *abi.Error when the module does not follow the ABI.
func (h *Host) Compile(ctx context.Context, wasm []byte) (*Module, error) {
	digest := digest.Of(wasm)
	h.mu.Lock()
	m, ok := h.compiled[digest]
	h.mu.Unlock()
	if ok {
		return m, nil
	}
	cm, err := h.rt.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	if err := abi.Check(cm); err != nil {
		cm.Close(ctx)
		return nil, fmt.Errorf("compile: %w", err)
	}
	_, hasSetup := cm.ExportedFunctions()["setup"]
	m = &Module{digest: digest, compiled: cm, hasSetup: hasSetup}
	h.mu.Lock()
	defer h.mu.Unlock()
	if prev, ok := h.compiled[digest]; ok { // compiled concurrently: keep the first
		cm.Close(ctx)
		return prev, nil
	}
	h.compiled[digest] = m
	return m, nil
}

// Forget removes m from the compile cache and releases its compiled code. Instances
// already made from it keep working; a later Compile of the same bytes compiles again.
// Long-running callers that see many distinct modules (the validator) call it when done.
func (h *Host) Forget(ctx context.Context, m *Module) error {
	h.mu.Lock()
	if h.compiled[m.digest] == m {
		delete(h.compiled, m.digest)
	}
	h.mu.Unlock()
	return m.compiled.Close(ctx)
}

// Instantiate creates an application from m on board, running the module's start
// function if it has one. A trap there is returned as a *TrapError.
func (h *Host) Instantiate(ctx context.Context, m *Module, board Board) (*App, error) {
	if m == nil || board == nil {
		return nil, errors.New("instantiate: nil module or board")
	}
	clock := board.Clock()
	if clock == nil {
		return nil, errors.New("instantiate: board has no clock")
	}
	now := clock.Now()
	a := &App{
		host:     h,
		board:    board,
		clock:    clock,
		started:  now,
		hasSetup: m.hasSetup,
		limits:   newLimits(now),
		state:    protocol.StateRunning,
	}
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous: any number of instances of one module
		WithStartFunctions()
	_, err := a.call(ctx, "start", func(ctx context.Context) ([]uint64, error) {
		mod, err := h.rt.InstantiateModule(ctx, m.compiled, cfg)
		if err != nil {
			return nil, err
		}
		a.mod = mod
		return nil, nil
	})
	if err != nil {
		if a.mod != nil {
			a.mod.Close(ctx)
		}
		return nil, fmt.Errorf("instantiate: %w", err)
	}
	a.loop = a.mod.ExportedFunction("loop")
	if a.hasSetup {
		a.setup = a.mod.ExportedFunction("setup")
	}
	return a, nil
}
