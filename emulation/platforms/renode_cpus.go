package platforms

import "strconv"

// RenodeCPU is what this repository records of one of Renode's CPU platform files
// (platforms/cpus/*.repl in renode/renode): the peripherals a board file that includes
// it ("using") builds on, with their types, addresses, properties and interrupt lines,
// read from the file at Source. Renode is not installed where Wasmbed is tested, so
// Describe resolves includes from this table; a property this repository does not use
// may be left out, an address never. A peripheral Renode registers at several places
// records the first as its Address and the others as properties (their region name, or
// "alias").
type RenodeCPU struct {
	// Source is "<repository>@<commit> <path>" of the file read.
	Source      string
	Peripherals []Peripheral
}

func sysbus(name, typ string, addr uint64, attrs map[string]string, irqs ...string) Peripheral {
	if attrs == nil {
		attrs = map[string]string{}
	}
	return Peripheral{Name: name, Type: typ, Parent: "sysbus", Address: addr, HasAddress: true, Attrs: attrs, IRQs: irqs}
}

func cpu(cpuType string) Peripheral {
	return Peripheral{Name: "cpu", Type: "CPU.CortexM", Parent: "sysbus", Attrs: map[string]string{"cpuType": `"` + cpuType + `"`, "nvic": "nvic"}}
}

// RenodeCPUs are the Renode CPU files the platforms here include, by the path "using"
// names.
var RenodeCPUs = map[string]RenodeCPU{
	"platforms/cpus/nrf52840.repl": {
		Source: "renode/renode@05ac5d6a4637790d8646c9376984a960dd9e0b4c platforms/cpus/nrf52840.repl",
		Peripherals: []Peripheral{
			sysbus("nvic", "IRQControllers.NVIC", 0xE000E000, nil, "cpu@0"),
			cpu("cortex-m4"),
			sysbus("flash", "Memory.MappedMemory", 0x0, map[string]string{"size": "0x100000"}),
			sysbus("ram", "Memory.MappedMemory", 0x20000000, map[string]string{"size": "0x40000", "alias": "0x800000"}),
			sysbus("clock", "Miscellaneous.NRF52840_CLOCK", 0x40000000, nil, "nvic@0"),
			sysbus("radio", "Wireless.NRF52840_Radio", 0x40001000, nil, "nvic@1"),
			sysbus("uart0", "UART.NRF52840_UART", 0x40002000, map[string]string{"easyDMA": "true"}, "nvic@2"),
			sysbus("twi0", "I2C.NRF52840_I2C", 0x40003000, nil, "nvic@3"),
			sysbus("twi1", "I2C.NRF52840_I2C", 0x40004000, nil, "nvic@4"),
			sysbus("gpiote", "GPIOPort.NRF52840_GPIOTasksEvents", 0x40006000, map[string]string{"port0": "gpio0", "port1": "gpio1"}, "nvic@6"),
			sysbus("timer0", "Timers.NRF52840_Timer", 0x40008000, map[string]string{"numberOfEvents": "4"}, "nvic@8"),
			sysbus("timer1", "Timers.NRF52840_Timer", 0x40009000, map[string]string{"numberOfEvents": "4"}, "nvic@9"),
			sysbus("timer2", "Timers.NRF52840_Timer", 0x4000A000, map[string]string{"numberOfEvents": "4"}, "nvic@10"),
			sysbus("rtc0", "Timers.NRF52840_RTC", 0x4000B000, map[string]string{"numberOfEvents": "3"}, "nvic@11"),
			sysbus("rng", "Miscellaneous.NRF52840_RNG", 0x4000D000, nil, "nvic@13"),
			sysbus("ecb", "Miscellaneous.NRF52840_ECB", 0x4000E000, nil, "nvic@14"),
			sysbus("wdt", "Timers.NRF52840_Watchdog", 0x40010000, nil, "nvic@16"),
			sysbus("rtc1", "Timers.NRF52840_RTC", 0x40011000, map[string]string{"numberOfEvents": "3"}, "nvic@17"),
			sysbus("timer3", "Timers.NRF52840_Timer", 0x4001A000, map[string]string{"numberOfEvents": "6"}, "nvic@26"),
			sysbus("timer4", "Timers.NRF52840_Timer", 0x4001B000, map[string]string{"numberOfEvents": "6"}, "nvic@27"),
			sysbus("pdm", "Sound.NRF52840_PDM", 0x4001D000, nil, "nvic@29"),
			sysbus("ppi", "Miscellaneous.NRF52840_PPI", 0x4001F000, nil),
			sysbus("spi2", "SPI.NRF52840_SPI", 0x40023000, nil, "nvic@35"),
			sysbus("rtc2", "Timers.NRF52840_RTC", 0x40024000, map[string]string{"numberOfEvents": "4"}, "nvic@36"),
			sysbus("i2s", "Sound.NRF52840_I2S", 0x40025000, nil, "nvic@37"),
			sysbus("uart1", "UART.NRF52840_UART", 0x40028000, map[string]string{"easyDMA": "true"}, "nvic@40"),
			// The GPIO model's registers start at OUT = 0x004 (PIN_CNF[0] = 0x200; read in
			// renode/renode-infrastructure@b35bf3e74991cccbf64fd309b97dd7cb71676738
			// src/Emulator/Peripherals/Peripherals/GPIOPort/NRF52840_GPIO.cs): it is
			// mapped at each port's base + 0x500 (P0 0x50000000, P1 0x50000300), so that
			// the silicon's absolute addresses land on the right registers. Older Renode
			// pairs a model with OUT at 0x504 with gpio0 at 0x50000000, and has no gpio1
			// or wdt: this record is not of that version.
			sysbus("gpio0", "GPIOPort.NRF52840_GPIO", 0x50000500, nil),
			sysbus("gpio1", "GPIOPort.NRF52840_GPIO", 0x50000800, nil),
		},
	},
	"platforms/cpus/renesas-r7fa4m1a.repl": {
		Source: "renode/renode@1b64f543512d421921929e55466c67a6181367f3 platforms/cpus/renesas-r7fa4m1a.repl",
		Peripherals: append([]Peripheral{
			sysbus("nvic", "IRQControllers.NVIC", 0xE000E000, map[string]string{"systickFrequency": "120000000"}, "cpu@0"),
			cpu("cortex-m4f"),
			sysbus("code_flash", "Memory.MappedMemory", 0x0, map[string]string{"size": "0x40000"}),
			sysbus("data_flash", "Memory.MappedMemory", 0x40100000, map[string]string{"size": "0x2000"}),
			sysbus("sram", "Memory.MappedMemory", 0x20000000, map[string]string{"size": "0x8000"}),
			sysbus("icu", "IRQControllers.RenesasRA_ICU", 0x40006000, map[string]string{"nvic": "nvic"}),
			sysbus("sysc_oscsf", "Python.PythonPeripheral", 0x4001E03C, map[string]string{"size": "0x4", "value": "0xFF"}),
			sysbus("sysc_vbtsr", "Python.PythonPeripheral", 0x4001E4B1, map[string]string{"size": "0x4", "value": "0x10"}),
			sysbus("portMisc", "GPIOPort.RenesasRA_GPIOMisc", 0x40040D00, nil),
			sysbus("iic0", "I2C.RenesasRA_IIC", 0x40053000, nil, "icu@0x35", "icu@0x36", "icu@0x37", "icu@0x38"),
			sysbus("iic1", "I2C.RenesasRA_IIC", 0x40053100, nil, "icu@0x3A", "icu@0x3B", "icu@0x3C", "icu@0x3D"),
			sysbus("sci0", "SCI.RenesasRA6M5_SCI", 0x40070000, map[string]string{"frequency": "50000000", "enableFIFO": "true"}, "icu@0x98", "icu@0x99", "icu@0x9A"),
			sysbus("sci1", "SCI.RenesasRA6M5_SCI", 0x40070020, map[string]string{"frequency": "50000000", "enableFIFO": "true"}, "icu@0x9E", "icu@0x9F", "icu@0xA0"),
			// ReceiveIRQ, TransmitIRQ, TransmitEndIRQ: events SCI2_RXI, TXI, TEI. ERI
			// (0xA6) is not wired.
			sysbus("sci2", "SCI.RenesasRA6M5_SCI", 0x40070040, map[string]string{"frequency": "50000000", "enableFIFO": "false"}, "icu@0xA3", "icu@0xA4", "icu@0xA5"),
			sysbus("sci9", "SCI.RenesasRA6M5_SCI", 0x40070120, map[string]string{"frequency": "50000000", "enableFIFO": "false"}, "icu@0xA8", "icu@0xA9", "icu@0xAA"),
			sysbus("gpt", "Timers.RenesasRA_GPT", 0x40078000, nil),
			sysbus("agt0", "Timers.RenesasRA_AGT", 0x40084000, nil, "icu@0x1E", "icu@0x1F", "icu@0x20"),
			sysbus("agt1", "Timers.RenesasRA_AGT", 0x40084100, nil, "icu@0x21", "icu@0x22", "icu@0x23"),
		}, raPorts()...),
	},
}

// raPorts are the RA4M1's ports 0..9: registers at 0x40040000 + 0x20 n, pin function
// registers (PmnPFS) at 0x40040800 + 0x40 n, a second registration of the same model.
func raPorts() []Peripheral {
	out := make([]Peripheral, 0, 10)
	for n := uint64(0); n < 10; n++ {
		out = append(out, sysbus("port"+string(rune('0'+n)), "GPIOPort.RenesasRA4_GPIO", 0x40040000+0x20*n,
			map[string]string{"pinConfiguration": fmtHex(0x40040800 + 0x40*n), "pfsMisc": "portMisc"}))
	}
	return out
}

func fmtHex(v uint64) string { return "0x" + strconv.FormatUint(v, 16) }
