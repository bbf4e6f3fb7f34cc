package builder

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// Features are the WebAssembly features an application may use (docs/abi.md):
// 1.0 (which includes mutable-global import/export) plus sign-extension operators.
const Features = api.CoreFeaturesV1 | api.CoreFeatureSignExtensionOps

// abiImports are the host functions of docs/abi.md with their types.
var abiImports = map[string]struct{ params, results []api.ValueType }{
	"log":         {[]api.ValueType{api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}, nil},
	"clock_ms":    {nil, []api.ValueType{api.ValueTypeI64}},
	"sleep_ms":    {[]api.ValueType{api.ValueTypeI32}, nil},
	"yield":       {nil, nil},
	"gpio_write":  {[]api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}},
	"gpio_read":   {[]api.ValueType{api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}},
	"led_set":     {[]api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}},
	"sensor_read": {[]api.ValueType{api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}},
	"publish":     {[]api.ValueType{api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}},
	"config_get":  {[]api.ValueType{api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}},
}

func abiImportNames() []string {
	names := make([]string, 0, len(abiImports))
	for n := range abiImports {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// checkModule compiles module with wazero restricted to Features and checks the
// application contract: imports only from the ABI, loop exported as () -> i32,
// setup (if any) as () -> (). Problems come back as diagnostics on the source.
func checkModule(ctx context.Context, src string, module []byte) []Diagnostic {
	diag := func(format string, args ...any) Diagnostic {
		return Diagnostic{File: src, Severity: SeverityError, Message: fmt.Sprintf(format, args...)}
	}
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().WithCoreFeatures(Features))
	defer rt.Close(ctx)
	cm, err := rt.CompileModule(ctx, module)
	if err != nil {
		return []Diagnostic{diag("module is not WebAssembly 1.0 with sign-extension and mutable globals: %v", err)}
	}
	defer cm.Close(ctx)

	var diags []Diagnostic
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		want, ok := abiImports[name]
		switch {
		case mod != "wasmbed":
			diags = append(diags, diag("imports %s.%s: only functions of module wasmbed can be imported (is a function undefined?)", mod, name))
		case !ok:
			diags = append(diags, diag("imports wasmbed.%s, which is not in the Wasmbed ABI", name))
		case !slices.Equal(f.ParamTypes(), want.params) || !slices.Equal(f.ResultTypes(), want.results):
			diags = append(diags, diag("imports wasmbed.%s with type %s, want %s", name,
				sig(f.ParamTypes(), f.ResultTypes()), sig(want.params, want.results)))
		}
	}
	for _, m := range cm.ImportedMemories() {
		mod, name, _ := m.Import()
		diags = append(diags, diag("imports memory %s.%s: a module must define its own memory", mod, name))
	}
	exports := cm.ExportedFunctions()
	if l, ok := exports["loop"]; !ok {
		diags = append(diags, diag("module does not export loop"))
	} else if len(l.ParamTypes()) != 0 || !slices.Equal(l.ResultTypes(), []api.ValueType{api.ValueTypeI32}) {
		diags = append(diags, diag("loop has type %s, want () -> i32", sig(l.ParamTypes(), l.ResultTypes())))
	}
	if s, ok := exports["setup"]; ok && (len(s.ParamTypes()) != 0 || len(s.ResultTypes()) != 0) {
		diags = append(diags, diag("setup has type %s, want () -> ()", sig(s.ParamTypes(), s.ResultTypes())))
	}
	return diags
}

func sig(params, results []api.ValueType) string {
	names := func(ts []api.ValueType) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = api.ValueTypeName(t)
		}
		return "(" + strings.Join(s, ", ") + ")"
	}
	r := names(results)
	if len(results) == 1 {
		r = api.ValueTypeName(results[0])
	}
	return names(params) + " -> " + r
}
