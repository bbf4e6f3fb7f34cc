/*
 * Float helpers with exact WebAssembly semantics, without libm: rounding to
 * integral values, sqrt (bit-by-bit, correctly rounded), min/max and
 * float->int conversions; and the 64-bit bit operations the interpreter and
 * the native tier's helper share. Internal to the engine.
 */
#ifndef WASMBED_WASM_NUM_H
#define WASMBED_WASM_NUM_H

#include <stdint.h>
#include <string.h>

static inline float f32_of(uint64_t s) { float f; uint32_t u = (uint32_t)s; memcpy(&f, &u, 4); return f; }
static inline uint64_t slot_f32(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline double f64_of(uint64_t s) { double d; memcpy(&d, &s, 8); return d; }
static inline uint64_t slot_f64(double d) { uint64_t u; memcpy(&u, &d, 8); return u; }

#define F32_SIGN 0x80000000u
#define F64_SIGN 0x8000000000000000ull

/* Rounding modes for wasm_fround */
enum { WR_TRUNC, WR_FLOOR, WR_CEIL, WR_NEAREST };

uint64_t wasm_f64_round(uint64_t bits, int mode);
uint32_t wasm_f32_round(uint32_t bits, int mode);
uint64_t wasm_f64_sqrt(uint64_t bits);
uint32_t wasm_f32_sqrt(uint32_t bits);
uint64_t wasm_f64_minmax(uint64_t a, uint64_t b, int max);
uint32_t wasm_f32_minmax(uint32_t a, uint32_t b, int max);

/*
 * Float (as double; f32 values promote exactly) to integer. kind: 0 i32_s,
 * 1 i32_u, 2 i64_s, 3 i64_u. Returns 0 or the trap code (1 invalid, 2
 * overflow); with sat != 0 never fails and saturates.
 */
int wasm_trunc(double d, int kind, int sat, uint64_t *out);

/* Bits set, leading and trailing zeros (64 for 0), rotation left by k mod 64. */
uint32_t wasm_popcnt64(uint64_t x);
uint32_t wasm_clz64(uint64_t x);
uint32_t wasm_ctz64(uint64_t x);
uint64_t wasm_rotl64(uint64_t a, uint64_t k);

#endif
