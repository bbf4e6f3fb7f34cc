// Package boards is the catalogue of microcontroller boards Wasmbed supports: their real
// memory figures, the budget an application gets on each, and how each is emulated.
// The Device CRD's board enum, the validator and the board manager all read it.
package boards

import (
	"fmt"
	"sort"
	"strings"
)

// KiB and MiB are byte multiples used by the catalogue.
const (
	KiB = 1024
	MiB = 1024 * KiB
)

// Emulator names the program that runs a board for development and tests.
type Emulator string

// Emulators a board can be run with.
const (
	// EmulatorQEMU is qemu-system-arm, available from Debian.
	EmulatorQEMU Emulator = "qemu"
	// EmulatorRenode is Antmicro's Renode, used where QEMU has no model of the board.
	EmulatorRenode Emulator = "renode"
	// EmulatorVirtual is the pure-Go virtual device (`wasmbed device sim`).
	EmulatorVirtual Emulator = "virtual"
)

// Board describes one board model.
type Board struct {
	// Name is the catalogue key used in Device.spec.board.
	Name string
	// Description is a human-readable name of the real board.
	Description string
	// MCU is the microcontroller part number.
	MCU string
	// CPU is the core, e.g. "cortex-m4".
	CPU string
	// FPU reports a single-precision hardware FPU; without one floats are soft-float.
	FPU bool
	// RAMBytes and FlashBytes are the part's real on-chip memory sizes.
	RAMBytes, FlashBytes int64
	// AppMemoryBytes is the RAM that backs an application's linear memory once the
	// firmware has taken its share (the firmware's WBD_MEM_CAP for the board).
	AppMemoryBytes int64
	// MaxModuleBytes is the largest module the firmware accepts (its WBD_SLOT_SIZE).
	MaxModuleBytes int64
	// MaxTableElements is the largest table a module may declare (the firmware's
	// WB_MAX_TABLE); a module over it fails to load with "table size exceeds the
	// device limit". Zero means no limit (the virtual board).
	MaxTableElements uint32
	// Emulator runs the board for development; Machine is the emulator's machine name
	// (QEMU -M value or the Renode platform file).
	Emulator Emulator
	Machine  string
	// UART is the serial port the firmware speaks the device protocol on.
	UART string
	// RenodePlatform is the board's Renode platform description in emulation/platforms,
	// when one exists (its script has the same name ending in .resc). It equals Machine
	// for boards only Renode runs.
	RenodePlatform string
	// LEDs and GPIOs are the user LEDs and GPIO pins the board exposes to applications.
	LEDs, GPIOs int
	// ABIVersion is the application ABI (docs/abi.md) the board's firmware implements and
	// reports in its Hello; the validator refuses a module that uses a WebAssembly feature
	// outside it.
	ABIVersion int
}

// catalogue holds every supported board. Figures are the parts' datasheet values.
var catalogue = []Board{
	{
		Name:             "stm32f4-discovery",
		Description:      "STMicroelectronics STM32F4 Discovery",
		MCU:              "STM32F407VG",
		CPU:              "cortex-m4",
		FPU:              true,
		RAMBytes:         192 * KiB, // 128 KiB SRAM + 64 KiB CCM
		FlashBytes:       1 * MiB,
		AppMemoryBytes:   12 * KiB, // firmware/boards/stm32f4-discovery/board.mk: WBD_MEM_CAP
		MaxModuleBytes:   16 * KiB, // WBD_SLOT_SIZE
		MaxTableElements: 512,      // WB_MAX_TABLE
		// QEMU has no STM32F407 Discovery model; netduinoplus2 is an STM32F405 with
		// the same core, memory map and USART.
		Emulator:       EmulatorQEMU,
		Machine:        "netduinoplus2",
		UART:           "USART1",
		RenodePlatform: "stm32f4_discovery.repl",
		LEDs:           4,
		GPIOs:          16,
		ABIVersion:     2,
	},
	{
		Name:             "mps2-an386",
		Description:      "Arm MPS2 FPGA board with the AN386 Cortex-M4 image",
		MCU:              "AN386",
		CPU:              "cortex-m4",
		FPU:              true,
		RAMBytes:         4 * MiB,
		FlashBytes:       4 * MiB,
		AppMemoryBytes:   128 * KiB, // firmware/boards/mps2-an386/board.mk: WBD_MEM_CAP
		MaxModuleBytes:   64 * KiB,  // WBD_SLOT_SIZE
		MaxTableElements: 2048,      // WB_MAX_TABLE
		Emulator:         EmulatorQEMU,
		Machine:          "mps2-an386",
		UART:             "UART0",
		LEDs:             2,
		GPIOs:            16,
		ABIVersion:       2,
	},
	{
		Name:             "nrf52840-nano33ble",
		Description:      "Arduino Nano 33 BLE",
		MCU:              "nRF52840",
		CPU:              "cortex-m4",
		FPU:              true,
		RAMBytes:         256 * KiB,
		FlashBytes:       1 * MiB,
		AppMemoryBytes:   64 * KiB, // firmware/boards/nrf52840-nano33ble/board.mk: WBD_MEM_CAP
		MaxModuleBytes:   16 * KiB, // WBD_SLOT_SIZE
		MaxTableElements: 1024,     // WB_MAX_TABLE
		Emulator:         EmulatorRenode,
		Machine:          "arduino_nano_33_ble.repl",
		UART:             "uart0",
		RenodePlatform:   "arduino_nano_33_ble.repl",
		LEDs:             1,
		GPIOs:            14,
		ABIVersion:       2,
	},
	{
		Name:             "arduino-uno-r4",
		Description:      "Arduino Uno R4 Minima",
		MCU:              "R7FA4M1AB (RA4M1)",
		CPU:              "cortex-m4",
		FPU:              true,
		RAMBytes:         32 * KiB,
		FlashBytes:       256 * KiB,
		AppMemoryBytes:   6 * KiB, // firmware/boards/arduino-uno-r4/board.mk: WBD_MEM_CAP
		MaxModuleBytes:   3 * KiB, // WBD_SLOT_SIZE
		MaxTableElements: 512,     // WB_MAX_TABLE
		Emulator:         EmulatorRenode,
		Machine:          "arduino_uno_r4_minima.repl",
		UART:             "sci2",
		RenodePlatform:   "arduino_uno_r4_minima.repl",
		LEDs:             1,
		GPIOs:            14,
		ABIVersion:       2,
	},
	{
		Name:           "virtual",
		Description:    "Wasmbed virtual device (Go, wazero)",
		MCU:            "none",
		CPU:            "host",
		FPU:            true,
		RAMBytes:       256 * KiB,
		FlashBytes:     1 * MiB,
		AppMemoryBytes: 128 * KiB,
		MaxModuleBytes: 256 * KiB,
		Emulator:       EmulatorVirtual,
		LEDs:           4,
		GPIOs:          16,
		ABIVersion:     2,
	},
}

// All returns every board in the catalogue, sorted by name.
func All() []Board {
	out := append([]Board(nil), catalogue...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Names returns the catalogue keys, sorted.
func Names() []string {
	all := All()
	names := make([]string, len(all))
	for i, b := range all {
		names[i] = b.Name
	}
	return names
}

// Lookup returns the board called name, or an error that lists the known boards.
func Lookup(name string) (Board, error) {
	for _, b := range catalogue {
		if b.Name == name {
			return b, nil
		}
	}
	return Board{}, fmt.Errorf("unknown board %q (known: %s)", name, strings.Join(Names(), ", "))
}
