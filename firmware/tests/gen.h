/* Random WebAssembly modules for fuzzing (tests/gen.c): valid ones for differential
 * fuzzing, and size-edge ones whose outcome is known. */
#ifndef WASMBED_TESTS_GEN_H
#define WASMBED_TESTS_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "../wasm/wasm.h"

/* Writes a module of two functions (i32 i32) -> i32, exported as f0 and f1, into out;
 * returns its length, or 0 if cap is too small. rnd supplies the randomness. */
uint32_t gen_module(uint8_t *out, uint32_t cap, uint32_t (*rnd)(void));

/*
 * Size-edge modules: counts at and past every limit where a count becomes a size (table
 * minimums, element and data segments at the end of the address space, local counts,
 * memory limits, vector counts longer than their section), each with the outcome the
 * interpreter must give, the same on every word size. gen_edge_check runs them with
 * these settings: the default load limits (WASM_MAX_TABLE), memories backed by
 * GEN_EDGE_MEM_CAP bytes, GEN_EDGE_STACK_SLOTS value slots, an arena of GEN_EDGE_ARENA
 * bytes or more (it holds a WASM_MAX_TABLE table on a 64-bit host).
 */
#define GEN_EDGE_MEM_CAP (2u * 65536u)
#define GEN_EDGE_STACK_SLOTS 1024u
#define GEN_EDGE_ARENA ((size_t)1 << 20)

enum { EDGE_TABLE, EDGE_TABLE_IMPORT, EDGE_ELEM, EDGE_DATA, EDGE_LOCALS, EDGE_MEMORY, EDGE_COUNT, EDGE_KINDS };

typedef struct gen_edge {
    uint8_t kind;    /* EDGE_* */
    uint8_t has_max; /* TABLE, TABLE_IMPORT, MEMORY: b is the maximum */
    uint8_t lift;    /* TABLE, ELEM: loaded with max_table 2^32 - 1, so instantiation meets the size */
    uint8_t short_;  /* ELEM, DATA: the count (c) claims more entries or bytes than follow */
    uint32_t a, b, c;
    /* TABLE, TABLE_IMPORT: a = minimum, b = maximum
     * ELEM: a = table minimum, b = segment offset, c = element count
     * DATA: a = memory pages, b = segment offset, c = byte count
     * LOCALS: a = i32 locals, b = i64 locals (a second group when not 0)
     * MEMORY: a = minimum, b = maximum
     * COUNT: a = the vector count, b = section id (1..11) */
} gen_edge;

/* What the module must do: load error, then instantiation's, then calling export "f". */
typedef struct gen_edge_want {
    wasm_err load, inst, call;
} gen_edge_want;

/* Random edge parameters. */
void gen_edge_pick(gen_edge *e, uint32_t (*rnd)(void));
/* Writes the module into out and its expected outcome into *want; returns its length (0: cap too small). */
uint32_t gen_edge_module(const gen_edge *e, uint8_t *out, uint32_t cap, gen_edge_want *want);
/* Runs it: load, instantiate, call "f", and checks what each left (table and memory sizes, the
 * segments' contents). 0 when it behaves as wanted; else 1 with the difference in why. */
int gen_edge_check(const gen_edge *e, const uint8_t *bin, uint32_t len, const gen_edge_want *want,
                   uint8_t *arena, size_t arena_size, char *why, size_t why_size);
/* A one-line description of the case, for messages. */
void gen_edge_name(const gen_edge *e, char *buf, size_t size);

#endif
