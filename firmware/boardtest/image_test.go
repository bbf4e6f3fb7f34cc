package boardtest

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmbed/wasmbed/api/boards"
	"github.com/wasmbed/wasmbed/emulation/platforms"
	"github.com/wasmbed/wasmbed/firmware/internal/fwbuild"
)

// region is a range of the address space.
type region struct{ base, size uint64 }

func (r region) contains(addr, n uint64) bool {
	return addr >= r.base && addr+n >= addr && addr+n <= r.base+r.size
}

func (r region) String() string { return fmt.Sprintf("[%#x, %#x)", r.base, r.base+r.size) }

// memoryMap is where a board has its flash, RAM and protocol UART.
type memoryMap struct {
	flash, ram region
	uart       uint64
}

// images lists every board with firmware and what the test cannot learn from the
// catalogue or the board's Renode platform.
var images = []struct {
	board string
	// noPlatform gives the memory map and protocol UART of a board without a .repl
	// (from its QEMU machine); boards with one take them from the .repl.
	noPlatform *memoryMap
	// fixed are words the MCU reads from flash at reset, by address.
	fixed map[uint64]uint32
	// uartIRQs are the NVIC lines of the protocol UART's receive interrupt on a board
	// whose .repl does not wire the UART to the NVIC (the .repl's "-> nvic@n" otherwise).
	uartIRQs []uint64
}{
	{board: "stm32f4-discovery"}, // USART1, line 37 in the .repl
	{board: "mps2-an386", noPlatform: &memoryMap{flash: region{0x00000000, 4 << 20}, ram: region{0x20000000, 4 << 20}, uart: 0x40004000},
		uartIRQs: []uint64{0}}, // AN386: UART0 RX is line 0 (QEMU's mps2.c wires it so too)
	{board: "nrf52840-nano33ble"}, // UARTE0, line 2 in the .repl
	// The RA4M1's .repl has no ICU: the firmware links SCI2_RXI to line 0 and SCI2_ERI
	// to line 1 itself (IELSR0/1).
	{board: "arduino-uno-r4", uartIRQs: []uint64{0, 1}, fixed: map[uint64]uint32{
		0x400: 0xffffffff, // OFS0: IWDT and WDT stopped after reset
		0x404: 0xffffceff, // OFS1: HOCO on at 48 MHz, voltage monitor 0 reset off
		0x438: 0xffffffff, // SECMPUAC: security MPU regions disabled
	}},
}

func requireToolchain(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"arm-none-eabi-gcc", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: run hack/deps.sh (apt-get install gcc-arm-none-eabi picolibc-arm-none-eabi make)", tool)
		}
	}
}

// TestEveryBoardHasFirmware keeps the catalogue, the firmware and this test in step:
// every board but the virtual one has firmware/boards/<name>/ and an entry in images.
func TestEveryBoardHasFirmware(t *testing.T) {
	dir, err := fwbuild.Dir()
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, im := range images {
		listed[im.board] = true
	}
	for _, b := range boards.All() {
		if b.Emulator == boards.EmulatorVirtual {
			continue
		}
		for _, f := range []string{"board.c", "board.ld", "board.mk"} {
			if _, err := os.Stat(filepath.Join(dir, "boards", b.Name, f)); err != nil {
				t.Errorf("%s: no firmware/boards/%s/%s", b.Name, b.Name, f)
			}
		}
		if !listed[b.Name] {
			t.Errorf("%s: not in this test's images table", b.Name)
		}
		delete(listed, b.Name)
	}
	for name := range listed {
		t.Errorf("images lists %s, which is not in the catalogue", name)
	}
}

func TestImages(t *testing.T) {
	requireToolchain(t)
	for _, im := range images {
		t.Run(im.board, func(t *testing.T) {
			b, err := boards.Lookup(im.board)
			if err != nil {
				t.Fatal(err)
			}
			m := boardMap(t, b, im.noPlatform)
			flash, ram, uart := m.flash, m.ram, m.uart
			img := open(t, fwbuild.Image(t, im.board))

			// The vector table starts flash: word 0 is the initial stack pointer, word 1
			// the reset handler (a thumb address).
			vectors := img.symbol("vectors")
			if vectors != flash.base {
				t.Errorf("vector table at %#x, want the flash base %#x", vectors, flash.base)
			}
			sp, reset := img.word(vectors), img.word(vectors+4)
			if !ram.contains(uint64(sp)-1, 1) {
				t.Errorf("initial stack pointer %#x is outside RAM %v", sp, ram)
			}
			if estack := img.symbol("_estack"); uint64(sp) != estack {
				t.Errorf("initial stack pointer %#x, want _estack %#x", sp, estack)
			}
			if sp%8 != 0 {
				t.Errorf("initial stack pointer %#x is not 8-byte aligned", sp)
			}
			if want := img.symbol("reset_handler"); uint64(reset) != want|1 {
				t.Errorf("reset vector %#x, want reset_handler %#x with the thumb bit", reset, want)
			}

			// Fits: the loaded bytes lie in flash within the catalogue's size; the RAM
			// sections, the reserved stack first, lie in RAM within the catalogue's size.
			flashUsed, ramEnd := img.layout(t, flash, ram)
			if limit := uint64(b.FlashBytes); flashUsed > limit {
				t.Errorf("image takes %d bytes of flash, the catalogue gives %d", flashUsed, limit)
			}
			stack := img.symbol("STACK_SIZE")
			ramUsed := ramEnd - ram.base
			if limit := min(uint64(b.RAMBytes), ram.size); ramUsed > limit {
				t.Errorf("RAM %d bytes (stack %d included) exceed %d (RAM %v, catalogue %d)",
					ramUsed, stack, limit, ram, b.RAMBytes)
			}
			// The stack starts RAM, so that an overflow leaves RAM (into the MPU's guard)
			// instead of running into .data, .bss and the apps' arenas.
			if img.symbol("_sstack") != ram.base || uint64(sp) != ram.base+stack {
				t.Errorf("stack [%#x, %#x), want the reserved %d bytes at the start of RAM %v",
					img.symbol("_sstack"), sp, stack, ram)
			}

			// The protocol UART: board_uart's ctx is the base address the driver uses.
			if got := img.word(img.symbol("board_uart")); uint64(got) != uart {
				t.Errorf("firmware drives the UART at %#x, the board's %s is at %#x", got, b.UART, uart)
			}

			// The UART's receive interrupt: the board's vectors continue the 16 core ones,
			// and each of the UART's NVIC lines n points at uart_irq_handler (thumb bit).
			if irqVectors := img.symbol("board_irq_vectors"); irqVectors != vectors+16*4 {
				t.Errorf("board_irq_vectors at %#x, want right after the 16 core vectors (%#x)", irqVectors, vectors+16*4)
			}
			handler := img.symbol("uart_irq_handler") | 1
			irqs := uartIRQs(t, b, im.uartIRQs)
			for _, n := range irqs {
				if got := img.word(vectors + 4*(16+n)); uint64(got) != handler {
					t.Errorf("vector of IRQ %d (UART receive) is %#x, want uart_irq_handler %#x", n, got, handler)
				}
			}

			for addr, want := range im.fixed {
				if got := img.word(addr); got != want {
					t.Errorf("flash word at %#x is %#x, want %#x", addr, got, want)
				}
			}
			t.Logf("flash %d of %d bytes, RAM %d (%d of it stack) of %d, UART %s at %#x, receive IRQ %v",
				flashUsed, b.FlashBytes, ramUsed, stack, min(uint64(b.RAMBytes), ram.size), b.UART, uart, irqs)
		})
	}
}

// uartIRQs returns the NVIC lines of the board's protocol UART: those its .repl wires
// ("-> nvic@n"), else fallback.
func uartIRQs(t *testing.T, b boards.Board, fallback []uint64) []uint64 {
	t.Helper()
	var irqs []uint64
	if b.RenodePlatform != "" {
		d, err := platforms.Describe(b.RenodePlatform)
		if err != nil {
			t.Fatal(err)
		}
		if u := d[strings.ToLower(b.UART)]; u != nil {
			for _, target := range u.IRQs {
				if n, ok := strings.CutPrefix(target, "nvic@"); ok {
					var v uint64
					if _, err := fmt.Sscan(n, &v); err != nil {
						t.Fatalf("%s: %s: IRQ %q", b.RenodePlatform, b.UART, target)
					}
					irqs = append(irqs, v)
				}
			}
		}
	}
	switch {
	case len(irqs) > 0 && len(fallback) > 0:
		t.Fatalf("%s: the .repl wires the UART to %v and this test lists %v: keep one", b.Name, irqs, fallback)
	case len(irqs) == 0 && len(fallback) == 0:
		t.Fatalf("%s: no NVIC line for the UART in the .repl or in this test", b.Name)
	case len(irqs) == 0:
		irqs = fallback
	}
	return irqs
}

// boardMap returns the board's memory map: from its Renode platform (its code flash, RAM
// and the catalogue's UART), or fallback for a board without one.
func boardMap(t *testing.T, b boards.Board, fallback *memoryMap) memoryMap {
	t.Helper()
	if b.RenodePlatform == "" {
		if fallback == nil {
			t.Fatalf("%s has no Renode platform and no memory map in this test", b.Name)
		}
		return *fallback
	}
	d, err := platforms.Describe(b.RenodePlatform)
	if err != nil {
		t.Fatal(err)
	}
	// Memories keep the names of the Renode CPU file a platform includes: "flash" or
	// "code_flash", "sram" or "ram".
	mem := func(names ...string) region {
		var e *platforms.Peripheral
		for _, name := range names {
			if e = d[name]; e != nil {
				break
			}
		}
		if e == nil {
			t.Fatalf("%s: no memory named any of %q", b.RenodePlatform, names)
		}
		n, err := e.Size()
		if err != nil {
			t.Fatalf("%s: %v", b.RenodePlatform, err)
		}
		return region{e.Address, n}
	}
	u := d[strings.ToLower(b.UART)]
	if u == nil || !u.HasAddress {
		t.Fatalf("%s: no UART %q with an address", b.RenodePlatform, b.UART)
	}
	return memoryMap{flash: mem("flash", "code_flash"), ram: mem("sram", "ram"), uart: u.Address}
}

// image is a linked firmware ELF.
type image struct {
	t    *testing.T
	path string
	f    *elf.File
	syms map[string]uint64
}

func open(t *testing.T, path string) *image {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { f.Close() })
	if f.Machine != elf.EM_ARM || f.Class != elf.ELFCLASS32 || f.ByteOrder != binary.LittleEndian {
		t.Fatalf("%s: not a 32-bit little-endian Arm ELF", path)
	}
	syms, err := f.Symbols()
	if err != nil {
		t.Fatalf("%s: symbols: %v", path, err)
	}
	im := &image{t: t, path: path, f: f, syms: map[string]uint64{}}
	for _, s := range syms {
		im.syms[s.Name] = s.Value
	}
	return im
}

func (im *image) symbol(name string) uint64 {
	im.t.Helper()
	v, ok := im.syms[name]
	if !ok {
		im.t.Fatalf("%s: no symbol %s", im.path, name)
	}
	return v
}

// word reads the 32-bit word the image loads at addr.
func (im *image) word(addr uint64) uint32 {
	im.t.Helper()
	for _, p := range im.f.Progs {
		if p.Type != elf.PT_LOAD || addr < p.Paddr || addr+4 > p.Paddr+p.Filesz {
			continue
		}
		var b [4]byte
		if _, err := p.ReadAt(b[:], int64(addr-p.Paddr)); err != nil {
			im.t.Fatalf("%s: read %#x: %v", im.path, addr, err)
		}
		return binary.LittleEndian.Uint32(b[:])
	}
	im.t.Fatalf("%s: nothing loaded at %#x", im.path, addr)
	return 0
}

// layout checks that every loaded byte is in flash and every allocated section is in
// flash or RAM, and returns the flash bytes loaded and where the RAM sections end.
func (im *image) layout(t *testing.T, flash, ram region) (flashUsed, ramEnd uint64) {
	t.Helper()
	for _, p := range im.f.Progs {
		if p.Type != elf.PT_LOAD || p.Filesz == 0 {
			continue
		}
		if !flash.contains(p.Paddr, p.Filesz) {
			t.Errorf("segment of %d bytes loaded at %#x is outside flash %v", p.Filesz, p.Paddr, flash)
		}
		flashUsed += p.Filesz
	}
	ramEnd = ram.base
	for _, s := range im.f.Sections {
		if s.Flags&elf.SHF_ALLOC == 0 || s.Size == 0 {
			continue
		}
		switch {
		case flash.contains(s.Addr, s.Size):
		case ram.contains(s.Addr, s.Size):
			ramEnd = max(ramEnd, s.Addr+s.Size)
		default:
			t.Errorf("section %s [%#x, %#x) is neither in flash %v nor in RAM %v", s.Name, s.Addr, s.Addr+s.Size, flash, ram)
		}
	}
	return flashUsed, ramEnd
}

// boardDefine reads a -D<name>=<number> of a board's BOARD_DEFS in its board.mk.
func boardDefine(t *testing.T, board, name string) int64 {
	t.Helper()
	mk, err := os.ReadFile(filepath.Join("..", "boards", board, "board.mk"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(string(mk)) {
		if v, ok := strings.CutPrefix(f, "-D"+name+"="); ok {
			var n int64
			if _, err := fmt.Sscan(v, &n); err != nil {
				t.Fatalf("%s board.mk: %s=%q is not a number", board, name, v)
			}
			return n
		}
	}
	t.Fatalf("%s board.mk does not define %s", board, name)
	return 0
}

// The validator admits a module by the catalogue's budgets, so they must be the ones
// each board's firmware is built with: a larger module or memory would pass validation
// and then be refused or trap on every device.
func TestCatalogueBudgetsMatchFirmware(t *testing.T) {
	for _, im := range images {
		t.Run(im.board, func(t *testing.T) {
			b, err := boards.Lookup(im.board)
			if err != nil {
				t.Fatal(err)
			}
			if slot := boardDefine(t, im.board, "WBD_SLOT_SIZE"); b.MaxModuleBytes != slot {
				t.Errorf("catalogue MaxModuleBytes %d, firmware module slot (WBD_SLOT_SIZE) %d", b.MaxModuleBytes, slot)
			}
			if mem := boardDefine(t, im.board, "WBD_MEM_CAP"); b.AppMemoryBytes != mem {
				t.Errorf("catalogue AppMemoryBytes %d, firmware linear memory (WBD_MEM_CAP) %d", b.AppMemoryBytes, mem)
			}
			if tab := boardDefine(t, im.board, "WB_MAX_TABLE"); int64(b.MaxTableElements) != tab {
				t.Errorf("catalogue MaxTableElements %d, firmware table limit (WB_MAX_TABLE) %d", b.MaxTableElements, tab)
			}
		})
	}
}
