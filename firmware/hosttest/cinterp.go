// Package hosttest drives the C interpreter (firmware/wasm) from Go through cgo, so it
// can be checked against wazero, the engine of the validator and the device simulator.
package hosttest

/*
#cgo CFLAGS: -std=c11 -O1 -Wall
#include <stdlib.h>
#include <string.h>
#include "../wasm/wasm.h"

typedef struct ti {
	void *arena, *bin, *mem;
	wasm_module *m;
	wasm_instance *inst;
	wasm_slot slots[64];
} ti;

#define TI_ARENA (16u << 20)

static int ti_load(const void *bin, uint32_t len, ti **out, int instantiate, int mvp) {
	ti *t = calloc(1, sizeof *t);
	wasm_arena a;
	*out = t;
	t->arena = malloc(TI_ARENA);
	t->bin = malloc(len + 1);
	memcpy(t->bin, bin, len);
	wasm_arena_init(&a, t->arena, TI_ARENA);
	wasm_load_limits lim = {.mvp = (uint8_t)mvp};
	wasm_err e = wasm_module_load_limited(t->bin, len, &lim, &a, &t->m);
	if (e || !instantiate) return e;
	wasm_config cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.stack_slots = 16384;
	cfg.call_depth = 1000;
	cfg.table_cap = 1u << 18; // wazero bounds no table below 2^27 elements: enough for the tests' table.grow
	uint32_t minp, maxp; int has_max;
	if (wasm_module_memory(t->m, &minp, &maxp, &has_max)) {
		uint64_t pages = has_max && maxp < 64 ? maxp : 64;
		if (pages < minp) pages = minp;
		t->mem = calloc(1, pages * 65536 + 1);
		cfg.mem_buf = t->mem;
		cfg.mem_cap = (uint32_t)(pages * 65536);
	}
	return wasm_instantiate(t->m, &cfg, &a, 10000000, &t->inst);
}

static int ti_call(ti *t, const char *name, uint32_t nlen, uint64_t fuel) {
	wasm_extern ex;
	if (wasm_instance_export(t->inst, name, nlen, &ex) || ex.kind != WASM_EXTERN_FUNC) return -1;
	wasm_set_fuel(t->inst, fuel);
	return wasm_call_func(t->inst, ex.func, t->slots);
}

static size_t ti_code_bytes(ti *t) { return wasm_module_code_bytes(t->m); }

static void ti_free(ti *t) {
	free(t->arena); free(t->bin); free(t->mem); free(t);
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Err is a wasm_err code of the C interpreter.
type Err int

func (e Err) Error() string { return C.GoString(C.wasm_err_str(C.wasm_err(e))) }

// Class returns the error class (malformed, invalid, trap...).
func (e Err) Class() int { return int(C.wasm_err_classify(C.wasm_err(e))) }

// Class values of wasm_err_classify.
const (
	ClassOK          = int(C.WASM_CLASS_OK)
	ClassMalformed   = int(C.WASM_CLASS_MALFORMED)
	ClassUnsupported = int(C.WASM_CLASS_UNSUPPORTED)
	ClassInvalid     = int(C.WASM_CLASS_INVALID)
	ClassTrap        = int(C.WASM_CLASS_TRAP)
)

// ErrFuel and ErrStack are the C interpreter's resource traps.
const (
	ErrFuel  = Err(C.WASM_TRAP_FUEL)
	ErrStack = Err(C.WASM_TRAP_STACK_OVERFLOW)
)

// Instance is a module loaded (and optionally instantiated) by the C interpreter.
type Instance struct{ t *C.ti }

// Load decodes and validates bin, and instantiates it when instantiate is set. The
// returned Instance must be closed even when err is not nil.
func Load(bin []byte, instantiate bool) (*Instance, error) { return load(bin, instantiate, false) }

// LoadMVP is Load under WebAssembly 1.0's rules where 2.0 changed them (wasm_load_limits.mvp).
func LoadMVP(bin []byte, instantiate bool) (*Instance, error) { return load(bin, instantiate, true) }

func load(bin []byte, instantiate, mvp bool) (*Instance, error) {
	var t *C.ti
	p := C.CBytes(bin)
	defer C.free(p)
	inst, v1 := 0, 0
	if instantiate {
		inst = 1
	}
	if mvp {
		v1 = 1
	}
	e := C.ti_load(p, C.uint32_t(len(bin)), &t, C.int(inst), C.int(v1))
	in := &Instance{t: t}
	if e != 0 {
		return in, Err(e)
	}
	return in, nil
}

// Call invokes an exported function with raw 64-bit argument slots under fuel.
func (in *Instance) Call(name string, args []uint64, nresults int, fuel uint64) ([]uint64, error) {
	if len(args) > 64 || nresults > 64 {
		return nil, fmt.Errorf("too many values")
	}
	for i, a := range args {
		in.t.slots[i] = C.wasm_slot(a)
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	e := C.ti_call(in.t, cname, C.uint32_t(len(name)), C.uint64_t(fuel))
	if e < 0 {
		return nil, fmt.Errorf("no function export %q", name)
	}
	if e != 0 {
		return nil, Err(e)
	}
	res := make([]uint64, nresults)
	for i := range res {
		res[i] = uint64(in.t.slots[i])
	}
	return res, nil
}

// CodeBytes is the size of the translated code the interpreter keeps for the module:
// the RAM a device spends on it beyond the module binary.
func (in *Instance) CodeBytes() int { return int(C.ti_code_bytes(in.t)) }

// Close frees the instance.
func (in *Instance) Close() {
	if in.t != nil {
		C.ti_free(in.t)
		in.t = nil
	}
}
