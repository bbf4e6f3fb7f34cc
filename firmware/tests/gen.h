/* Random valid WebAssembly modules for differential fuzzing (tests/gen.c). */
#ifndef WASMBED_TESTS_GEN_H
#define WASMBED_TESTS_GEN_H

#include <stdint.h>

/* Writes a module of two functions (i32 i32) -> i32, exported as f0 and f1, into out;
 * returns its length, or 0 if cap is too small. rnd supplies the randomness. */
uint32_t gen_module(uint8_t *out, uint32_t cap, uint32_t (*rnd)(void));

#endif
