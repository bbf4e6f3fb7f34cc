/* Internal structures shared by the loader and the interpreter. Not API. */
#ifndef WASMBED_WASM_INT_H
#define WASMBED_WASM_INT_H

#include "wasm.h"

#define WASM_PAGE 65536u
#define WASM_MAX_PAGES 65536u
#define WASM_NONE 0xffffffffu

/*
 * Side-table entry, one per branch site (if, else, br, br_if, br_table
 * target), in code order. Taking a branch moves `keep` values to operand
 * height `height` and continues at code offset `pc` with side-table index
 * `stp`. Not taking a br_if / taking the then-arm of an if skips the entry.
 */
typedef struct wasm_branch {
    uint32_t pc;      /* target offset from the start of the binary */
    uint32_t stp;     /* side-table index to continue with */
    uint16_t height;  /* operand stack height (slots above the locals) */
    uint16_t keep;    /* values carried (block arity; 0 for loops) */
} wasm_branch;

typedef struct wasm_funcdef {
    const uint8_t *code;   /* first instruction */
    const uint8_t *end;    /* the function's final `end` opcode */
    uint32_t nlocals;      /* declared locals, params excluded */
    uint32_t max_height;   /* max operand stack height */
    uint32_t st;           /* first side-table entry */
    uint32_t frame_slots;  /* params + locals + max_height: checked once per call */
    uint32_t nresults;
} wasm_funcdef;

typedef struct wasm_globaldef {
    uint8_t type, mut, imported;
    const uint8_t *init;   /* constant expression (defined globals) */
} wasm_globaldef;

typedef struct wasm_export {
    const uint8_t *name;
    uint32_t name_len;
    uint8_t kind;
    uint32_t index;
} wasm_export;

typedef struct wasm_elemseg {
    const uint8_t *offset; /* constant expression */
    const uint8_t *funcs;  /* LEB-encoded function indices */
    uint32_t count;
} wasm_elemseg;

typedef struct wasm_dataseg {
    const uint8_t *offset;
    const uint8_t *data;
    uint32_t len;
} wasm_dataseg;

typedef struct wasm_limits {
    uint32_t min, max;
    uint8_t has_max, present, imported;
} wasm_limits;

struct wasm_module {
    const uint8_t *bin;
    uint32_t len;
    uint32_t ntypes, nimports, nfuncs, nfunc_imports, nglobals, nglobal_imports;
    uint32_t nexports, nelems, ndatas, nbranches;
    uint32_t start;             /* WASM_NONE if absent */
    wasm_functype *types;
    wasm_import *imports;
    uint32_t *func_type;        /* type index per function (imports first) */
    wasm_funcdef *funcs;        /* defined functions */
    wasm_globaldef *globals;
    wasm_export *exports;
    wasm_elemseg *elems;
    wasm_dataseg *datas;
    wasm_branch *branches;
    wasm_limits table, memory;
};

struct wasm_instance {
    const wasm_module *mod;
    wasm_func **funcs;          /* index space: imports resolved, then own */
    wasm_func *own;             /* storage for defined functions */
    wasm_global **globals;
    wasm_global *own_globals;
    wasm_memory *mem;
    wasm_table *table;
    wasm_memory own_mem;
    wasm_table own_table;
    wasm_slot *stack, *stack_end;
    void *frames;               /* call frames (interpreter private) */
    uint32_t depth_max;
    uint64_t fuel;
    void *user;
};

/* LEB128 readers shared by loader and interpreter (no checks: code was validated). */
static inline uint32_t wasm_rd_u32(const uint8_t **p)
{
    const uint8_t *q = *p;
    uint32_t r = *q++;
    if (r & 0x80) {
        uint32_t shift = 7, b;
        r &= 0x7f;
        do {
            b = *q++;
            r |= (b & 0x7f) << shift;
            shift += 7;
        } while (b & 0x80);
    }
    *p = q;
    return r;
}

static inline uint64_t wasm_rd_s64(const uint8_t **p)
{
    const uint8_t *q = *p;
    uint64_t r = 0;
    uint32_t shift = 0, b;
    do {
        b = *q++;
        r |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
    } while (b & 0x80);
    if (shift < 64 && (b & 0x40))
        r |= ~(uint64_t)0 << shift;
    *p = q;
    return r;
}

static inline uint32_t wasm_rd_s32(const uint8_t **p)
{
    const uint8_t *q = *p;
    uint32_t r = *q++;
    if (!(r & 0x80))
        r = (r & 0x40) ? (r | 0xffffff80u) : r;
    else {
        uint32_t shift = 7, b = r;
        r &= 0x7f;
        do {
            b = *q++;
            r |= (b & 0x7f) << shift;
            shift += 7;
        } while (b & 0x80);
        if (shift < 32 && (b & 0x40))
            r |= ~(uint32_t)0 << shift;
    }
    *p = q;
    return r;
}

/*
 * By-value variants for the interpreter: they return the advanced pointer,
 * so the caller's pc never has its address taken and can stay in a register.
 */
const uint8_t *wasm_leb_u32(const uint8_t *p, uint32_t *v);
const uint8_t *wasm_leb_s32(const uint8_t *p, uint32_t *v);
const uint8_t *wasm_leb_s64(const uint8_t *p, uint64_t *v);
const uint8_t *wasm_leb_skip(const uint8_t *p);

int wasm_functype_eq(const wasm_functype *a, const wasm_functype *b);

#endif
