/* Internal structures shared by the loader (validator and translator) and the interpreter. Not API. */
#ifndef WASMBED_WASM_INT_H
#define WASMBED_WASM_INT_H

#include "wasm.h"

#define WASM_PAGE 65536u
#define WASM_MAX_PAGES 65536u
#define WASM_NONE 0xffffffffu

/*
 * Translated code. The validator rewrites every function body into 16-bit
 * code units for a register machine whose registers are the frame's slots:
 * fp[0..nparams+nlocals) are the locals, fp[nparams+nlocals+h] holds the
 * operand at stack height h. An instruction is an opcode in the low byte of
 * its first unit followed by operand units: slot indices (u16), 32-bit
 * immediates and branch offsets as two units (low first), 64-bit immediates
 * as four. A branch offset is relative to the position of its own field.
 * Operand forms, by opcode:
 *   numeric 0x45..0xc4 (wasm's own numbering)  unary: dst src; binary: dst a b
 *   X_RI + k (i32 binary with an immediate)     dst a imm32   (k: ri_ops order)
 *   loads 0x28..0x35                            dst addr off32
 *   stores 0x36..0x3e                           addr val off32
 * and as listed below for the others.
 */
typedef uint16_t wasm_code;

enum {
    X_UNREACHABLE = 0x00, /* - */
    X_FUEL = 0x01,        /* n32: charge n (a function's or a loop body's instructions) */
    X_EXT = 0x02,         /* bulk memory, table and reference operations, run by wasm_ext (below):
                           * first unit op | len << 8 | sub << 12 (sub: XS_*, len: units), then as listed there */
    X_BR = 0x0c,          /* off32 */
    X_BRNZ = 0x0d,        /* cond off32 */
    X_BRTABLE = 0x0e,     /* idx n32 off32 x (n + 1), the default last */
    X_RETURN = 0x0f,      /* src (X_NOSLOT: no result); fp[0] = fp[src] */
    X_CALL = 0x10,        /* base func32: the callee's frame starts at fp[base] */
    X_CALLI = 0x11,       /* base idx type32 table16 */
    X_BRZ = 0x12,         /* cond off32 */
    X_BRL = 0x13,         /* X_BR, X_BRNZ, X_BRZ back to a loop header: they also run its X_FUEL */
    X_BRNZL = 0x14,
    X_BRZL = 0x15,
    X_RETN = 0x16,        /* src n: fp[0..n) = fp[src..src+n), then return (n >= 2 results) */
    X_SELECT = 0x1b,      /* dst a b cond */
    X_COPY = 0x20,        /* dst src */
    X_GGET = 0x23,        /* dst global16 */
    X_GSET = 0x24,        /* src global16 */
    X_MSIZE = 0x3f,       /* dst */
    X_MGROW = 0x40,       /* dst src */
    X_CONST32 = 0x41,     /* dst imm32 */
    X_CONST64 = 0x42,     /* dst imm64 */
    X_RI = 0xc5,          /* 0xc5..0xdd: i32 eq..ge_u (0x46..0x4f), add..rotr (0x6a..0x78) */
    X_RSUB = 0xde,        /* dst b imm32: imm - b */
    X_BCMP = 0xe0,        /* 0xe0..0xe9: a b off32, branch if i32 compare 0x46..0x4f of a, b holds */
    X_BCMPI = 0xea,       /* 0xea..0xf3: a imm32 off32, the same with an immediate b */
    X_TRUNC_SAT = 0xf8    /* 0xf8..0xff: 0xfc 0..7, dst src */
};
#define X_NOSLOT 0xffffu
/*
 * Flag in the unit of X_COPY and X_SELECT: the value is an i32 or f32, whose slot's high
 * word nothing reads (the native tier moves 32 bits); the interpreter dispatches on the
 * unit's low byte and ignores it.
 */
#define X_32 0x100u

/*
 * The most fuel the engines keep in their 32-bit counters; the rest waits in a reserve
 * that refills them. Test builds lower it (-DWASM_FUEL_WORD=37: make parity-m4) so that a
 * refill, otherwise seen once per 2^32 units, happens all the time.
 */
#ifndef WASM_FUEL_WORD
#define WASM_FUEL_WORD 0xffffffffu
#endif

/*
 * Sub-operations of X_EXT, with their operand units (slots unless noted). Bounds are
 * checked before anything is written, as WebAssembly 2.0 requires.
 */
enum {
    XS_MCOPY,   /* d s n                 memory.copy */
    XS_MFILL,   /* d val n               memory.fill */
    XS_MINIT,   /* d s n data32          memory.init */
    XS_DDROP,   /* data32                data.drop */
    XS_TGET,    /* dst i table16         table.get */
    XS_TSET,    /* i val table16         table.set */
    XS_TSIZE,   /* dst table16           table.size */
    XS_TGROW,   /* dst val n table16     table.grow */
    XS_TFILL,   /* i val n table16       table.fill */
    XS_TCOPY,   /* d s n dst16 src16     table.copy */
    XS_TINIT,   /* d s n table16 elem32  table.init */
    XS_EDROP,   /* elem32                elem.drop */
    XS_REFFUNC  /* dst func32            ref.func */
};
#define X_EXT_LEN(unit0) (((unit0) >> 8) & 15u)
#define X_EXT_SUB(unit0) ((unit0) >> 12)

typedef struct wasm_funcdef {
    const wasm_code *code; /* translated body */
    uint32_t nlocals;      /* declared locals, params excluded */
    uint32_t nparams;
    uint32_t max_height;   /* max operand stack height */
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

enum { SEG_ACTIVE, SEG_PASSIVE, SEG_DECLARATIVE };

typedef struct wasm_elemseg {
    const uint8_t *offset; /* active: constant expression */
    const uint8_t *items;  /* LEB-encoded function indices, or constant expressions (exprs) */
    uint32_t count;
    uint32_t table;        /* active: the table it initializes */
    uint8_t mode;          /* SEG_* */
    uint8_t exprs;
    uint8_t type;          /* WASM_FUNCREF or WASM_EXTERNREF */
} wasm_elemseg;

typedef struct wasm_dataseg {
    const uint8_t *offset; /* active: constant expression; NULL: passive */
    const uint8_t *data;
    uint32_t len;
} wasm_dataseg;

typedef struct wasm_limits {
    uint32_t min, max;
    uint8_t has_max, present, imported;
    uint8_t type;          /* tables: the element type */
} wasm_limits;

struct wasm_module {
    const uint8_t *bin;
    uint32_t len;
    uint32_t ntypes, nimports, nfuncs, nfunc_imports, nglobals, nglobal_imports;
    uint32_t nexports, nelems, ndatas, ntables;
    uint32_t ncode;             /* translated code units, all functions */
    uint32_t start;             /* WASM_NONE if absent */
    wasm_functype *types;
    wasm_import *imports;
    uint32_t *func_type;        /* type index per function (imports first) */
    wasm_funcdef *funcs;        /* defined functions */
    wasm_globaldef *globals;
    wasm_export *exports;
    wasm_elemseg *elems;
    wasm_dataseg *datas;
    wasm_code *code;            /* translated code of every defined function */
    wasm_limits *tables;        /* imported first */
    wasm_limits memory;
    uint8_t grows_tables;       /* some function has table.grow */
    uint8_t mvp;                /* loaded under WebAssembly 1.0's rules (wasm_load_limits.mvp) */
};

struct wasm_instance {
    const wasm_module *mod;
    wasm_func **funcs;          /* index space: imports resolved, then own */
    wasm_func *own;             /* storage for defined functions */
    wasm_global **globals;
    wasm_global *own_globals;
    wasm_memory *mem;
    wasm_table **tables;        /* index space: imported, then own */
    wasm_memory own_mem;
    wasm_table *own_tables;
    uint8_t *dropped;           /* per element segment, then per data segment: 1 once dropped */
    wasm_slot *stack, *stack_end;
    void *frames;               /* call frames (interpreter private) */
    uint32_t depth_max;
    uint32_t machine_stack;     /* WASM_JIT: machine stack bytes a call may use (wasm_config) */
    uintptr_t stack_floor;      /* WASM_JIT: the lowest of them in the current call */
    uint32_t nnative;           /* functions compiled to native code */
    uint32_t native_bytes;      /* and the arena bytes of their code */
    uint64_t fuel;
    void *user;
};

/*
 * Interprets wasm function entry on the frame fp of owner's value stack (its
 * arguments in place; its result is left in fp[0]) with interpreter frames
 * from owner->frames[base] and at most `limit` nested calls. Fuel is taken
 * from and left in owner->fuel. Compiled functions run natively.
 */
wasm_err wasm_interp(wasm_instance *owner, wasm_func *entry, wasm_slot *fp, uint32_t base, uint32_t limit);

/* memory.grow: the old size in pages, or 0xffffffff when the memory cannot grow by delta. */
uint32_t wasm_memory_grow(wasm_memory *m, uint32_t delta);

/* Runs the X_EXT instruction at ip on the frame fp of a function of inst: WASM_OK or a trap. */
wasm_err wasm_ext(wasm_instance *inst, const wasm_code *ip, wasm_slot *fp);

/*
 * Native tier (wasm_jit.c, -DWASM_JIT on ARMv7-M). wasm_jit_compile compiles
 * what it can of an instance into its arena, where g (may be NULL) places and
 * seals it, and returns how many functions it compiled (their wasm_func.native
 * is set). wasm_jit_call runs compiled f on
 * the frame fp of owner's stack with `depth` more calls allowed; the fuel
 * counter and its reserve travel in c (the caller sets c->fuel, c->reserve).
 */
typedef struct wasm_jit_ctx {
    uint8_t *mb;          /* linear memory, as the native code keeps it in registers */
    uint32_t msz;
    uint32_t fuel;        /* the 32-bit fuel counter */
    uint32_t depth;       /* native calls allowed below the entry, plus one */
    wasm_slot *stack_end; /* end of the value stack */
    uintptr_t floor;      /* lowest machine stack address native frames and re-entries may use */
    uint32_t msz4;        /* msz - 3 (0 below 3): the limit of a 4-byte access's address */
    wasm_instance *inst;  /* the compiled code's instance */
    wasm_instance *owner; /* whose stack is in use (the host sees its fuel) */
    void *refuel, *host, *grow, *arith, *call, *lookup, *ext; /* helpers the code calls */
    uint64_t reserve;     /* fuel beyond the 32-bit counter */
    uint32_t frames;      /* interpreter frames in use below (owner->frames) */
} wasm_jit_ctx;
uint32_t wasm_jit_compile(wasm_instance *inst, wasm_arena *a, const wasm_code_guard *g);
wasm_err wasm_jit_call(wasm_jit_ctx *c, wasm_instance *owner, wasm_func *f, wasm_slot *fp, uint32_t depth);

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

/* count elements of size bytes from the arena (at least 1 byte); NULL when the product does
 * not fit size_t or the arena. */
void *wasm_arena_array(wasm_arena *a, size_t count, size_t size);
/* n more bytes right after the arena's last allocation (no alignment, no gap): the loader's
 * translated code grows this way. NULL if they do not fit. */
void *wasm_arena_grow(wasm_arena *a, size_t n);
/* Gives back everything from byte `used` on (used <= a->used). */
void wasm_arena_trim(wasm_arena *a, size_t used);
/* Scratch: n bytes (rounded up to 8) taken from the top of the free space, not zeroed; NULL
 * if they do not fit. wasm_arena_top_free(a, size) gives back all scratch above `size`, the
 * arena's size before it was taken. */
void *wasm_arena_top(wasm_arena *a, size_t n);
void wasm_arena_top_free(wasm_arena *a, size_t size);

#endif
