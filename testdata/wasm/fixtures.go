// Package wasm holds the WebAssembly test modules of the Wasmbed ABI: each .wat source
// and the .wasm that wat2wasm (Debian package wabt) produces from it, both committed.
package wasm

import "embed"

// FS holds every .wat source and its compiled .wasm.
//
//go:embed *.wat *.wasm
var FS embed.FS

// Modules compiled from the .wat file of the same name.
var (
	//go:embed blink.wasm
	Blink []byte
	//go:embed sensor.wasm
	Sensor []byte
	//go:embed config.wasm
	Config []byte
	//go:embed trap_setup.wasm
	TrapSetup []byte
	//go:embed trap_start.wasm
	TrapStart []byte
	//go:embed spin.wasm
	Spin []byte
	//go:embed oob_log.wasm
	OOBLog []byte
	//go:embed no_memory.wasm
	NoMemory []byte
	//go:embed grow_bomb.wasm
	GrowBomb []byte
	//go:embed big_memory.wasm
	BigMemory []byte
	//go:embed bad_import.wasm
	BadImport []byte
	//go:embed no_loop.wasm
	NoLoop []byte
	//go:embed probe.wasm
	Probe []byte
	//go:embed simd.wasm
	SIMD []byte
	//go:embed start_spin.wasm
	StartSpin []byte
	//go:embed compact.wasm
	Compact []byte
	//go:embed sleeper.wasm
	Sleeper []byte
	//go:embed log_flood.wasm
	LogFlood []byte
)
