package boardtest

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// linkedFlash returns, per object file, the bytes of flash the linker kept of it in the
// image: its input sections placed in the output sections that live in flash (code and
// read-only data, initialised data's load image, the provisioning sections), read from
// the GNU ld map. Sections the linker discarded (functions nothing calls) do not count.
func linkedFlash(t *testing.T, mapPath string) map[string]uint64 {
	t.Helper()
	f, err := os.Open(mapPath)
	if err != nil {
		t.Fatalf("open %s: %v", mapPath, err)
	}
	defer f.Close()
	flash := map[string]bool{".text": true, ".rodata": true, ".data": true, ".wb_identity": true, ".wb_keys": true}
	out := map[string]uint64{}
	sc := bufio.NewScanner(f)
	inMap, output, pending := false, "", false
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "Linker script and memory map") {
			inMap = true
			continue
		}
		if !inMap || line == "" {
			continue
		}
		fields := strings.Fields(line)
		switch {
		case line[0] == '.': // an output section
			output, pending = fields[0], false
			continue
		case line[0] == ' ' && line[1] == '.' && len(fields) == 1: // an input section whose address follows
			pending = true
			continue
		case line[0] == ' ' && line[1] == '.' && len(fields) == 4: // an input section on one line
			fields = fields[1:]
		case pending && len(fields) == 3 && strings.HasPrefix(fields[0], "0x"):
		default:
			pending = false
			continue
		}
		pending = false
		if !flash[output] || !strings.HasSuffix(fields[2], ".o") {
			continue
		}
		size, err := strconv.ParseUint(strings.TrimPrefix(fields[1], "0x"), 16, 64)
		if err != nil {
			t.Fatalf("%s: size %q: %v", mapPath, fields[1], err)
		}
		out[fields[2]] += size
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", mapPath, err)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no input sections found: not a GNU ld map?", mapPath)
	}
	return out
}

// TestFlashBudget holds every board image to the 36 KiB target for interpreter, protocol
// and HAL, and logs the native tier's size where the board has it.
func TestFlashBudget(t *testing.T) {
	for _, im := range images {
		t.Run(im.board, func(t *testing.T) {
			dir := filepath.Dir(fwbuild.Image(t, im.board))
			kept := linkedFlash(t, filepath.Join(dir, "firmware.map"))
			of := func(o string) uint64 {
				for path, n := range kept {
					if strings.HasSuffix(path, "/obj/"+o) {
						return n
					}
				}
				return 0
			}
			var total uint64
			for _, o := range append(interpreterProtocolHAL, filepath.Join("boards", im.board, "board.o")) {
				if of(o) == 0 {
					t.Fatalf("%s: nothing of %s in the image's map", im.board, o)
				}
				total += of(o)
			}
			if total > flashBudget {
				t.Errorf("interpreter + protocol + HAL: %d bytes of flash, over the %d-byte budget", total, flashBudget)
			}
			t.Logf("interpreter + protocol + HAL: %d bytes (%.1f KiB, budget %d KiB); native tier: %d bytes",
				total, float64(total)/1024, flashBudget>>10, of("wasm/wasm_jit.o"))
		})
	}
}
