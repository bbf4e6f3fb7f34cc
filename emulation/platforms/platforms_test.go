package platforms_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wasmbed/wasmbed/api/boards"
	"github.com/wasmbed/wasmbed/emulation/platforms"
)

var (
	varRe  = regexp.MustCompile(`^\$([A-Za-z_][A-Za-z0-9_]*)\?=(.+)$`)
	connRe = regexp.MustCompile(`^connector Connect sysbus\.([A-Za-z_][A-Za-z0-9_]*) term$`)
	termRe = regexp.MustCompile(`^emulation CreateServerSocketTerminal \$port "term" false$`)
)

// parseRepl parses a .repl with platforms.Parse, reports every layout error, and checks
// the references: registration parents, interrupt targets and the cpu's nvic.
func parseRepl(t *testing.T, name, text string) platforms.Description {
	t.Helper()
	f, errs := platforms.ParseFile(name, text)
	for _, err := range errs {
		t.Error(err)
	}
	entries, err := platforms.Resolve(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for _, e := range entries {
		if e.Parent != "sysbus" && entries[e.Parent] == nil {
			t.Errorf("%s:%d: %s registered at undefined %q", name, e.Line, e.Name, e.Parent)
		}
		if e.Parent == "sysbus" && e.Type != "CPU.CortexM" && !e.HasAddress {
			t.Errorf("%s:%d: %s on sysbus without an address", name, e.Line, e.Name)
		}
		for _, irq := range e.IRQs {
			target, _, _ := strings.Cut(irq, "@")
			if entries[target] == nil {
				t.Errorf("%s: %s -> %s: undefined target", name, e.Name, irq)
			}
		}
		if v, ok := e.Attrs["nvic"]; ok && entries[v] == nil {
			t.Errorf("%s: %s: nvic %q undefined", name, e.Name, v)
		}
		if _, ok := e.Attrs["size"]; ok {
			if _, err := e.Size(); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	return entries
}

func size(t *testing.T, e *platforms.Peripheral) int64 {
	v, err := e.Size()
	if err != nil {
		t.Fatal(err)
	}
	return int64(v)
}

func read(t *testing.T, name string) string {
	t.Helper()
	data, err := fs.ReadFile(platforms.FS(), name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestPlatformsMatchCatalogue(t *testing.T) {
	for _, want := range []string{"nrf52840-nano33ble", "arduino-uno-r4", "stm32f4-discovery"} {
		b, err := boards.Lookup(want)
		if err != nil {
			t.Fatal(err)
		}
		if b.RenodePlatform == "" {
			t.Errorf("%s: no Renode platform in the catalogue", want)
		}
	}
	for _, b := range boards.All() {
		if b.Emulator == boards.EmulatorRenode && b.RenodePlatform != b.Machine {
			t.Errorf("%s: Renode-only board with platform %q and machine %q", b.Name, b.RenodePlatform, b.Machine)
		}
		if b.RenodePlatform == "" {
			continue
		}
		t.Run(b.Name, func(t *testing.T) {
			if !platforms.Has(b.RenodePlatform) {
				t.Fatalf("%s or its script is not in emulation/platforms", b.RenodePlatform)
			}
			entries := parseRepl(t, b.RenodePlatform, read(t, b.RenodePlatform))

			cpu := entries["cpu"]
			if cpu == nil || cpu.Type != "CPU.CortexM" || cpu.Attrs["cpuType"] != `"cortex-m4f"` || cpu.Attrs["nvic"] != "nvic" {
				t.Errorf("want a cortex-m4f cpu with nvic: nvic, got %+v", cpu)
			}
			if nv := entries["nvic"]; nv == nil || nv.Type != "IRQControllers.NVIC" || nv.Address != 0xE000E000 ||
				len(nv.IRQs) != 1 || nv.IRQs[0] != "cpu@0" {
				t.Errorf("want the NVIC at 0xE000E000 wired to cpu@0, got %+v", nv)
			}
			// Memory figures: "flash" or Renode's "code_flash" is the code flash, "sram*",
			// "ram" and "ccm" the RAM.
			var ram, flash int64
			var ramAt []uint64
			for _, e := range entries {
				if e.Type != "Memory.MappedMemory" {
					continue
				}
				switch {
				case e.Name == "flash" || e.Name == "code_flash":
					flash += size(t, e)
				case strings.HasPrefix(e.Name, "sram") || e.Name == "ram" || e.Name == "ccm":
					ram += size(t, e)
					ramAt = append(ramAt, e.Address)
				}
			}
			if ram != b.RAMBytes || flash != b.FlashBytes {
				t.Errorf("RAM %d flash %d bytes, catalogue says RAM %d flash %d", ram, flash, b.RAMBytes, b.FlashBytes)
			}
			if !slices.Contains(ramAt, 0x20000000) {
				t.Errorf("want RAM at 0x20000000, got RAM at %#x", ramAt)
			}
			// A UART model: Renode's UART.* classes, or the Renesas SCI (SCI.*), which
			// is one in asynchronous mode.
			uart := entries[strings.ToLower(b.UART)]
			if uart == nil || !strings.HasPrefix(uart.Type, "UART.") && !strings.HasPrefix(uart.Type, "SCI.") {
				t.Errorf("catalogue UART %s is not a UART in the platform: %+v", b.UART, uart)
			}

			checkScript(t, b, entries)
		})
	}
}

// checkScript checks a .resc: its variables, that it loads the platform, that every
// sysbus peripheral it names exists, and that the catalogue's UART is the one served
// on $port without telnet negotiation.
func checkScript(t *testing.T, b boards.Board, entries platforms.Description) {
	name := platforms.Script(b.RenodePlatform)
	text := read(t, name)
	vars := map[string]string{}
	var connected []string
	var sawTerm, sawLoad, sawStart, inMacro bool
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		trimmed := strings.TrimSpace(line)
		if trimmed == `"""` {
			inMacro = !inMacro
			continue
		}
		if trimmed == "" || strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, ":") {
			continue
		}
		if inMacro != strings.HasPrefix(line, "    ") {
			t.Errorf("%s:%d: macro bodies and only they are indented by four spaces: %q", name, n, line)
		}
		if m := varRe.FindStringSubmatch(trimmed); m != nil {
			vars[m[1]] = m[2]
		}
		if m := connRe.FindStringSubmatch(trimmed); m != nil {
			connected = append(connected, m[1])
		}
		sawTerm = sawTerm || termRe.MatchString(trimmed)
		sawLoad = sawLoad || trimmed == "machine LoadPlatformDescription $platform"
		sawStart = sawStart || trimmed == "start"
		for _, ref := range regexp.MustCompile(`sysbus\.([A-Za-z_][A-Za-z0-9_]*)`).FindAllStringSubmatch(trimmed, -1) {
			if entries[ref[1]] == nil {
				t.Errorf("%s:%d: sysbus.%s is not in %s", name, n, ref[1], b.RenodePlatform)
			}
		}
	}
	if inMacro {
		t.Errorf("%s: unterminated macro", name)
	}
	for _, v := range []string{"name", "port", "platform", "elf"} {
		if vars[v] == "" {
			t.Errorf("%s: no default for $%s (want $%s?=...)", name, v, v)
		}
	}
	if vars["platform"] != "@emulation/platforms/"+b.RenodePlatform {
		t.Errorf("%s: $platform default %q, want @emulation/platforms/%s", name, vars["platform"], b.RenodePlatform)
	}
	if !sawTerm || !sawLoad || !sawStart {
		t.Errorf("%s: want the platform loaded, a raw server socket terminal on $port and start (%v %v %v)", name, sawLoad, sawTerm, sawStart)
	}
	if len(connected) != 1 || connected[0] != strings.ToLower(b.UART) {
		t.Errorf("%s: connects %v to the terminal, want the catalogue UART %s", name, connected, strings.ToLower(b.UART))
	}
}

func TestWriteTo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "renode")
	if err := platforms.WriteTo(dir); err != nil {
		t.Fatal(err)
	}
	if err := platforms.WriteTo(dir); err != nil { // idempotent
		t.Fatal(err)
	}
	for _, f := range []string{"arduino_nano_33_ble.repl", "arduino_nano_33_ble.resc", "arduino_uno_r4_minima.resc", "stm32f4_discovery.repl"} {
		got, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != read(t, f) {
			t.Errorf("%s differs from the embedded file", f)
		}
	}
}
