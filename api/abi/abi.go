// Package abi is the application ABI of docs/abi.md in Go: the host functions a module
// may import from module "wasmbed", the functions it exports, the WebAssembly features
// it may use and the limits of the host functions. The builder, the validator and the
// host simulator all check modules with this one table; a test holds it to the doc.
package abi

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// Version is the version of docs/abi.md this package describes (ABI_VERSION).
const Version = 2

// HostModule is the module name every Wasmbed import comes from.
const HostModule = "wasmbed"

// Result codes shared by the host functions.
const (
	OK          int32 = 0
	ErrNotFound int32 = -1
	ErrInvalid  int32 = -2
	ErrBusy     int32 = -3
	SensorNone  int32 = -2147483648
)

// Limits of the host functions.
const (
	MaxLogBytes     = 256
	MaxTopicBytes   = 64
	MaxPublishBytes = 512
	MaxSleepMs      = 1000
)

// Wall-clock limits (docs/abi.md, "Limits"), the same on every host: the firmware's
// WB_CALL_TIME_MS, WB_LOG_* and WB_PUBLISH_* (firmware/app/wasmbed_app.h).
const (
	// CallTimeMs bounds one call (the start function, setup, one loop), time in sleep_ms
	// and in host calls included.
	CallTimeMs = 2000
	// log and publish each take a token of a bucket per application that gets one token
	// back every period and holds at most burst: 10 lines a second, 20 at once; 10
	// records a second, 10 at once.
	LogPeriodMs     = 100
	LogBurst        = 20
	PublishPeriodMs = 100
	PublishBurst    = 10
)

// Reasons an application fails with on every host, in AppStatus.
const (
	ReasonFuel       = "fuel exhausted"
	ReasonTimeBudget = "time budget exceeded"
)

// CoreFeatures are the WebAssembly features an application may use under Version:
// WebAssembly 2.0 without SIMD (v128), which no board's engine implements.
const CoreFeatures = api.CoreFeaturesV2 &^ api.CoreFeatureSIMD

// Features returns the WebAssembly features ABI version v allows, and false for a version
// that does not exist. Version 1 is WebAssembly 1.0 (with mutable-global import/export)
// plus the sign-extension operators; version 2 adds multi-value, non-trapping
// float-to-int conversions, bulk memory and reference types.
func Features(v int) (api.CoreFeatures, bool) {
	switch v {
	case 1:
		return api.CoreFeaturesV1 | api.CoreFeatureSignExtensionOps, true
	case Version:
		return CoreFeatures, true
	}
	return 0, false
}

// FuncType is a WebAssembly function type.
type FuncType struct {
	Params  []api.ValueType
	Results []api.ValueType
}

// String formats t as docs/abi.md does, e.g. "(i32, i32) -> i32".
func (t FuncType) String() string {
	list := func(ts []api.ValueType) string {
		names := make([]string, len(ts))
		for i, v := range ts {
			names[i] = api.ValueTypeName(v)
		}
		return strings.Join(names, ", ")
	}
	res := "()"
	if len(t.Results) == 1 {
		res = api.ValueTypeName(t.Results[0])
	} else if len(t.Results) > 1 {
		res = "(" + list(t.Results) + ")"
	}
	return "(" + list(t.Params) + ") -> " + res
}

// Equal reports whether t has exactly these parameter and result types.
func (t FuncType) Equal(params, results []api.ValueType) bool {
	return slices.Equal(t.Params, params) && slices.Equal(t.Results, results)
}

func (t FuncType) clone() FuncType {
	return FuncType{Params: slices.Clone(t.Params), Results: slices.Clone(t.Results)}
}

// Import is a host function a module may import from module "wasmbed".
type Import struct {
	Name string
	Type FuncType
}

// Export is a function a module exports for the host to call.
type Export struct {
	Name     string
	Type     FuncType
	Required bool
}

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

func fn(params []api.ValueType, results ...api.ValueType) FuncType {
	return FuncType{Params: params, Results: results}
}

func params(ts ...api.ValueType) []api.ValueType { return ts }

// imports is the table of docs/abi.md, in its order.
var imports = []Import{
	{"log", fn(params(i32, i32, i32))},
	{"clock_ms", fn(nil, i64)},
	{"sleep_ms", fn(params(i32))},
	{"yield", fn(nil)},
	{"gpio_write", fn(params(i32, i32), i32)},
	{"gpio_read", fn(params(i32), i32)},
	{"led_set", fn(params(i32, i32), i32)},
	{"sensor_read", fn(params(i32), i32)},
	{"publish", fn(params(i32, i32, i32, i32), i32)},
	{"config_get", fn(params(i32, i32, i32, i32), i32)},
}

var exports = []Export{
	{Name: "loop", Type: fn(nil, i32), Required: true},
	{Name: "setup", Type: fn(nil)},
}

// Imports returns the host functions of this ABI version, in the order of docs/abi.md.
func Imports() []Import {
	out := make([]Import, len(imports))
	for i, im := range imports {
		out[i] = Import{Name: im.Name, Type: im.Type.clone()}
	}
	return out
}

// Exports returns the functions a module may export for the host: loop (required) and
// setup (optional). Exporting memory is allowed and not listed.
func Exports() []Export {
	out := make([]Export, len(exports))
	for i, ex := range exports {
		out[i] = ex
		out[i].Type = ex.Type.clone()
	}
	return out
}

// LookupImport returns the host function called name, if the ABI has one.
func LookupImport(name string) (Import, bool) {
	i := slices.IndexFunc(imports, func(im Import) bool { return im.Name == name })
	if i < 0 {
		return Import{}, false
	}
	return Import{Name: imports[i].Name, Type: imports[i].Type.clone()}, true
}

// Error lists every way a module departs from the ABI, one sentence each.
//
//	var abiErr *abi.Error
//	if errors.As(err, &abiErr) {
//		fmt.Println(abiErr.Problems) // [export loop: missing]
//	}
type Error struct {
	Problems []string
}

func (e *Error) Error() string {
	return "module does not follow the wasmbed abi: " + strings.Join(e.Problems, "; ")
}

// Check checks a compiled module's imports and exports against the ABI and returns an
// *Error listing every problem, or nil. Features are checked when the module compiles
// (wazero.RuntimeConfig.WithCoreFeatures(CoreFeatures)).
func Check(cm wazero.CompiledModule) error {
	var problems []string
	for _, def := range cm.ImportedFunctions() {
		mod, name, _ := def.Import()
		if mod != HostModule {
			problems = append(problems, fmt.Sprintf("import %s.%s: module is not %q (is a function left undefined?)", mod, name, HostModule))
			continue
		}
		want, ok := LookupImport(name)
		if !ok {
			problems = append(problems, fmt.Sprintf("import %s.%s: not a wasmbed host function", mod, name))
			continue
		}
		if !want.Type.Equal(def.ParamTypes(), def.ResultTypes()) {
			got := FuncType{Params: def.ParamTypes(), Results: def.ResultTypes()}
			problems = append(problems, fmt.Sprintf("import %s.%s: type %s, want %s", mod, name, got, want.Type))
		}
	}
	for _, mem := range cm.ImportedMemories() {
		mod, name, _ := mem.Import()
		problems = append(problems, fmt.Sprintf("import %s.%s: memory imports are not allowed; a module defines its own memory", mod, name))
	}
	defs := cm.ExportedFunctions()
	for _, ex := range exports {
		def, ok := defs[ex.Name]
		if !ok {
			if ex.Required {
				problems = append(problems, fmt.Sprintf("export %s: missing", ex.Name))
			}
			continue
		}
		if !ex.Type.Equal(def.ParamTypes(), def.ResultTypes()) {
			got := FuncType{Params: def.ParamTypes(), Results: def.ResultTypes()}
			problems = append(problems, fmt.Sprintf("export %s: type %s, want %s", ex.Name, got, ex.Type))
		}
	}
	if len(problems) > 0 {
		return &Error{Problems: problems}
	}
	return nil
}
