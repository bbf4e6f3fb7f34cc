/*
 * Wasmbed on-device WebAssembly interpreter: public API.
 *
 * WebAssembly 2.0 without SIMD: 1.0 (MVP), sign-extension operators,
 * mutable-global import/export, non-trapping float-to-int conversions,
 * multi-value, bulk memory and reference types (several tables, funcref and
 * externref values, table.* instructions). v128 is refused at load time.
 *
 * The interpreter never allocates: every structure comes from a caller-owned
 * arena (wasm_arena). Loading validates every function and translates it
 * into register code kept in the arena (about 2x the code section); the
 * binary is still read for types, names and segments (it may live in flash)
 * and must outlive the module and every instance made from it.
 *
 * All failures are wasm_err codes; wasm_err_str() gives a short message.
 */
#ifndef WASMBED_WASM_H
#define WASMBED_WASM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Result codes. Ranges classify the failure (see wasm_err_class). */
typedef enum wasm_err {
    WASM_OK = 0,

    /* 1..39: malformed binary (decoding) */
    WASM_E_EOF = 1,         /* unexpected end */
    WASM_E_MAGIC,           /* magic header not detected */
    WASM_E_VERSION,         /* unknown binary version */
    WASM_E_LEB_LONG,        /* integer representation too long */
    WASM_E_LEB_RANGE,       /* integer too large */
    WASM_E_SECTION_ID,      /* malformed section id */
    WASM_E_SECTION_ORDER,   /* unexpected content after last section */
    WASM_E_SECTION_SIZE,    /* section size mismatch */
    WASM_E_UTF8,            /* malformed UTF-8 encoding */
    WASM_E_OPCODE,          /* illegal opcode */
    WASM_E_VALTYPE,         /* malformed value / element / block type */
    WASM_E_FUNC_COUNT,      /* function and code section have inconsistent lengths */
    WASM_E_DATA_COUNT,      /* data count and data section have inconsistent lengths */
    WASM_E_TOO_MANY_LOCALS, /* too many locals */
    WASM_E_ZERO_BYTE,       /* zero byte expected */
    WASM_E_MUTABILITY,      /* malformed mutability */
    WASM_E_IMPORT_KIND,     /* malformed import kind */
    WASM_E_LIMITS_FLAG,     /* malformed limits flags */
    WASM_E_END_EXPECTED,    /* END opcode expected */
    WASM_E_FORM,            /* malformed type form (0x60 expected) */
    WASM_E_MEMOP_FLAGS,     /* malformed memop flags (alignment exponent of 32 or more) */
    WASM_E_DATA_COUNT_REQ,  /* data count section required (memory.init, data.drop without one) */
    WASM_E_REFTYPE,         /* malformed reference type */

    /* 40..49: valid WebAssembly, but a feature this interpreter does not implement */
    WASM_E_UNSUPPORTED = 40,  /* other */
    WASM_E_UNSUP_SIMD,        /* v128 (WebAssembly 2.0's vector instructions) */
    WASM_E_UNSUP_LAST = 49,

    /* 50..79: invalid module (validation) */
    WASM_E_TYPE_MISMATCH = 50, /* type mismatch */
    WASM_E_UNKNOWN_TYPE,
    WASM_E_UNKNOWN_FUNC,
    WASM_E_UNKNOWN_GLOBAL,
    WASM_E_UNKNOWN_LOCAL,
    WASM_E_UNKNOWN_LABEL,
    WASM_E_UNKNOWN_MEMORY,
    WASM_E_UNKNOWN_TABLE,
    WASM_E_ALIGNMENT,       /* alignment must not be larger than natural */
    WASM_E_IMMUTABLE,       /* global is immutable */
    WASM_E_CONST_EXPR,      /* constant expression required */
    WASM_E_MEM_LIMITS,      /* memory size must be at most 65536 pages */
    WASM_E_LIMITS_ORDER,    /* size minimum must not be greater than maximum */
    WASM_E_DUP_EXPORT,      /* duplicate export name */
    WASM_E_MULTI_MEMORY,    /* multiple memories */
    WASM_E_START_TYPE,      /* start function must be () -> () */
    WASM_E_UNKNOWN_DATA,    /* unknown data segment */
    WASM_E_UNKNOWN_ELEM,    /* unknown elem segment */
    WASM_E_UNDECLARED_REF,  /* undeclared function reference (ref.func of a function no segment, export or global names) */
    WASM_E_RESULT_ARITY,    /* invalid result arity (wasm_load_limits.mvp: more than one result) */
    WASM_E_MULTI_TABLE,     /* multiple tables (wasm_load_limits.mvp) */

    /* 80..99: resource limits of this implementation */
    WASM_E_NOMEM = 80,      /* arena exhausted */
    WASM_E_IMPL_LIMIT,      /* implementation limit exceeded (e.g. stack height) */
    WASM_E_ARG,             /* bad API argument */
    WASM_E_TABLE_LIMIT,     /* table size exceeds the device limit (wasm_load_limits.max_table) */

    /* 100..119: linking / instantiation */
    WASM_E_UNKNOWN_IMPORT = 100, /* unknown import */
    WASM_E_IMPORT_TYPE,          /* incompatible import type */
    WASM_E_MEMORY_BUDGET,        /* memory does not fit the embedder's buffer */
    WASM_E_ELEM_FIT,             /* elements segment does not fit (a module loaded with wasm_load_limits.mvp) */
    WASM_E_DATA_FIT,             /* data segment does not fit (the same) */

    /* 120..: traps */
    WASM_TRAP_UNREACHABLE = 120, /* unreachable */
    WASM_TRAP_MEM_OOB,           /* out of bounds memory access */
    WASM_TRAP_DIV_ZERO,          /* integer divide by zero */
    WASM_TRAP_INT_OVERFLOW,      /* integer overflow */
    WASM_TRAP_INVALID_CONV,      /* invalid conversion to integer */
    WASM_TRAP_INDIRECT_TYPE,     /* indirect call type mismatch */
    WASM_TRAP_UNDEF_ELEMENT,     /* undefined element */
    WASM_TRAP_UNINIT_ELEMENT,    /* uninitialized element */
    WASM_TRAP_TABLE_OOB,         /* out of bounds table access (segments, table.* instructions) */
    WASM_TRAP_STACK_OVERFLOW,    /* call stack exhausted */
    WASM_TRAP_FUEL,              /* fuel exhausted */
    WASM_TRAP_HOST               /* host function failed */
} wasm_err;

typedef enum wasm_err_class {
    WASM_CLASS_OK,
    WASM_CLASS_MALFORMED,
    WASM_CLASS_UNSUPPORTED,
    WASM_CLASS_INVALID,
    WASM_CLASS_RESOURCE,
    WASM_CLASS_LINK,
    WASM_CLASS_TRAP
} wasm_err_class;

const char *wasm_err_str(wasm_err e);
wasm_err_class wasm_err_classify(wasm_err e);

/* Value types, as encoded in the binary format. */
enum { WASM_I32 = 0x7f, WASM_I64 = 0x7e, WASM_F32 = 0x7d, WASM_F64 = 0x7c, WASM_FUNCREF = 0x70, WASM_EXTERNREF = 0x6f };

/* Extern kinds (import/export descriptors). */
typedef enum { WASM_EXTERN_FUNC = 0, WASM_EXTERN_TABLE = 1, WASM_EXTERN_MEMORY = 2, WASM_EXTERN_GLOBAL = 3 } wasm_extern_kind;

/*
 * A value slot: every value is 64 bits; i32/f32 use the low 32 bits, floats
 * are carried as their IEEE bit patterns (so NaN payloads survive), and a
 * reference is its wasm_ref, zero-extended.
 */
typedef uint64_t wasm_slot;

/*
 * A reference: a funcref is a wasm_func *, an externref an opaque pointer-sized
 * value the embedder passed in; NULL is ref.null of either type.
 */
typedef void *wasm_ref;

/* Bump allocator over a caller buffer. */
typedef struct wasm_arena {
    uint8_t *base;
    size_t size;
    size_t used;
} wasm_arena;

void wasm_arena_init(wasm_arena *a, void *buf, size_t size);
void *wasm_arena_alloc(wasm_arena *a, size_t n); /* 8-byte aligned, zeroed; NULL if full */
/*
 * AddressSanitizer builds poison an arena's free space and a gap after each allocation, so
 * an overrun shows; call this before the buffer is used other than as an arena again (for
 * example wiped by memset). Other builds: nothing to do.
 */
void wasm_arena_release(void *buf, size_t size);

/* A function signature. `params`/`results` point at value-type bytes. */
typedef struct wasm_functype {
    const uint8_t *params;
    const uint8_t *results;
    uint16_t nparams;
    uint16_t nresults;
} wasm_functype;

typedef struct wasm_module wasm_module;
typedef struct wasm_instance wasm_instance;
typedef struct wasm_func wasm_func;

/*
 * Host function: arguments are in sp[0..nparams), results are written to
 * sp[0..nresults). Return WASM_OK or a trap code (WASM_TRAP_*).
 */
typedef wasm_err (*wasm_host_fn)(wasm_instance *caller, void *ctx, wasm_slot *sp);

/*
 * Linear memory. `bytes` is the accessible (backed) size: min(pages*64KiB,
 * cap). Accesses beyond `bytes` trap even when below pages*64KiB, which lets
 * a small board back a one-page memory with e.g. 8 KiB. memory.grow only
 * succeeds when the new size is fully backed (pages*64KiB <= cap) and within
 * max_pages; otherwise it returns -1.
 */
typedef struct wasm_memory {
    uint8_t *data;
    uint32_t bytes;     /* accessible bytes */
    uint32_t cap;       /* size of `data` */
    uint32_t pages;     /* logical size reported by memory.size */
    uint32_t max_pages; /* 65536 when the module declares no maximum */
    uint8_t has_max;
} wasm_memory;

/* Global cell; shared between instances when a global is imported. */
typedef struct wasm_global {
    wasm_slot val;
    uint8_t type;
    uint8_t mut;
} wasm_global;

/*
 * A table of references (NULL = ref.null, an uninitialized element). Like a
 * memory it is backed by a fixed buffer: table.grow succeeds only within `cap`
 * elements (and the maximum), otherwise it returns -1 as the spec allows.
 */
typedef struct wasm_table {
    wasm_ref *elems;
    uint32_t size;
    uint32_t max;       /* 0xffffffff when unbounded */
    uint32_t cap;       /* elements `elems` holds (>= size) */
    uint8_t has_max;
    uint8_t type;       /* WASM_FUNCREF or WASM_EXTERNREF */
} wasm_table;

/*
 * A callable function: a host callback or a function of an instance. Host
 * functions set type, host and host_ctx (use designated initializers).
 */
struct wasm_func {
    const wasm_functype *type;
    wasm_instance *inst; /* owning instance, NULL for host functions */
    uint32_t index;      /* function index within inst's module */
    wasm_host_fn host;
    void *host_ctx;
    const void *def;     /* interpreter-private: set by wasm_instantiate */
    const void *native;  /* compiled code (WASM_JIT builds), or NULL: interpreted */
};

/* Import descriptor given to the resolver. */
typedef struct wasm_import {
    const uint8_t *module; uint32_t module_len;
    const uint8_t *name; uint32_t name_len;
    wasm_extern_kind kind;
    const wasm_functype *func_type; /* kind FUNC */
    uint8_t global_type, global_mut; /* kind GLOBAL; kind TABLE: global_type is the element type */
    uint32_t min, max; uint8_t has_max; /* kind TABLE / MEMORY */
} wasm_import;

/* What a resolver returns for an import; exactly one pointer per kind. */
typedef struct wasm_extern {
    wasm_extern_kind kind;
    wasm_func *func;       /* host function or another instance's export */
    wasm_global *global;
    wasm_memory *memory;
    wasm_table *table;
} wasm_extern;

/* Return WASM_OK and fill *out, or WASM_E_UNKNOWN_IMPORT. Types are checked by the interpreter. */
typedef wasm_err (*wasm_resolver)(void *ctx, const wasm_import *imp, wasm_extern *out);

/*
 * Limits a module must keep to be loaded. A table is allocated whole at instantiation (a
 * pointer per element) and grows only within that buffer, so the minimum of each of the
 * module's tables, defined or imported, is bounded at load as a memory's size is (65536
 * pages): more is refused with WASM_E_TABLE_LIMIT. The maximum is not bounded. Boards set
 * their own limit (WB_MAX_TABLE in the ABI layer).
 */
#ifndef WASM_MAX_TABLE
#define WASM_MAX_TABLE 65536u /* default max_table: 256 KiB of elements on a 32-bit target */
#endif
typedef struct wasm_load_limits {
    uint32_t max_table; /* largest table minimum, in elements; 0: WASM_MAX_TABLE */
    /*
     * 1: WebAssembly 1.0's rules where 2.0 changed them (the 1.0 spec suite runs so): one
     * result per type, one table, a zero byte for call_indirect's table, br_table labels
     * of identical types, and segments that do not fit fail instantiation as a link
     * error before anything is written (2.0: a trap, earlier segments written).
     */
    uint8_t mvp;
} wasm_load_limits;

/* Decode and fully validate a module. Allocates the module from `a`. */
wasm_err wasm_module_load(const uint8_t *bin, uint32_t len, wasm_arena *a, wasm_module **out);
/* The same under the given limits (NULL: the defaults). */
wasm_err wasm_module_load_limited(const uint8_t *bin, uint32_t len, const wasm_load_limits *lim, wasm_arena *a,
                                  wasm_module **out);

/* Type of function `index` (imports first), NULL if out of range. */
const wasm_functype *wasm_module_func_type(const wasm_module *m, uint32_t index);

/* Declared memory of the module (imported or defined). Returns 0 if none. */
int wasm_module_memory(const wasm_module *m, uint32_t *min_pages, uint32_t *max_pages, int *has_max);

/* Bytes of memory the module needs backed at instantiation (highest data segment end with constant offsets). */
uint32_t wasm_module_data_end(const wasm_module *m);

/* Bytes of translated code the module keeps in its arena (the interpreter's form of every function body). */
size_t wasm_module_code_bytes(const wasm_module *m);

/* Find an export by name and kind; returns the index in its index space or -1. */
int32_t wasm_module_export(const wasm_module *m, const char *name, uint32_t name_len, wasm_extern_kind kind);

/*
 * WASM_JIT builds: where compiled code goes and how it is protected once written, for a
 * memory protection unit that keeps RAM never writable and executable at once (W^X;
 * firmware/boards/common/mpu.c). wasm_config.code_guard; NULL: anywhere in the arena,
 * left as the arena's memory is.
 *   place: the block for n bytes of code at or after address `from`: its start, and in
 *          *size its length (at least n); the arena gives up the gap before it too.
 *   seal:  the code in [code, code + size) is written: from now on read-only and
 *          executable, before any of it runs. 0, or <0 when it cannot be (then no
 *          function of the instance is compiled: all are interpreted).
 * The arena's owner undoes a seal before it reuses the buffer (the guard's own call).
 */
typedef struct wasm_code_guard {
    void *ctx;
    uintptr_t (*place)(void *ctx, uintptr_t from, size_t n, size_t *size);
    int (*seal)(void *ctx, void *code, size_t size);
} wasm_code_guard;

typedef struct wasm_config {
    wasm_resolver resolve;    /* may be NULL if the module has no imports */
    void *resolve_ctx;
    uint8_t *mem_buf;         /* backing for a defined memory (NULL: taken from the arena) */
    uint32_t mem_cap;         /* bytes in mem_buf, or bytes to take from the arena */
    /* Elements to back each defined table with, for table.grow: a table gets
     * max(minimum, min(table_cap, maximum)), and only when the module can grow it (it
     * has table.grow, or exports the table); otherwise its minimum. */
    uint32_t table_cap;
    uint32_t stack_slots;     /* value stack (locals + operands), in 8-byte slots (default 512) */
    uint32_t call_depth;      /* max nested wasm calls (default 64; a frame is 5 pointers) */
    uint8_t interpret_only;   /* WASM_JIT builds: compile nothing, interpret every function */
    /* WASM_JIT builds: bytes of machine stack below wasm_call that compiled code, and the
     * interpreter it calls back (~270 B a time), may use; past them a call traps with
     * "call stack exhausted". Default call_depth x 160 + 1024: enough for any mix of
     * compiled and interpreted calls at full depth (the machine stack must have it). */
    uint32_t machine_stack;
    const wasm_code_guard *code_guard; /* WASM_JIT builds: see wasm_code_guard; NULL: none */
} wasm_config;

/*
 * Instantiate: resolve imports, build globals/table/memory, apply element
 * and data segments, run the start function (with `fuel`). On failure
 * *out may still be set (e.g. a start trap after segments were applied).
 */
wasm_err wasm_instantiate(const wasm_module *m, const wasm_config *cfg, wasm_arena *a,
                          uint64_t fuel, wasm_instance **out);

/* Call function `func_index` of the instance. Args in slots[0..n), results out in slots[0..). */
wasm_err wasm_call(wasm_instance *inst, uint32_t func_index, wasm_slot *slots);
/* Call any wasm_func (host or wasm) with the instance's stacks and fuel. */
wasm_err wasm_call_func(wasm_instance *inst, wasm_func *f, wasm_slot *slots);

/*
 * Fuel: instructions left. Entering a function costs the number of its
 * instructions outside loops, each loop iteration the number in the loop body
 * outside nested loops: an upper bound of the instructions executed, charged
 * where control can repeat. At zero a call returns WASM_TRAP_FUEL.
 */
void wasm_set_fuel(wasm_instance *inst, uint64_t fuel);
uint64_t wasm_get_fuel(const wasm_instance *inst);

const wasm_module *wasm_instance_module(const wasm_instance *inst);
/*
 * Functions compiled to native code (WASM_JIT builds; 0 otherwise). Where not NULL,
 * *defined gets the module's own function count and *bytes the arena bytes of that code.
 */
uint32_t wasm_instance_native_funcs(const wasm_instance *inst, uint32_t *defined, uint32_t *bytes);
wasm_memory *wasm_instance_memory(wasm_instance *inst);   /* NULL if none */
wasm_table *wasm_instance_table(wasm_instance *inst);     /* table 0, NULL if none */
wasm_global *wasm_instance_global(wasm_instance *inst, uint32_t index);
wasm_func *wasm_instance_func(wasm_instance *inst, uint32_t index);
const wasm_functype *wasm_func_type(const wasm_func *f);
void *wasm_instance_user(wasm_instance *inst);
void wasm_instance_set_user(wasm_instance *inst, void *user);

/* Resolve an export of the instance as an extern (for linking modules together). */
wasm_err wasm_instance_export(wasm_instance *inst, const char *name, uint32_t name_len, wasm_extern *out);

/* Bounds-checked pointer into memory 0: NULL if [off, off+len) is outside. */
uint8_t *wasm_mem_ptr(wasm_instance *inst, uint32_t off, uint32_t len);

#ifdef __cplusplus
}
#endif
#endif
