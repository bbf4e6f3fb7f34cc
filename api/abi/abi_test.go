package abi_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/wasmbed/wasmbed/api/abi"
	fixtures "github.com/wasmbed/wasmbed/testdata/wasm"
)

// TestMatchesDoc checks the table against the tables of docs/abi.md, so that the doc
// and every Go user of the ABI cannot drift apart.
func TestMatchesDoc(t *testing.T) {
	doc, err := os.ReadFile("../../docs/abi.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(\\w+)` \\| `(\\([^`]*)` \\|")
	paramName := regexp.MustCompile(`\b[a-z_]+ (i32|i64)`)
	documented := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = paramName.ReplaceAllString(m[2], "$1")
	}
	if !strings.Contains(string(doc), fmt.Sprintf("`ABI_VERSION` is **%d**", abi.Version)) {
		t.Errorf("docs/abi.md does not state ABI version %d", abi.Version)
	}
	var names []string
	for _, im := range abi.Imports() {
		names = append(names, im.Name)
		if got, want := im.Type.String(), documented[im.Name]; got != want {
			t.Errorf("import %s: type %q, docs/abi.md says %q", im.Name, got, want)
		}
		if _, ok := abi.LookupImport(im.Name); !ok {
			t.Errorf("LookupImport(%q) finds nothing", im.Name)
		}
	}
	for _, ex := range abi.Exports() {
		names = append(names, ex.Name)
		if got, want := ex.Type.String(), documented[ex.Name]; got != want {
			t.Errorf("export %s: type %q, docs/abi.md says %q", ex.Name, got, want)
		}
	}
	if len(names) != len(documented) {
		t.Errorf("abi lists %v, docs/abi.md documents %d functions: %v", names, len(documented), documented)
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		wasm []byte
		want []string // problems, in order; nil means the module is accepted
	}{
		{name: "blink", wasm: fixtures.Blink},
		{name: "probe imports everything", wasm: fixtures.Probe},
		{name: "bad imports", wasm: fixtures.BadImport, want: []string{
			"import wasmbed.reboot: not a wasmbed host function",
			"import wasmbed.log: type (i32, i32) -> i32, want (i32, i32, i32) -> ()",
			`import env.abort: module is not "wasmbed" (is a function left undefined?)`,
		}},
		{name: "no loop", wasm: fixtures.NoLoop, want: []string{
			"export loop: missing",
			"export setup: type () -> i32, want () -> ()",
		}},
	}
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().WithCoreFeatures(abi.CoreFeatures))
	defer rt.Close(ctx)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cm, err := rt.CompileModule(ctx, tt.wasm)
			if err != nil {
				t.Fatal(err)
			}
			err = abi.Check(cm)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var abiErr *abi.Error
			if !errors.As(err, &abiErr) {
				t.Fatalf("err = %v, want an *abi.Error", err)
			}
			if got := strings.Join(abiErr.Problems, "\n"); got != strings.Join(tt.want, "\n") {
				t.Fatalf("problems:\n%s\nwant:\n%s", got, strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestImportsAreCopies(t *testing.T) {
	im := abi.Imports()
	im[0].Type.Params[0] = 0
	im[0].Name = "changed"
	if again := abi.Imports(); again[0].Name != "log" || again[0].Type.String() != "(i32, i32, i32) -> ()" {
		t.Fatalf("Imports shares its table with callers: %v", again[0])
	}
}
