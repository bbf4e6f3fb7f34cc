package boards_test

import (
	"strings"
	"testing"

	"github.com/wasmbed/wasmbed/api/boards"
)

func TestCatalogueFigures(t *testing.T) {
	// The datasheet figures the architecture document insists on.
	want := map[string]struct{ ram, flash int64 }{
		"stm32f4-discovery":  {192 * boards.KiB, 1 * boards.MiB},
		"nrf52840-nano33ble": {256 * boards.KiB, 1 * boards.MiB},
		"arduino-uno-r4":     {32 * boards.KiB, 256 * boards.KiB},
	}
	for name, w := range want {
		b, err := boards.Lookup(name)
		if err != nil {
			t.Fatalf("Lookup(%q): %v", name, err)
		}
		if b.RAMBytes != w.ram || b.FlashBytes != w.flash {
			t.Errorf("%s: RAM %d flash %d, want RAM %d flash %d", name, b.RAMBytes, b.FlashBytes, w.ram, w.flash)
		}
	}
}

func TestCatalogueConsistent(t *testing.T) {
	seen := map[string]bool{}
	for _, b := range boards.All() {
		if seen[b.Name] {
			t.Errorf("board %q listed twice", b.Name)
		}
		seen[b.Name] = true
		if b.AppMemoryBytes <= 0 || b.AppMemoryBytes >= b.RAMBytes {
			t.Errorf("%s: app memory budget %d must be positive and below RAM %d", b.Name, b.AppMemoryBytes, b.RAMBytes)
		}
		if b.MaxModuleBytes <= 0 || b.MaxModuleBytes > b.FlashBytes {
			t.Errorf("%s: module budget %d must be positive and within flash %d", b.Name, b.MaxModuleBytes, b.FlashBytes)
		}
		if b.Emulator != boards.EmulatorVirtual && b.Machine == "" {
			t.Errorf("%s: emulated with %s but no machine", b.Name, b.Emulator)
		}
	}
}

func TestLookupUnknown(t *testing.T) {
	_, err := boards.Lookup("esp32")
	if err == nil || !strings.Contains(err.Error(), `"esp32"`) || !strings.Contains(err.Error(), "stm32f4-discovery") {
		t.Fatalf("Lookup(esp32) error = %v, want one naming the board and the known ones", err)
	}
}
