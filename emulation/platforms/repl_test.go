package platforms_test

import (
	"strings"
	"testing"

	"github.com/wasmbed/wasmbed/emulation/platforms"
)

func TestParse(t *testing.T) {
	const good = `// a comment
uart0: UART.NRF52840_UART @ sysbus 0x40002000
    easyDMA: true
    IRQ -> nvic@2

sram: Memory.MappedMemory @ sysbus 0x20000000
    size: 0x40000

led: Miscellaneous.LED @ gpio0 13

uart0:
    extra: 1
`
	d, errs := platforms.Parse("good.repl", good)
	if len(errs) != 0 {
		t.Fatalf("errors: %v", errs)
	}
	u := d["uart0"]
	if u == nil || u.Type != "UART.NRF52840_UART" || u.Parent != "sysbus" || !u.HasAddress || u.Address != 0x40002000 ||
		u.Attrs["easyDMA"] != "true" || u.Attrs["extra"] != "1" || len(u.IRQs) != 1 || u.IRQs[0] != "nvic@2" || u.Line != 2 {
		t.Errorf("uart0 = %+v", u)
	}
	if n, err := d["sram"].Size(); err != nil || n != 0x40000 {
		t.Errorf("sram size = %d, %v", n, err)
	}
	if _, err := d["uart0"].Size(); err == nil {
		t.Error("uart0 has no size, want an error")
	}
	if l := d["led"]; l == nil || l.Parent != "gpio0" || l.Address != 13 {
		t.Errorf("led = %+v", l)
	}

	for _, tc := range []struct {
		name, text, want string
	}{
		{"tab", "a: Memory.MappedMemory @ sysbus 0x0\n\tsize: 1\n", "tab in indentation"},
		{"indented comment", "  // note\n", "indented comment"},
		{"bad head", "a Memory.MappedMemory @ sysbus\n", "not a peripheral head"},
		{"type", "a: memory @ sysbus 0x0\n", "not Namespace.Class"},
		{"twice", "a: X.Y @ sysbus 0x0\n\na: X.Y @ sysbus 0x4\n", "defined twice"},
		{"undefined extension", "b:\n    size: 1\n", "extends an undefined peripheral"},
		{"outside", "    size: 1\n", "outside a peripheral"},
		{"two spaces", "a: X.Y @ sysbus 0x0\n  size: 1\n", "not a property or interrupt line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := platforms.Parse("x.repl", tc.text)
			if len(errs) == 0 || !strings.Contains(errs[0].Error(), tc.want) {
				t.Errorf("errors %v, want one containing %q", errs, tc.want)
			}
		})
	}
}

// TestUsing: a file that includes a recorded Renode CPU file resolves to its
// peripherals, extended by the file's own; includes that are not recorded, peripherals
// defined twice and extensions of nothing are errors.
func TestUsing(t *testing.T) {
	const board = `using "platforms/cpus/nrf52840.repl"

nvic:
    systickFrequency: 64000000

led: Miscellaneous.LED @ gpio0 13

gpio0:
    13 -> led@0
`
	f, errs := platforms.ParseFile("board.repl", board)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	d, err := platforms.Resolve(f)
	if err != nil {
		t.Fatal(err)
	}
	if n := d["nvic"]; n == nil || n.Address != 0xE000E000 || n.Attrs["systickFrequency"] != "64000000" || len(n.IRQs) != 1 {
		t.Errorf("nvic = %+v", n)
	}
	if g := d["gpio0"]; g == nil || g.Address != 0x50000500 || len(g.IRQs) != 1 || g.IRQs[0] != "led@0" {
		t.Errorf("gpio0 = %+v", g)
	}
	if _, errs := platforms.Parse("board.repl", board); len(errs) == 0 {
		t.Error("Parse of a file with using: want an error pointing at ParseFile")
	}
	for _, tc := range []struct{ name, text, want string }{
		{"unrecorded", "using \"platforms/cpus/other.repl\"\n", "not a Renode CPU file recorded"},
		{"twice", "using \"platforms/cpus/nrf52840.repl\"\n\nuart0: UART.NRF52840_UART @ sysbus 0x40002000\n", "already defined by an included file"},
		{"extends nothing", "using \"platforms/cpus/nrf52840.repl\"\n\nnothing:\n    size: 1\n", "extends a peripheral no included file defines"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, errs := platforms.ParseFile("x.repl", tc.text)
			if len(errs) != 0 {
				t.Fatal(errs)
			}
			if _, err := platforms.Resolve(f); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
	if _, errs := platforms.ParseFile("x.repl", "a: X.Y @ sysbus 0x0\n\nusing \"platforms/cpus/nrf52840.repl\"\n"); len(errs) == 0 {
		t.Error("using after a peripheral: want an error")
	}
}

func TestDescribe(t *testing.T) {
	d, err := platforms.Describe("arduino_uno_r4_minima.repl")
	if err != nil {
		t.Fatal(err)
	}
	if s := d["sci2"]; s == nil || s.Address != 0x40070040 {
		t.Errorf("sci2 = %+v", s)
	}
	if _, err := platforms.Describe("missing.repl"); err == nil {
		t.Error("missing.repl: want an error")
	}
}
