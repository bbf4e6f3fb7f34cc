package boardtest

import (
	"debug/elf"
	"path/filepath"
	"testing"

	"github.com/wasmbed/wasmbed/firmware/internal/fwbuild"
)

// flashBudget is the target for the interpreter, the protocol and the HAL together
// (docs/performance.md): what every board image carries before the device runtime,
// the crypto and the ABI layer. It was 32 KiB for WebAssembly 1.0; 2.0 (multi-value,
// reference types, bulk memory: what current compilers emit by default) added 3.6 KiB.
const flashBudget = 36 << 10

// interpreterProtocolHAL are the objects of that budget, under build/<board>/obj; the
// board's own board.o is added per board. The native tier (wasm_jit.o) and the app store
// driver are reported apart.
var interpreterProtocolHAL = []string{
	"wasm/wasm_load.o", "wasm/wasm_exec.o", "wasm/wasm_num.o",
	"proto/cbor.o", "proto/wbp.o",
	"boards/common/main.o", "boards/common/startup.o",
}

// flashBytes is what an object puts in flash: its allocated sections with contents
// (code, read-only data, initialised data).
func flashBytes(t *testing.T, path string) uint64 {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	var n uint64
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_ALLOC != 0 && s.Type == elf.SHT_PROGBITS {
			n += s.Size
		}
	}
	return n
}

// TestFlashBudget holds every board image to the 36 KiB target for interpreter, protocol
// and HAL, and logs the native tier's size where the board has it.
func TestFlashBudget(t *testing.T) {
	for _, im := range images {
		t.Run(im.board, func(t *testing.T) {
			obj := filepath.Join(filepath.Dir(fwbuild.Image(t, im.board)), "obj")
			var total uint64
			for _, o := range append(interpreterProtocolHAL, filepath.Join("boards", im.board, "board.o")) {
				total += flashBytes(t, filepath.Join(obj, o))
			}
			if total > flashBudget {
				t.Errorf("interpreter + protocol + HAL: %d bytes of flash, over the %d-byte budget", total, flashBudget)
			}
			t.Logf("interpreter + protocol + HAL: %d bytes (%.1f KiB, budget %d KiB); native tier: %d bytes",
				total, float64(total)/1024, flashBudget>>10, flashBytes(t, filepath.Join(obj, "wasm/wasm_jit.o")))
		})
	}
}
