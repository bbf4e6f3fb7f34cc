package platforms_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/wasmbed/wasmbed/renode/boards"
	"github.com/wasmbed/wasmbed/renode/platforms"
)

// entry is one peripheral of a platform description.
type entry struct {
	name, typ string
	parent    string // registration point ("sysbus", a GPIO port...)
	addr      uint64
	hasAddr   bool
	attrs     map[string]string
	irqs      []string // targets of "->" lines: "nvic@2"
	line      int
}

var (
	headRe  = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*):(?:\s+([A-Za-z_][A-Za-z0-9_.]*)\s+@\s+([A-Za-z_][A-Za-z0-9_]*)(?:\s+(0x[0-9A-Fa-f]+|[0-9]+))?)?\s*$`)
	attrRe  = regexp.MustCompile(`^    ([A-Za-z_][A-Za-z0-9_]*):\s+(\S.*)$`)
	irqRe   = regexp.MustCompile(`^    (?:([A-Za-z_][A-Za-z0-9_]*|[0-9]+)\s+)?->\s+([A-Za-z_][A-Za-z0-9_]*)@([0-9]+)\s*$`)
	varRe   = regexp.MustCompile(`^\$([A-Za-z_][A-Za-z0-9_]*)\?=(.+)$`)
	connRe  = regexp.MustCompile(`^connector Connect sysbus\.([A-Za-z_][A-Za-z0-9_]*) term$`)
	termRe  = regexp.MustCompile(`^emulation CreateServerSocketTerminal \$port "term" false$`)
	typeRef = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*\.[A-Za-z0-9_]+$`)
)

// parseRepl checks the layout of a .repl file and returns its entries: a peripheral
// starts at column 0 ("name: Type @ parent [address]" or "name:" to extend an earlier
// one), its properties and interrupt lines are indented by exactly four spaces, and
// blank lines or comments separate entries.
func parseRepl(t *testing.T, name, text string) map[string]*entry {
	t.Helper()
	entries := map[string]*entry{}
	var cur *entry
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			cur = nil
			continue
		case strings.HasPrefix(trimmed, "//"):
			if strings.HasPrefix(line, " ") {
				t.Errorf("%s:%d: indented comment", name, n)
			}
			continue
		case strings.Contains(line, "\t"):
			t.Errorf("%s:%d: tab in indentation", name, n)
			continue
		}
		if !strings.HasPrefix(line, " ") {
			m := headRe.FindStringSubmatch(line)
			if m == nil {
				t.Errorf("%s:%d: not a peripheral head: %q", name, n, line)
				cur = nil
				continue
			}
			if m[2] == "" { // "name:" extends an earlier entry
				cur = entries[m[1]]
				if cur == nil {
					t.Errorf("%s:%d: %q extends an undefined peripheral", name, n, m[1])
				}
				continue
			}
			if entries[m[1]] != nil {
				t.Errorf("%s:%d: %q defined twice", name, n, m[1])
			}
			if !typeRef.MatchString(m[2]) {
				t.Errorf("%s:%d: type %q is not Namespace.Class", name, n, m[2])
			}
			cur = &entry{name: m[1], typ: m[2], parent: m[3], attrs: map[string]string{}, line: n}
			if m[4] != "" {
				v, err := strconv.ParseUint(m[4], 0, 64)
				if err != nil {
					t.Errorf("%s:%d: address %q: %v", name, n, m[4], err)
				}
				cur.addr, cur.hasAddr = v, true
			}
			entries[m[1]] = cur
			continue
		}
		if cur == nil {
			t.Errorf("%s:%d: indented line outside a peripheral: %q", name, n, line)
			continue
		}
		if m := irqRe.FindStringSubmatch(line); m != nil {
			cur.irqs = append(cur.irqs, m[2]+"@"+m[3])
			continue
		}
		if m := attrRe.FindStringSubmatch(line); m != nil {
			cur.attrs[m[1]] = m[2]
			continue
		}
		t.Errorf("%s:%d: not a property or interrupt line (four spaces): %q", name, n, line)
	}
	// References: registration parents, interrupt targets and the cpu's nvic.
	for _, e := range entries {
		if e.parent != "sysbus" && entries[e.parent] == nil {
			t.Errorf("%s:%d: %s registered at undefined %q", name, e.line, e.name, e.parent)
		}
		if e.parent == "sysbus" && e.typ != "CPU.CortexM" && !e.hasAddr {
			t.Errorf("%s:%d: %s on sysbus without an address", name, e.line, e.name)
		}
		for _, irq := range e.irqs {
			target, _, _ := strings.Cut(irq, "@")
			if entries[target] == nil {
				t.Errorf("%s: %s -> %s: undefined target", name, e.name, irq)
			}
		}
		if v, ok := e.attrs["nvic"]; ok && entries[v] == nil {
			t.Errorf("%s: %s: nvic %q undefined", name, e.name, v)
		}
		if v, ok := e.attrs["size"]; ok {
			if _, err := strconv.ParseUint(v, 0, 64); err != nil {
				t.Errorf("%s: %s: size %q: %v", name, e.name, v, err)
			}
		}
	}
	return entries
}

func size(t *testing.T, e *entry) int64 {
	v, err := strconv.ParseInt(e.attrs["size"], 0, 64)
	if err != nil {
		t.Fatalf("%s: size %q: %v", e.name, e.attrs["size"], err)
	}
	return v
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
				t.Fatalf("%s or its script is not in renode/platforms", b.RenodePlatform)
			}
			entries := parseRepl(t, b.RenodePlatform, read(t, b.RenodePlatform))

			cpu := entries["cpu"]
			if cpu == nil || cpu.typ != "CPU.CortexM" || cpu.attrs["cpuType"] != `"cortex-m4f"` || cpu.attrs["nvic"] != "nvic" {
				t.Errorf("want a cortex-m4f cpu with nvic: nvic, got %+v", cpu)
			}
			if nv := entries["nvic"]; nv == nil || nv.typ != "IRQControllers.NVIC" || nv.addr != 0xE000E000 ||
				len(nv.irqs) != 1 || nv.irqs[0] != "cpu@0" {
				t.Errorf("want the NVIC at 0xE000E000 wired to cpu@0, got %+v", nv)
			}
			// Memory figures: "flash" is the code flash, "sram*" and "ccm" the RAM.
			var ram, flash int64
			for _, e := range entries {
				if e.typ != "Memory.MappedMemory" {
					continue
				}
				switch {
				case e.name == "flash":
					flash += size(t, e)
				case strings.HasPrefix(e.name, "sram") || e.name == "ccm":
					ram += size(t, e)
				}
			}
			if ram != b.RAMBytes || flash != b.FlashBytes {
				t.Errorf("RAM %d flash %d bytes, catalogue says RAM %d flash %d", ram, flash, b.RAMBytes, b.FlashBytes)
			}
			if e := entries["sram"]; e == nil || e.addr != 0x20000000 {
				t.Errorf("want SRAM at 0x20000000, got %+v", e)
			}
			uart := entries[strings.ToLower(b.UART)]
			if uart == nil || !strings.HasPrefix(uart.typ, "UART.") {
				t.Errorf("catalogue UART %s is not a UART in the platform: %+v", b.UART, uart)
			}

			checkScript(t, b, entries)
		})
	}
}

// checkScript checks a .resc: its variables, that it loads the platform, that every
// sysbus peripheral it names exists, and that the catalogue's UART is the one served
// on $port without telnet negotiation.
func checkScript(t *testing.T, b boards.Board, entries map[string]*entry) {
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
	if vars["platform"] != "@renode/platforms/"+b.RenodePlatform {
		t.Errorf("%s: $platform default %q, want @renode/platforms/%s", name, vars["platform"], b.RenodePlatform)
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
