package hosttest

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// specDirs are the spec suites `make -C firmware spec` copies: WebAssembly 1.0 and 2.0.
var specDirs = []string{"../build/spec/v1", "../build/spec/v2"}

// corpus returns the modules built by `make -C firmware test` (both spec suites and the unit modules).
func corpus(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, dir := range append(specDirs, "../build/wat") {
		m, _ := filepath.Glob(filepath.Join(dir, "*.wasm"))
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatal("no modules: run `make -C firmware test` first (it builds firmware/build/spec; make test does)")
	}
	sort.Strings(files)
	return files
}

// specExpect maps a spec module file (its path) to the command that uses it ("module",
// "assert_invalid", "assert_uninstantiable"...): the spec is the oracle when the two
// engines disagree.
func specExpect(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	var files []string
	for _, dir := range specDirs {
		m, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		files = append(files, m...)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Commands []struct {
				Type     string `json:"type"`
				Filename string `json:"filename"`
			} `json:"commands"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, c := range doc.Commands {
			if c.Filename != "" {
				out[filepath.Join(filepath.Dir(f), c.Filename)] = c.Type
			}
		}
	}
	return out
}

func newRuntime(ctx context.Context, features api.CoreFeatures) wazero.Runtime {
	return wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().
		WithCoreFeatures(features).
		WithMemoryLimitPages(64).
		WithCloseOnContextDone(true))
}

// engines are the two sides for module file f: the 1.0 suite's modules run under 1.0's
// rules on both (wazero's CoreFeaturesV1, the C loader's mvp), everything else under 2.0.
type engines struct {
	v1, v2 wazero.Runtime
}

func newEngines(ctx context.Context) engines {
	return engines{v1: newRuntime(ctx, api.CoreFeaturesV1), v2: newRuntime(ctx, api.CoreFeaturesV2)}
}

func (e engines) close(ctx context.Context) { e.v1.Close(ctx); e.v2.Close(ctx) }

func (e engines) pick(f string, bin []byte, instantiate bool) (wazero.Runtime, *Instance, error) {
	if filepath.Base(filepath.Dir(f)) == "v1" {
		in, err := LoadMVP(bin, instantiate)
		return e.v1, in, err
	}
	in, err := Load(bin, instantiate)
	return e.v2, in, err
}

// The C validator and wazero (both WebAssembly 2.0) must agree on which modules are
// valid, except for modules the C side refuses as an unsupported feature (SIMD).
func TestValidationAgreesWithWazero(t *testing.T) {
	ctx := context.Background()
	eng := newEngines(ctx)
	defer eng.close(ctx)
	expect := specExpect(t)
	var agree, unsupported, wazeroDeviates int
	for _, f := range corpus(t) {
		bin, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rt, in, cerr := eng.pick(f, bin, false)
		in.Close()
		var ce Err
		if errors.As(cerr, &ce) && ce.Class() == ClassUnsupported {
			unsupported++
			continue
		}
		cm, werr := rt.CompileModule(ctx, bin)
		if werr == nil {
			cm.Close(ctx)
		}
		if (cerr == nil) != (werr == nil) {
			if errors.As(cerr, &ce) && ce.Class() != ClassMalformed && ce.Class() != ClassInvalid {
				continue // an arena or implementation limit of the C side, not a verdict
			}
			if want := expect[f]; cerr != nil && (want == "assert_invalid" || want == "assert_malformed") {
				t.Logf("%s: wazero accepts a module the spec says is %s (%v): the C interpreter follows the spec",
					filepath.Base(f), want, cerr)
				wazeroDeviates++
				continue
			}
			if want := expect[f]; cerr == nil && want == "assert_unlinkable" {
				t.Logf("%s: wazero refuses at compile time a module the spec refuses when it links (%v)", filepath.Base(f), werr)
				wazeroDeviates++
				continue
			}
			t.Errorf("%s: C interpreter says %v, wazero says %v", filepath.Base(f), cerr, werr)
			continue
		}
		agree++
	}
	t.Logf("validation: %d modules agree, %d skipped as unsupported by the C interpreter, %d where wazero deviates from the spec",
		agree, unsupported, wazeroDeviates)
}

var (
	i32s = []uint64{0, 1, 0xffffffff, 0x80000000, 0x7fffffff, 2, 100, 65536}
	i64s = []uint64{0, 1, math.MaxUint64, 1 << 63, math.MaxInt64, 2, 0xffffffff, 1 << 32}
	f32s = []uint64{0, 0x3f800000, 0xbf800000, 0x7fc00000, 0x80000000, 0x7f800000, 0x4f000000, 0x3fc00000}
	f64s = []uint64{0, 0x3ff0000000000000, 0xbff0000000000000, 0x7ff8000000000000, 1 << 63,
		0x7ff0000000000000, 0x41e0000000000000, 0x3ff8000000000000}
)

func argsFor(types []api.ValueType, k int) []uint64 {
	args := make([]uint64, len(types))
	for i, ty := range types {
		j := (i*3 + k*5) % 8
		switch ty {
		case api.ValueTypeI32:
			args[i] = i32s[j]
		case api.ValueTypeI64:
			args[i] = i64s[j]
		case api.ValueTypeF32:
			args[i] = f32s[j]
		default:
			args[i] = f64s[j]
		}
	}
	return args
}

func numeric(types []api.ValueType) bool {
	for _, ty := range types {
		if ty != api.ValueTypeI32 && ty != api.ValueTypeI64 && ty != api.ValueTypeF32 && ty != api.ValueTypeF64 {
			return false
		}
	}
	return true
}

func sameValue(ty api.ValueType, a, b uint64) bool {
	switch ty {
	case api.ValueTypeI32:
		return uint32(a) == uint32(b)
	case api.ValueTypeF32:
		x, y := math.Float32frombits(uint32(a)), math.Float32frombits(uint32(b))
		return uint32(a) == uint32(b) || (x != x && y != y) // NaN payloads may differ
	case api.ValueTypeF64:
		x, y := math.Float64frombits(a), math.Float64frombits(b)
		return a == b || (x != x && y != y)
	}
	return a == b
}

// Every exported numeric function of every import-free module, called with the same
// arguments in both engines, must give the same results or both trap.
func TestExecutionAgreesWithWazero(t *testing.T) {
	ctx := context.Background()
	eng := newEngines(ctx)
	defer eng.close(ctx)
	expect := specExpect(t)
	var calls, modules, wazeroDeviates int
	for _, f := range corpus(t) {
		bin, _ := os.ReadFile(f)
		rt, _, _ := eng.pick(f, nil, false)
		cm, err := rt.CompileModule(ctx, bin)
		if err != nil {
			continue
		}
		if len(cm.ImportedFunctions()) > 0 || len(cm.ImportedMemories()) > 0 {
			cm.Close(ctx)
			continue
		}
		_, in, cerr := eng.pick(f, bin, true)
		var ce Err
		if cerr != nil && errors.As(cerr, &ce) && ce.Class() != ClassTrap {
			in.Close()
			cm.Close(ctx)
			continue // unsupported feature, imports, or a C-side limit
		}
		mod, werr := rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName(""))
		if (cerr == nil) != (werr == nil) {
			if want := expect[f]; cerr != nil && (want == "assert_uninstantiable" || want == "assert_trap" || want == "assert_unlinkable") {
				t.Logf("%s: wazero instantiates a module the spec says traps (%v): the C interpreter follows the spec",
					filepath.Base(f), cerr)
				wazeroDeviates++
			} else {
				t.Errorf("%s: instantiate: C %v, wazero %v", filepath.Base(f), cerr, werr)
			}
		}
		if cerr != nil || werr != nil {
			in.Close()
			if mod != nil {
				mod.Close(ctx)
			}
			cm.Close(ctx)
			continue
		}
		modules++
		names := make([]string, 0, len(cm.ExportedFunctions()))
		for name := range cm.ExportedFunctions() {
			names = append(names, name)
		}
		sort.Strings(names)
	module:
		for _, name := range names {
			def := cm.ExportedFunctions()[name]
			if !numeric(def.ParamTypes()) || !numeric(def.ResultTypes()) || len(def.ParamTypes()) > 16 {
				continue
			}
			for k := 0; k < 4; k++ {
				args := argsFor(def.ParamTypes(), k)
				cres, cerr := in.Call(name, args, len(def.ResultTypes()), 2_000_000)
				if errors.Is(cerr, ErrFuel) || errors.Is(cerr, ErrStack) {
					break module // wazero has no fuel: states would diverge from here
				}
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				wres, werr := mod.ExportedFunction(name).Call(cctx, args...)
				cancel()
				calls++
				if (cerr == nil) != (werr == nil) {
					t.Errorf("%s %s%v: C %v, wazero %v", filepath.Base(f), name, args, cerr, werr)
					break module
				}
				for i, ty := range def.ResultTypes() {
					if cerr == nil && !sameValue(ty, cres[i], wres[i]) {
						t.Errorf("%s %s%v: result %d: C %#x, wazero %#x", filepath.Base(f), name, args, i, cres[i], wres[i])
						break module
					}
				}
			}
		}
		in.Close()
		mod.Close(ctx)
		cm.Close(ctx)
	}
	t.Logf("execution: %d modules, %d calls agree; %d instantiations where wazero deviates from the spec",
		modules, calls, wazeroDeviates)
}
