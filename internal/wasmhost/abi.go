package wasmhost

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// ABIVersion is the version of docs/abi.md this package implements.
const ABIVersion = 1

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

// Limits of the host functions, from docs/abi.md.
const (
	MaxLogBytes      = 256
	MaxTopicBytes    = 64
	MaxPublishBytes  = 512
	PublishPerSecond = 10
	MaxSleepMs       = 1000
)

// CoreFeatures are the WebAssembly features an application may use: WebAssembly 1.0
// (which includes mutable-global import/export) plus the sign-extension operators.
const CoreFeatures = api.CoreFeaturesV1 | api.CoreFeatureSignExtensionOps

// FuncType is a WebAssembly function type.
type FuncType struct {
	Params  []api.ValueType
	Results []api.ValueType
}

// String formats t as in docs/abi.md, e.g. "(i32, i32) -> i32".
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

func (t FuncType) equal(params, results []api.ValueType) bool {
	return slices.Equal(t.Params, params) && slices.Equal(t.Results, results)
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

// Imports returns the host functions of ABI version 1, in the order of docs/abi.md.
func Imports() []Import {
	out := make([]Import, len(imports))
	for i, im := range imports {
		out[i] = Import{Name: im.Name, Type: FuncType{Params: slices.Clone(im.Type.Params), Results: slices.Clone(im.Type.Results)}}
	}
	return out
}

// Exports returns the functions a module may export for the host: loop (required) and
// setup (optional). Exporting memory is allowed and not listed.
func Exports() []Export {
	out := make([]Export, len(exports))
	for i, ex := range exports {
		out[i] = ex
		out[i].Type = FuncType{Params: slices.Clone(ex.Type.Params), Results: slices.Clone(ex.Type.Results)}
	}
	return out
}

// ABIError lists every way a module departs from the ABI.
type ABIError struct {
	Problems []string
}

func (e *ABIError) Error() string {
	return "module does not follow the wasmbed abi: " + strings.Join(e.Problems, "; ")
}

// CheckModule checks a compiled module's imports and exports against the ABI and returns
// an *ABIError listing every problem, or nil.
func CheckModule(cm wazero.CompiledModule) error {
	var problems []string
	for _, def := range cm.ImportedFunctions() {
		mod, name, _ := def.Import()
		if mod != HostModule {
			problems = append(problems, fmt.Sprintf("import %s.%s: module is not %q", mod, name, HostModule))
			continue
		}
		i := slices.IndexFunc(imports, func(im Import) bool { return im.Name == name })
		if i < 0 {
			problems = append(problems, fmt.Sprintf("import %s.%s: not a wasmbed host function", mod, name))
			continue
		}
		if want := imports[i].Type; !want.equal(def.ParamTypes(), def.ResultTypes()) {
			got := FuncType{Params: def.ParamTypes(), Results: def.ResultTypes()}
			problems = append(problems, fmt.Sprintf("import %s.%s: type %s, want %s", mod, name, got, want))
		}
	}
	for _, mem := range cm.ImportedMemories() {
		mod, name, _ := mem.Import()
		problems = append(problems, fmt.Sprintf("import %s.%s: memory imports are not allowed", mod, name))
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
		if !ex.Type.equal(def.ParamTypes(), def.ResultTypes()) {
			got := FuncType{Params: def.ParamTypes(), Results: def.ResultTypes()}
			problems = append(problems, fmt.Sprintf("export %s: type %s, want %s", ex.Name, got, ex.Type))
		}
	}
	if len(problems) > 0 {
		return &ABIError{Problems: problems}
	}
	return nil
}
