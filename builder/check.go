package builder

import (
	"context"
	"errors"
	"fmt"

	"github.com/tetratelabs/wazero"

	"github.com/wasmbed/wasmbed/api/abi"
)

// Features are the WebAssembly features an application may use (docs/abi.md).
const Features = abi.CoreFeatures

// abiImportNames lists the ABI's host functions, for the linker's allow-undefined file.
func abiImportNames() []string {
	var names []string
	for _, im := range abi.Imports() {
		names = append(names, im.Name)
	}
	return names
}

// checkModule compiles module with wazero restricted to Features and checks it against
// the ABI (abi.Check). Problems come back as diagnostics on the source.
func checkModule(ctx context.Context, src string, module []byte) []Diagnostic {
	diag := func(msg string) Diagnostic {
		return Diagnostic{File: src, Severity: SeverityError, Message: msg}
	}
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().WithCoreFeatures(Features))
	defer rt.Close(ctx)
	cm, err := rt.CompileModule(ctx, module)
	if err != nil {
		return []Diagnostic{diag(fmt.Sprintf("module is not WebAssembly 1.0 with sign-extension and mutable globals: %v", err))}
	}
	defer cm.Close(ctx)
	err = abi.Check(cm)
	var abiErr *abi.Error
	if !errors.As(err, &abiErr) {
		return nil
	}
	diags := make([]Diagnostic, len(abiErr.Problems))
	for i, p := range abiErr.Problems {
		diags[i] = diag(p)
	}
	return diags
}
