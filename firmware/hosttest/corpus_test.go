package hosttest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/internal/wasmhost"
	compilers "github.com/wasmbed/wasmbed/testdata/corpus"
)

// corpusCalls is how many loop calls of each corpus module are compared.
const corpusCalls = 4

// TestCorpusRunsAlike runs the modules today's compilers emit (testdata/corpus: clang 19
// and rustc 1.96, default features and WebAssembly 1.0) on the device interpreter (C)
// and on the Go host (wazero, the virtual devices' engine): both must log exactly what
// the Go oracle computes, call after call.
func TestCorpusRunsAlike(t *testing.T) {
	ctx := context.Background()
	host, err := wasmhost.NewHost(ctx, wasmhost.NewHostConfig().WithCallBudget(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close(ctx)
	mods, err := compilers.Modules()
	if err != nil {
		t.Fatal(err)
	}
	if len(mods) < 10 {
		t.Fatalf("%d corpus modules, want the 5 programs in 2 variants", len(mods))
	}
	for _, m := range mods {
		t.Run(m.Name(), func(t *testing.T) {
			var want strings.Builder
			for call := range corpusCalls {
				line, err := compilers.Expected(m.Program, call)
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&want, "log 1 %s\n", line)
			}
			gt, gd := runGo(t, host, m.Wasm, "", "", corpusCalls)
			ct, cd := runC(t, m.Wasm, "", "", corpusCalls)
			if gt != want.String() {
				t.Errorf("wazero logged:\n%s\nwant:\n%s", gt, want.String())
			}
			if ct != want.String() {
				t.Errorf("the device interpreter logged:\n%s\nwant:\n%s", ct, want.String())
			}
			if fmt.Sprint(gd) != fmt.Sprint(cd) {
				t.Errorf("loop delays: wazero %v, C %v", gd, cd)
			}
		})
	}
}
