/*
 * Binary decoder and validator. One pass over the module: every section is
 * decoded with the malformed-module checks of the binary format, and every
 * function body is type-checked (the validation algorithm of the spec's
 * appendix) while it is translated into the interpreter's register code.
 */
#include <string.h>
#include "wasm_int.h"
#include "../common/size.h"
#include "../common/utf8.h"

/* ---------------------------------------------------------------- arena */

/*
 * AddressSanitizer sees the arena as one buffer, so an overrun from one allocation into
 * the next, or into the free space, would go unnoticed. ASan builds (gcc: __SANITIZE_ADDRESS__,
 * clang: __has_feature) therefore poison the free space at wasm_arena_init, leave an
 * ARENA_REDZONE-byte poisoned gap after every allocation, and unpoison only what is handed
 * out; other builds lay the arena out exactly as before (no gap).
 */
#if defined(__SANITIZE_ADDRESS__)
#define WASM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WASM_ASAN 1
#endif
#endif
#if defined(WASM_ASAN)
void __asan_poison_memory_region(void const volatile *addr, size_t size);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#define ARENA_REDZONE 8u
#define POISON(p, n) __asan_poison_memory_region((p), (n))
#define UNPOISON(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define ARENA_REDZONE 0u
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* n rounded up to a multiple of 8; SIZE_MAX (a size that does not fit) stays SIZE_MAX. */
static size_t up8(size_t n) { return n > SIZE_MAX - 7u ? SIZE_MAX : (n + 7u) & ~(size_t)7u; }

/*
 * The arena's base is aligned up to 8 bytes and its size rounded down to 8: the
 * validator keeps its scratch at the top, and Cortex-M faults on ldrd/strd at an
 * address that is not word-aligned.
 */
void wasm_arena_init(wasm_arena *a, void *buf, size_t size)
{
    uintptr_t p = (uintptr_t)buf, q = (p + 7u) & ~(uintptr_t)7u;
    a->base = (uint8_t *)q;
    a->size = size > q - p ? (size - (q - p)) & ~(size_t)7u : 0;
    a->used = 0;
    POISON(a->base, a->size);
}

void wasm_arena_release(void *buf, size_t size) { UNPOISON(buf, size); }

void *wasm_arena_alloc(wasm_arena *a, size_t n)
{
    size_t off = up8(a->used);
    if (off > a->size || n > a->size - off)
        return NULL;
    size_t end = off + n; /* <= a->size */
    a->used = a->size - end > ARENA_REDZONE ? end + ARENA_REDZONE : a->size; /* the gap, where it fits */
    UNPOISON(a->base + off, n);
    memset(a->base + off, 0, n);
    return a->base + off;
}

void *wasm_arena_grow(wasm_arena *a, size_t n)
{
    if (a->used > a->size || n > a->size - a->used) return NULL;
    uint8_t *p = a->base + a->used;
    a->used += n;
    UNPOISON(p, n);
    return p;
}

void wasm_arena_trim(wasm_arena *a, size_t used)
{
    POISON(a->base + used, a->used - used);
    a->used = used;
}

void *wasm_arena_top(wasm_arena *a, size_t n)
{
    size_t used = up8(a->used);
    n = up8(n);
    if (used > a->size || n > a->size - used) return NULL;
    a->size -= n;
    UNPOISON(a->base + a->size, n);
    return a->base + a->size;
}

void wasm_arena_top_free(wasm_arena *a, size_t size)
{
    POISON(a->base + a->size, size - a->size);
    a->size = size;
}

void *wasm_arena_array(wasm_arena *a, size_t count, size_t size)
{
    return wasm_arena_alloc(a, count ? wb_size_mul(count, size) : 1);
}

/* ---------------------------------------------------------------- errors */

/*
 * Messages in code order, for the ranges of defined codes below (a packed string
 * instead of a pointer per code: flash is the scarce resource on the smallest board).
 */
static const char err_msgs[] =
    "ok\0"
    "unexpected end\0"
    "magic header not detected\0"
    "unknown binary version\0"
    "integer representation too long\0"
    "integer too large\0"
    "malformed section id\0"
    "unexpected content after last section\0"
    "section size mismatch\0"
    "malformed UTF-8 encoding\0"
    "illegal opcode\0"
    "malformed value type\0"
    "function and code section have inconsistent lengths\0"
    "data count and data section have inconsistent lengths\0"
    "too many locals\0"
    "zero byte expected\0"
    "malformed mutability\0"
    "malformed import kind\0"
    "malformed limits flags\0"
    "END opcode expected\0"
    "malformed type form\0"
    "malformed memop flags\0"
    "data count section required\0"
    "malformed reference type\0"
    "unsupported feature\0"
    "unsupported feature: SIMD\0"
    "unsupported feature\0"
    "type mismatch\0"
    "unknown type\0"
    "unknown function\0"
    "unknown global\0"
    "unknown local\0"
    "unknown label\0"
    "unknown memory\0"
    "unknown table\0"
    "alignment must not be larger than natural\0"
    "global is immutable\0"
    "constant expression required\0"
    "memory size must be at most 65536 pages (4GiB)\0"
    "size minimum must not be greater than maximum\0"
    "duplicate export name\0"
    "multiple memories\0"
    "start function must have type [] -> []\0"
    "unknown data segment\0"
    "unknown elem segment\0"
    "undeclared function reference\0"
    "invalid result arity\0"
    "multiple tables\0"
    "arena exhausted\0"
    "implementation limit exceeded\0"
    "bad argument\0"
    "table size exceeds the device limit\0"
    "unknown import\0"
    "incompatible import type\0"
    "memory does not fit the buffer\0"
    "elements segment does not fit\0"
    "data segment does not fit\0"
    "unreachable\0"
    "out of bounds memory access\0"
    "integer divide by zero\0"
    "integer overflow\0"
    "invalid conversion to integer\0"
    "indirect call type mismatch\0"
    "undefined element\0"
    "uninitialized element\0"
    "out of bounds table access\0"
    "call stack exhausted\0"
    "fuel exhausted\0"
    "host function failed\0";
static const struct { uint8_t first, count; } err_ranges[] = {
    {WASM_OK, WASM_E_REFTYPE + 1},
    {WASM_E_UNSUPPORTED, WASM_E_UNSUP_SIMD - WASM_E_UNSUPPORTED + 1},
    {WASM_E_UNSUP_LAST, 1},
    {WASM_E_TYPE_MISMATCH, WASM_E_MULTI_TABLE - WASM_E_TYPE_MISMATCH + 1},
    {WASM_E_NOMEM, WASM_E_TABLE_LIMIT - WASM_E_NOMEM + 1},
    {WASM_E_UNKNOWN_IMPORT, WASM_E_DATA_FIT - WASM_E_UNKNOWN_IMPORT + 1},
    {WASM_TRAP_UNREACHABLE, WASM_TRAP_HOST - WASM_TRAP_UNREACHABLE + 1},
};

const char *wasm_err_str(wasm_err e)
{
    uint32_t n = 0, code = (uint32_t)e;
    for (unsigned r = 0; r < sizeof err_ranges / sizeof err_ranges[0]; r++) {
        if (code - err_ranges[r].first < err_ranges[r].count) {
            const char *m = err_msgs;
            for (n += code - err_ranges[r].first; n; n--) m += strlen(m) + 1;
            return m;
        }
        n += err_ranges[r].count;
    }
    return "unknown error";
}

wasm_err_class wasm_err_classify(wasm_err e)
{
    if (e == WASM_OK) return WASM_CLASS_OK;
    if (e < WASM_E_UNSUPPORTED) return WASM_CLASS_MALFORMED;
    if (e <= WASM_E_UNSUP_LAST) return WASM_CLASS_UNSUPPORTED;
    if (e < WASM_E_NOMEM) return WASM_CLASS_INVALID;
    if (e < WASM_E_UNKNOWN_IMPORT) return WASM_CLASS_RESOURCE;
    if (e < WASM_TRAP_UNREACHABLE) return WASM_CLASS_LINK;
    return WASM_CLASS_TRAP;
}

int wasm_functype_eq(const wasm_functype *a, const wasm_functype *b)
{
    return a->nparams == b->nparams && a->nresults == b->nresults &&
           (!a->nparams || !memcmp(a->params, b->params, a->nparams)) &&
           (!a->nresults || !memcmp(a->results, b->results, a->nresults));
}

/* ---------------------------------------------------------------- reader */

typedef struct rd {
    const uint8_t *p, *end;
} rd;

#define TRY(x) do { wasm_err e_ = (x); if (e_) return e_; } while (0)

static wasm_err rd_byte(rd *r, uint8_t *b)
{
    if (r->p >= r->end) return WASM_E_EOF;
    *b = *r->p++;
    return WASM_OK;
}

/* Checked LEB128 of at most `bits` bits, signed or not. */
static wasm_err rd_leb(rd *r, unsigned bits, int sign, uint64_t *out)
{
    uint64_t v = 0;
    unsigned shift = 0;
    uint8_t b;
    for (;;) {
        TRY(rd_byte(r, &b));
        if (shift + 7 >= bits) {
            unsigned rem = bits - shift;
            if (b & 0x80) return WASM_E_LEB_LONG;
            if (!sign) {
                if (b >> rem) return WASM_E_LEB_RANGE;
            } else {
                uint8_t mask = (uint8_t)((0x7fu >> (rem - 1)) << (rem - 1)) & 0x7f;
                if ((b & mask) != 0 && (b & mask) != mask) return WASM_E_LEB_RANGE;
            }
        }
        v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80)) break;
    }
    if (sign && shift < 64 && (b & 0x40)) v |= ~(uint64_t)0 << shift;
    *out = v;
    return WASM_OK;
}

static wasm_err rd_u32(rd *r, uint32_t *out)
{
    uint64_t v;
    TRY(rd_leb(r, 32, 0, &v));
    *out = (uint32_t)v;
    return WASM_OK;
}

static wasm_err rd_name(rd *r, const uint8_t **s, uint32_t *n)
{
    TRY(rd_u32(r, n));
    if ((uint32_t)(r->end - r->p) < *n) return WASM_E_EOF;
    *s = r->p;
    r->p += *n;
    return wb_utf8_valid(*s, *n) ? WASM_OK : WASM_E_UTF8;
}

/* ---------------------------------------------------------------- loader state */

/* Where an operand's value is during translation: in its own slot, still in a local, or a constant. */
enum { V_SLOT, V_LOCAL, V_CONST };

typedef struct vval {
    uint64_t c;  /* V_CONST: the value (i32 and f32 zero-extended) */
    uint16_t x;  /* V_LOCAL: the local's slot */
    uint8_t t;   /* value type; T_ANY from unreachable code */
    uint8_t k;   /* V_* */
} vval;

typedef struct vctrl {
    uint32_t height;   /* operand height at entry */
    uint32_t pending;  /* forward branch offset fields, patched at `end` (chained through the fields) */
    uint32_t if_br;    /* the if's false-edge offset field, WASM_NONE once resolved */
    uint32_t loop_pos; /* loop: code position of its header */
    uint32_t fuel_pos; /* loop or function: count field of its X_FUEL, WASM_NONE if not emitted */
    uint32_t fuel_n;   /* instructions counted for that X_FUEL */
    uint32_t fuel_up;  /* the enclosing frame that counts instructions */
    wasm_functype bt;  /* block type: its params are the operands it starts with */
    uint8_t kind;      /* K_* */
    uint8_t unreach;   /* rest of the frame unreachable (polymorphic operand stack) */
    uint8_t dead_in;   /* entered in unreachable code: nothing is emitted for it */
} vctrl;

enum { K_BLOCK, K_LOOP, K_IF, K_ELSE, K_FUNC };

typedef struct ld {
    wasm_module *m;
    wasm_arena *a;
    rd r;
    uint32_t nfuncdefs, nmems;
    uint32_t max_table;                    /* largest table minimum (wasm_load_limits) */
    uint32_t data_count; uint8_t has_data_count;
    uint8_t data_ref, has_data;            /* code names a data segment; the module has a data section */
    uint8_t *refs;                         /* bit per function: declared for ref.func (NULL: none yet) */
    uint32_t mvp_tables;                   /* tables read, under wasm_load_limits.mvp */
    wasm_err deferred;                     /* an unknown br_table label: reported unless the body is malformed */
    /* validator scratch */
    vval *vs; uint32_t vs_cap, vh;         /* operands (absolute height) */
    vctrl *cs; uint32_t cs_cap, ch;        /* control frames */
    vval any;                              /* what popping a polymorphic stack yields */
    uint32_t maxh;
    /* translation of the current function */
    uint32_t nloc;                         /* params + locals: the slot of operand height 0 */
    uint32_t fuelc;                        /* control frame counting instructions */
    uint32_t last;                         /* position of the last emitted instruction */
    uint32_t fuse, fuse_h;                 /* its dst field while it holds the top operand (height fuse_h) */
    /* current function */
    const wasm_functype *ft;
    const uint8_t *locals; uint32_t nlocal_groups, nlocals;
} ld;

static void *alloc_n(ld *L, size_t count, size_t size) { return wasm_arena_array(L->a, count, size); }

static int is_ref(uint8_t t) { return t == WASM_FUNCREF || t == WASM_EXTERNREF; }
static int is_valtype(uint8_t t) { return (t >= WASM_F64 && t <= WASM_I32) || is_ref(t); }

static wasm_err rd_valtype(rd *r, uint8_t *t)
{
    TRY(rd_byte(r, t));
    if (is_valtype(*t)) return WASM_OK;
    if (*t == 0x7b) return WASM_E_UNSUP_SIMD;
    return WASM_E_VALTYPE;
}

static wasm_err rd_reftype(rd *r, uint8_t *t)
{
    TRY(rd_byte(r, t));
    return is_ref(*t) ? WASM_OK : WASM_E_REFTYPE;
}

static wasm_err rd_limits(rd *r, wasm_limits *l, int is_mem)
{
    uint8_t flag;
    TRY(rd_byte(r, &flag));
    if (flag > 1) return WASM_E_LIMITS_FLAG; /* 2, 3: shared memory (threads), not in 2.0 either */
    TRY(rd_u32(r, &l->min));
    l->has_max = flag;
    l->max = is_mem ? WASM_MAX_PAGES : WASM_NONE;
    if (flag) TRY(rd_u32(r, &l->max));
    if (is_mem && (l->min > WASM_MAX_PAGES || l->max > WASM_MAX_PAGES)) return WASM_E_MEM_LIMITS;
    if (l->min > l->max) return WASM_E_LIMITS_ORDER;
    l->present = 1;
    return WASM_OK;
}

static wasm_err rd_tabletype(ld *L, wasm_limits *l)
{
    uint8_t t;
    TRY(rd_reftype(&L->r, &t));
    TRY(rd_limits(&L->r, l, 0));
    l->type = t;
    if (L->m->mvp && ++L->mvp_tables > 1) return WASM_E_MULTI_TABLE;
    if (l->min > L->max_table) return WASM_E_TABLE_LIMIT; /* allocated whole at instantiation */
    return WASM_OK;
}

/* Whether a byte is an instruction of WebAssembly 2.0 (or a prefix of some), whatever its context. */
static int is_opcode(uint8_t op)
{
    return op <= 0x11 || (op >= 0x1a && op <= 0x1c) || (op >= 0x20 && op <= 0x26) || (op >= 0x28 && op <= 0xc4) ||
           (op >= 0xd0 && op <= 0xd2) || op == 0xfc || op == 0xfd;
}

/* Function x may be named by ref.func in code: an element segment, export or global names it. */
static wasm_err declare(ld *L, uint32_t x)
{
    if (!L->refs && !(L->refs = alloc_n(L, L->m->nfuncs / 8 + 1, 1))) return WASM_E_NOMEM;
    L->refs[x / 8] |= (uint8_t)(1u << (x % 8));
    return WASM_OK;
}

static wasm_err rd_memtype(ld *L, wasm_limits *l)
{
    TRY(rd_limits(&L->r, l, 1));
    if (++L->nmems > 1) return WASM_E_MULTI_MEMORY;
    return WASM_OK;
}

/*
 * Constant expression producing `want`. Only imported immutable globals may be
 * read; a function it references is declared for ref.func.
 */
static wasm_err rd_const(ld *L, uint8_t want, const uint8_t **start)
{
    rd *r = &L->r;
    uint8_t op, t = 0;
    uint64_t v;
    uint32_t n = 0;
    *start = r->p;
    for (;;) {
        TRY(rd_byte(r, &op));
        if (op == 0x0b) break;
        switch (op) {
        case 0x41: TRY(rd_leb(r, 32, 1, &v)); t = WASM_I32; break;
        case 0x42: TRY(rd_leb(r, 64, 1, &v)); t = WASM_I64; break;
        case 0x43: if (r->end - r->p < 4) return WASM_E_EOF; r->p += 4; t = WASM_F32; break;
        case 0x44: if (r->end - r->p < 8) return WASM_E_EOF; r->p += 8; t = WASM_F64; break;
        case 0x23: {
            uint32_t g;
            TRY(rd_u32(r, &g));
            if (g >= L->m->nglobal_imports) return WASM_E_UNKNOWN_GLOBAL;
            if (L->m->globals[g].mut) return WASM_E_CONST_EXPR;
            t = L->m->globals[g].type;
            break;
        }
        case 0xd0: TRY(rd_reftype(r, &t)); break;
        case 0xd2: {
            uint32_t f;
            TRY(rd_u32(r, &f));
            if (f >= L->m->nfuncs) return WASM_E_UNKNOWN_FUNC;
            TRY(declare(L, f));
            t = WASM_FUNCREF;
            break;
        }
        default: return is_opcode(op) ? WASM_E_CONST_EXPR : WASM_E_OPCODE;
        }
        n++;
    }
    if (n != 1 || t != want) return WASM_E_TYPE_MISMATCH;
    return WASM_OK;
}

/* ---------------------------------------------------------------- sections */

static wasm_err sec_type(ld *L)
{
    wasm_module *m = L->m;
    rd *r = &L->r;
    TRY(rd_u32(r, &m->ntypes));
    if (m->ntypes > (uint32_t)(r->end - r->p)) return WASM_E_EOF;
    if (!(m->types = alloc_n(L, m->ntypes, sizeof *m->types))) return WASM_E_NOMEM;
    for (uint32_t i = 0; i < m->ntypes; i++) {
        wasm_functype *ft = &m->types[i];
        uint8_t form, t;
        uint32_t n;
        TRY(rd_byte(r, &form));
        if (form != 0x60) return WASM_E_FORM;
        for (int k = 0; k < 2; k++) {
            TRY(rd_u32(r, &n));
            if (n > (uint32_t)(r->end - r->p)) return WASM_E_EOF;
            if (n > 0xffff) return WASM_E_IMPL_LIMIT;
            if (k == 0) { ft->params = r->p; ft->nparams = (uint16_t)n; }
            else { ft->results = r->p; ft->nresults = (uint16_t)n; }
            for (uint32_t j = 0; j < n; j++) TRY(rd_valtype(r, &t));
        }
        if (L->m->mvp && ft->nresults > 1) return WASM_E_RESULT_ARITY;
    }
    return WASM_OK;
}

static wasm_err sec_import(ld *L)
{
    wasm_module *m = L->m;
    rd *r = &L->r;
    TRY(rd_u32(r, &m->nimports));
    if (m->nimports > (uint32_t)(r->end - r->p)) return WASM_E_EOF;
    if (!(m->imports = alloc_n(L, m->nimports, sizeof *m->imports))) return WASM_E_NOMEM;
    /* globals and tables: imported ones are indexed first; count them in a first pass */
    const uint8_t *save = r->p;
    for (int pass = 0; pass < 2; pass++) {
        uint32_t gi = 0, ti = 0;
        r->p = save;
        for (uint32_t i = 0; i < m->nimports; i++) {
            wasm_import *im = &m->imports[i];
            uint8_t kind;
            TRY(rd_name(r, &im->module, &im->module_len));
            TRY(rd_name(r, &im->name, &im->name_len));
            TRY(rd_byte(r, &kind));
            im->kind = (wasm_extern_kind)kind;
            switch (kind) {
            case 0: {
                uint32_t t;
                TRY(rd_u32(r, &t));
                if (pass == 0) break;
                if (t >= m->ntypes) return WASM_E_UNKNOWN_TYPE;
                im->func_type = &m->types[t];
                m->func_type[m->nfunc_imports++] = t;
                break;
            }
            case 1: {
                wasm_limits l;
                if (pass == 1) L->mvp_tables--; /* counted in pass 0 */
                TRY(rd_tabletype(L, &l));
                if (pass == 1) {
                    l.imported = 1; m->tables[ti] = l;
                    im->min = l.min; im->max = l.max; im->has_max = l.has_max; im->global_type = l.type;
                }
                ti++;
                break;
            }
            case 2: {
                wasm_limits l;
                TRY(rd_memtype(L, &l));
                if (pass == 0) { L->nmems--; break; }
                l.imported = 1; m->memory = l;
                im->min = l.min; im->max = l.max; im->has_max = l.has_max;
                break;
            }
            case 3: {
                uint8_t t, mut;
                TRY(rd_valtype(r, &t));
                TRY(rd_byte(r, &mut));
                if (mut > 1) return WASM_E_MUTABILITY;
                im->global_type = t; im->global_mut = mut;
                if (pass == 1) {
                    m->globals[gi].type = t; m->globals[gi].mut = mut; m->globals[gi].imported = 1;
                }
                gi++;
                break;
            }
            default: return WASM_E_IMPORT_KIND;
            }
            if (pass == 0 && kind == 0) m->nfunc_imports++;
        }
        if (pass == 0) {
            m->nglobal_imports = gi;
            m->nglobals = gi;
            m->ntables = ti;
            if (!(m->globals = alloc_n(L, gi, sizeof *m->globals))) return WASM_E_NOMEM;
            if (!(m->tables = alloc_n(L, ti, sizeof *m->tables))) return WASM_E_NOMEM;
            m->nfuncs = m->nfunc_imports;
            if (!(m->func_type = alloc_n(L, m->nfuncs, sizeof *m->func_type))) return WASM_E_NOMEM;
            m->nfunc_imports = 0;
        }
    }
    return WASM_OK;
}

static wasm_err sec_function(ld *L)
{
    wasm_module *m = L->m;
    rd *r = &L->r;
    uint32_t n;
    TRY(rd_u32(r, &n));
    if (n > (uint32_t)(r->end - r->p)) return WASM_E_EOF;
    uint32_t *ft = alloc_n(L, wb_size_add(m->nfunc_imports, n), sizeof *ft);
    if (!ft) return WASM_E_NOMEM;
    if (m->nfunc_imports) memcpy(ft, m->func_type, wb_size_mul(m->nfunc_imports, sizeof *ft));
    m->func_type = ft;
    m->nfuncs = m->nfunc_imports + n; /* both bounded by bytes of this module: fits */
    L->nfuncdefs = n;
    if (!(m->funcs = alloc_n(L, n, sizeof *m->funcs))) return WASM_E_NOMEM;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t t;
        TRY(rd_u32(r, &t));
        if (t >= m->ntypes) return WASM_E_UNKNOWN_TYPE;
        ft[m->nfunc_imports + i] = t;
    }
    return WASM_OK;
}

static wasm_err sec_table(ld *L)
{
    wasm_module *m = L->m;
    uint32_t n;
    TRY(rd_u32(&L->r, &n));
    if (n > (uint32_t)(L->r.end - L->r.p)) return WASM_E_EOF;
    wasm_limits *t = alloc_n(L, wb_size_add(m->ntables, n), sizeof *t);
    if (!t) return WASM_E_NOMEM;
    if (m->ntables) memcpy(t, m->tables, wb_size_mul(m->ntables, sizeof *t));
    m->tables = t;
    for (uint32_t i = 0; i < n; i++) {
        wasm_limits *l = &t[m->ntables];
        TRY(rd_tabletype(L, l));
        l->present = 1;
        m->ntables++;
    }
    return WASM_OK;
}

static wasm_err sec_memory(ld *L)
{
    uint32_t n;
    TRY(rd_u32(&L->r, &n));
    for (uint32_t i = 0; i < n; i++) {
        TRY(rd_memtype(L, &L->m->memory));
        L->m->memory.imported = 0;
    }
    return WASM_OK;
}

static wasm_err sec_global(ld *L)
{
    wasm_module *m = L->m;
    rd *r = &L->r;
    uint32_t n;
    TRY(rd_u32(r, &n));
    if (n > (uint32_t)(r->end - r->p)) return WASM_E_EOF;
    wasm_globaldef *g = alloc_n(L, wb_size_add(m->nglobal_imports, n), sizeof *g);
    if (!g) return WASM_E_NOMEM;
    if (m->nglobal_imports) memcpy(g, m->globals, wb_size_mul(m->nglobal_imports, sizeof *g));
    m->globals = g;
    for (uint32_t i = 0; i < n; i++) {
        wasm_globaldef *d = &g[m->nglobal_imports + i];
        TRY(rd_valtype(r, &d->type));
        TRY(rd_byte(r, &d->mut));
        if (d->mut > 1) return WASM_E_MUTABILITY;
        TRY(rd_const(L, d->type, &d->init));
        m->nglobals++;
    }
    return WASM_OK;
}

static wasm_err sec_export(ld *L)
{
    wasm_module *m = L->m;
    rd *r = &L->r;
    TRY(rd_u32(r, &m->nexports));
    if (m->nexports > (uint32_t)(r->end - r->p)) return WASM_E_EOF;
    if (!(m->exports = alloc_n(L, m->nexports, sizeof *m->exports))) return WASM_E_NOMEM;
    for (uint32_t i = 0; i < m->nexports; i++) {
        wasm_export *e = &m->exports[i];
        TRY(rd_name(r, &e->name, &e->name_len));
        TRY(rd_byte(r, &e->kind));
        TRY(rd_u32(r, &e->index));
        switch (e->kind) {
        case 0:
            if (e->index >= m->nfuncs) return WASM_E_UNKNOWN_FUNC;
            TRY(declare(L, e->index));
            break;
        case 1: if (e->index >= m->ntables) return WASM_E_UNKNOWN_TABLE; break;
        case 2: if (e->index >= L->nmems) return WASM_E_UNKNOWN_MEMORY; break;
        case 3: if (e->index >= m->nglobals) return WASM_E_UNKNOWN_GLOBAL; break;
        default: return WASM_E_IMPORT_KIND;
        }
        for (uint32_t j = 0; j < i; j++)
            if (m->exports[j].name_len == e->name_len && !memcmp(m->exports[j].name, e->name, e->name_len))
                return WASM_E_DUP_EXPORT;
    }
    return WASM_OK;
}

static wasm_err sec_start(ld *L)
{
    wasm_module *m = L->m;
    TRY(rd_u32(&L->r, &m->start));
    if (m->start >= m->nfuncs) return WASM_E_UNKNOWN_FUNC;
    const wasm_functype *ft = &m->types[m->func_type[m->start]];
    if (ft->nparams || ft->nresults) return WASM_E_START_TYPE;
    return WASM_OK;
}

/*
 * One element segment. Its flags (0..7): bit 0 passive or declarative, bit 1 an
 * explicit table index (active) or declarative (else), bit 2 items are constant
 * expressions instead of function indices.
 */
static wasm_err rd_elemseg(ld *L, wasm_elemseg *s)
{
    wasm_module *m = L->m;
    rd *r = &L->r;
    uint32_t flags;
    const uint8_t *e;
    TRY(rd_u32(r, &flags));
    if (flags > 7) return WASM_E_LEB_RANGE;
    s->mode = !(flags & 1) ? SEG_ACTIVE : (flags & 2) ? SEG_DECLARATIVE : SEG_PASSIVE;
    s->exprs = (uint8_t)(flags >> 2);
    s->type = WASM_FUNCREF;
    if (s->mode == SEG_ACTIVE) {
        if (flags & 2) TRY(rd_u32(r, &s->table));
        if (s->table >= m->ntables) return WASM_E_UNKNOWN_TABLE;
        TRY(rd_const(L, WASM_I32, &s->offset));
    }
    if (flags & 3) { /* a reference type, or for function indices an element kind (0: funcref) */
        uint8_t kind;
        if (s->exprs) TRY(rd_reftype(r, &s->type));
        else {
            TRY(rd_byte(r, &kind));
            if (kind) return WASM_E_REFTYPE;
        }
    }
    if (s->mode == SEG_ACTIVE && m->tables[s->table].type != s->type) return WASM_E_TYPE_MISMATCH;
    TRY(rd_u32(r, &s->count));
    s->items = r->p;
    for (uint32_t k = 0; k < s->count; k++) {
        uint32_t f;
        if (s->exprs) { TRY(rd_const(L, s->type, &e)); continue; }
        TRY(rd_u32(r, &f));
        if (f >= m->nfuncs) return WASM_E_UNKNOWN_FUNC;
        TRY(declare(L, f));
    }
    return WASM_OK;
}

static wasm_err sec_elem(ld *L)
{
    wasm_module *m = L->m;
    rd *r = &L->r;
    TRY(rd_u32(r, &m->nelems));
    if (m->nelems > (uint32_t)(r->end - r->p)) return WASM_E_EOF;
    if (!(m->elems = alloc_n(L, m->nelems, sizeof *m->elems))) return WASM_E_NOMEM;
    for (uint32_t i = 0; i < m->nelems; i++)
        TRY(rd_elemseg(L, &m->elems[i]));
    return WASM_OK;
}

static wasm_err sec_data(ld *L)
{
    wasm_module *m = L->m;
    rd *r = &L->r;
    TRY(rd_u32(r, &m->ndatas));
    if (L->has_data_count && L->data_count != m->ndatas) return WASM_E_DATA_COUNT;
    if (m->ndatas > (uint32_t)(r->end - r->p)) return WASM_E_EOF;
    if (!(m->datas = alloc_n(L, m->ndatas, sizeof *m->datas))) return WASM_E_NOMEM;
    for (uint32_t i = 0; i < m->ndatas; i++) {
        wasm_dataseg *s = &m->datas[i];
        uint32_t flags, mem = 0;
        TRY(rd_u32(r, &flags));
        if (flags > 2) return WASM_E_LEB_RANGE;
        if (flags != 1) { /* active (1: passive, for memory.init) */
            if (flags == 2) TRY(rd_u32(r, &mem));
            if (mem >= L->nmems) return WASM_E_UNKNOWN_MEMORY;
            TRY(rd_const(L, WASM_I32, &s->offset));
        }
        TRY(rd_u32(r, &s->len));
        if ((uint32_t)(r->end - r->p) < s->len) return WASM_E_EOF;
        s->data = r->p;
        r->p += s->len;
    }
    return WASM_OK;
}

/* ---------------------------------------------------------------- code: validation and translation */

/*
 * One pass per function body: the validation algorithm of the spec's appendix
 * (operand and control stacks of types) drives a translator into the register
 * code of wasm_int.h. Every operand has a fixed slot (its stack height above
 * the locals), so translating needs no register allocation; three cheap
 * rewrites remove most of the stack machine's traffic:
 *  - local.get and constants are not copied: an operand remembers it is still
 *    in a local (V_LOCAL) or a constant (V_CONST) and its consumer reads the
 *    local or takes an immediate. Before a local is written, and at every
 *    block entry, operands still referring to locals are copied to their slots.
 *  - local.set/tee right after an instruction that produced the top operand
 *    retarget that instruction's destination to the local.
 *  - i32.eqz or an i32 comparison feeding br_if/if becomes part of the branch.
 * Unreachable code is validated but not emitted. Fuel is charged by X_FUEL at
 * function entry (the body's instructions outside loops) and at each loop
 * header (the loop body's instructions outside nested loops).
 */

#define T_ANY 0 /* unknown type from unreachable code */

static int dead(const ld *L)
{
    const vctrl *c = &L->cs[L->ch - 1];
    return c->unreach || c->dead_in;
}

static uint32_t home(const ld *L, uint32_t h) { return L->nloc + h; }

static wasm_err push_v(ld *L, uint8_t t, uint8_t k, uint32_t x, uint64_t c)
{
    if (L->vh >= L->vs_cap || L->nloc + L->vh >= X_NOSLOT) return WASM_E_IMPL_LIMIT;
    vval *v = &L->vs[L->vh++];
    v->t = t;
    v->k = k;
    v->x = (uint16_t)x;
    v->c = c;
    if (L->vh > L->maxh) L->maxh = L->vh;
    return WASM_OK;
}

static wasm_err push(ld *L, uint8_t t) { return push_v(L, t, V_SLOT, 0, 0); }

/* Pop an operand of type `want` (T_ANY: any). *out points at its entry, valid until the next push. */
static wasm_err pop(ld *L, uint8_t want, vval **out)
{
    vctrl *c = &L->cs[L->ch - 1];
    vval *v;
    if (L->vh == c->height) {
        if (!c->unreach) return WASM_E_TYPE_MISMATCH;
        v = &L->any;
        v->t = T_ANY;
        v->k = V_SLOT;
    } else {
        v = &L->vs[--L->vh];
    }
    if (want != T_ANY && v->t != T_ANY && v->t != want) return WASM_E_TYPE_MISMATCH;
    if (out) *out = v;
    return WASM_OK;
}

static wasm_err push_ctrl(ld *L, uint8_t kind, const wasm_functype *bt)
{
    if (L->ch >= L->cs_cap) return WASM_E_IMPL_LIMIT;
    uint8_t d = L->ch ? (uint8_t)dead(L) : 0;
    vctrl *c = &L->cs[L->ch++];
    c->height = L->vh;
    c->pending = WASM_NONE;
    c->if_br = WASM_NONE;
    c->loop_pos = L->m->ncode;
    c->fuel_pos = WASM_NONE;
    c->fuel_n = 0;
    c->fuel_up = L->fuelc;
    c->kind = kind;
    c->bt = *bt;
    c->unreach = 0;
    c->dead_in = d;
    return WASM_OK;
}

static void set_unreachable(ld *L)
{
    vctrl *c = &L->cs[L->ch - 1];
    L->vh = c->height;
    c->unreach = 1;
}

static void put32(wasm_code *p, uint32_t v)
{
    p[0] = (wasm_code)v;
    p[1] = (wasm_code)(v >> 16);
}

static uint32_t get32(const wasm_code *p) { return p[0] | (uint32_t)p[1] << 16; }

/* Append an instruction of n units (code grows at the arena's end). */
static wasm_code *emit(ld *L, uint32_t n)
{
    wasm_code *p = wasm_arena_grow(L->a, wb_size_mul(n, sizeof(wasm_code))); /* right after the code so far */
    if (!p) return NULL;
    L->last = L->m->ncode;
    L->m->ncode += n;
    L->fuse = WASM_NONE;
    return p;
}

#define EMIT(p, n) do { if (!((p) = emit(L, (n)))) return WASM_E_NOMEM; } while (0)

/* Emit an instruction whose destination (unit 1) is the slot of the top operand, just pushed. */
static wasm_err emit_def(ld *L, uint32_t n, wasm_code **out)
{
    wasm_code *p;
    EMIT(p, n);
    p[1] = (wasm_code)home(L, L->vh - 1);
    L->fuse = L->last + 1;
    L->fuse_h = L->vh;
    *out = p;
    return WASM_OK;
}

/* Whether the top operand is the result of the last emitted instruction (see emit_def). */
static int fusable(const ld *L)
{
    return L->fuse != WASM_NONE && L->vh == L->fuse_h && L->vh && L->vs[L->vh - 1].k == V_SLOT;
}

/* Emit slot dst = operand v (at height h) unless it is there already. */
static wasm_err move(ld *L, const vval *v, uint32_t h, uint32_t dst)
{
    wasm_code *p;
    if (v->k == V_CONST) { /* a reference (ref.null) fills its slot: ref.is_null tests all 64 bits */
        int wide = v->t == WASM_I64 || v->t == WASM_F64 || is_ref(v->t);
        EMIT(p, wide ? 6 : 4);
        p[0] = wide ? X_CONST64 : X_CONST32;
        p[1] = (wasm_code)dst;
        put32(p + 2, (uint32_t)v->c);
        if (wide) put32(p + 4, (uint32_t)(v->c >> 32));
        return WASM_OK;
    }
    uint32_t src = v->k == V_LOCAL ? v->x : home(L, h);
    if (src == dst) return WASM_OK;
    EMIT(p, 3);
    p[0] = (wasm_code)(X_COPY | (v->t == WASM_I32 || v->t == WASM_F32 ? X_32 : 0));
    p[1] = (wasm_code)dst;
    p[2] = (wasm_code)src;
    return WASM_OK;
}

/* Put the operand at height h into its own slot. */
static wasm_err settle(ld *L, uint32_t h)
{
    vval *v = &L->vs[h];
    if (v->k == V_SLOT) return WASM_OK;
    TRY(move(L, v, h, home(L, h)));
    v->k = V_SLOT;
    return WASM_OK;
}

/* Settle the operands that still refer to local x (to any local if x is WASM_NONE). */
static wasm_err settle_locals(ld *L, uint32_t x)
{
    for (uint32_t h = 0; h < L->vh; h++)
        if (L->vs[h].k == V_LOCAL && (x == WASM_NONE || L->vs[h].x == x)) TRY(settle(L, h));
    return WASM_OK;
}

/* The slot to read the popped operand v (height h) from; a constant is stored in its own slot. */
static wasm_err src_slot(ld *L, const vval *v, uint32_t h, uint32_t *s)
{
    if (v->k == V_LOCAL) {
        *s = v->x;
        return WASM_OK;
    }
    *s = home(L, h);
    return v->k == V_CONST ? move(L, v, h, *s) : WASM_OK;
}

/* The condition of a conditional branch: a slot tested for non-zero, or an i32 comparison. */
typedef struct cbr {
    uint32_t a, b;  /* slot tested, or the comparison's operands (b: slot, or immediate if ri) */
    uint8_t cmp;    /* 0, or the comparison 0x46..0x4f */
    uint8_t ri;     /* b is an immediate */
    uint8_t zero;   /* slot form: the condition holds when the slot is zero */
} cbr;

/*
 * The condition of a conditional branch (popped v at height h, `fused` = fusable()
 * before the pop). When v was made by the last instruction, an i32.eqz or i32
 * comparison, that instruction is removed and the branch does its work.
 */
static wasm_err cond_of(ld *L, const vval *v, uint32_t h, int fused, cbr *c)
{
    wasm_code *p = L->m->code + L->last;
    uint8_t op = (uint8_t)p[0];
    memset(c, 0, sizeof *c);
    if (fused && (op == 0x45 || (op >= 0x46 && op <= 0x4f) || (op >= X_RI && op <= X_RI + 9))) {
        uint32_t n = op == 0x45 ? 3 : op <= 0x4f ? 4 : 5;
        c->a = p[2];
        if (op == 0x45) c->zero = 1;
        else if (op <= 0x4f) { c->cmp = op; c->b = p[3]; }
        else { c->cmp = (uint8_t)(op - X_RI + 0x46); c->ri = 1; c->b = get32(p + 3); }
        wasm_arena_trim(L->a, L->a->used - n * sizeof(wasm_code));
        L->m->ncode -= n;
        L->fuse = WASM_NONE;
        return WASM_OK;
    }
    return src_slot(L, v, h, &c->a);
}

/* The comparison that holds exactly when `cmp` does not. */
static uint8_t negate(uint8_t cmp)
{
    static const uint8_t neg[10] = {0x47, 0x46, 0x4e, 0x4f, 0x4c, 0x4d, 0x4a, 0x4b, 0x48, 0x49};
    return neg[cmp - 0x46];
}

/* Emit a branch taken when condition c is `when` (1 true, 0 false); *field is its offset field. */
static wasm_err emit_cbr(ld *L, const cbr *c, int when, uint32_t *field)
{
    wasm_code *p;
    if (!c->cmp) {
        EMIT(p, 4);
        p[0] = (when ^ c->zero) ? X_BRNZ : X_BRZ;
        p[1] = (wasm_code)c->a;
        *field = L->last + 2;
    } else {
        uint8_t k = (uint8_t)((when ? c->cmp : negate(c->cmp)) - 0x46);
        EMIT(p, c->ri ? 6 : 5);
        p[0] = (wasm_code)((c->ri ? X_BCMPI : X_BCMP) + k);
        p[1] = (wasm_code)c->a;
        if (c->ri) put32(p + 2, c->b);
        else p[2] = (wasm_code)c->b;
        *field = L->last + (c->ri ? 4 : 3);
    }
    put32(L->m->code + *field, WASM_NONE);
    return WASM_OK;
}

/*
 * Point the branch offset field at `pos` to label c: back to a loop header, or chained
 * until c's end. `insn`: the field belongs to the last emitted X_BR/X_BRNZ/X_BRZ, which
 * becomes its loop form when it jumps back (it charges the loop's fuel without a dispatch).
 */
static void link_label(ld *L, vctrl *c, uint32_t pos, int insn)
{
    wasm_code *f = L->m->code + pos;
    if (c->kind == K_LOOP) {
        put32(f, c->loop_pos - pos);
        if (insn) {
            wasm_code *o = L->m->code + L->last;
            *o = *o == X_BR ? X_BRL : *o == X_BRNZ ? X_BRNZL : X_BRZL;
        }
    } else {
        put32(f, c->pending);
        c->pending = pos;
    }
}

/* Patch a chain of offset fields to jump to `target`. */
static void resolve(ld *L, uint32_t chain, uint32_t target)
{
    while (chain != WASM_NONE) {
        wasm_code *f = L->m->code + chain;
        uint32_t next = get32(f);
        put32(f, target - chain);
        chain = next;
    }
}

/* The types a branch to label c carries: a loop's params (it jumps back to the start), else the results. */
static const uint8_t *label_types(const vctrl *c, uint32_t *n)
{
    *n = c->kind == K_LOOP ? c->bt.nparams : c->bt.nresults;
    return c->kind == K_LOOP ? c->bt.params : c->bt.results;
}

static int same_types(const uint8_t *a, uint32_t na, const uint8_t *b, uint32_t nb)
{
    return na == nb && (!na || !memcmp(a, b, na));
}

/* A block type: empty (0x40), one result type (pointing into the binary), or a type index (s33). */
static wasm_err rd_blocktype(ld *L, wasm_functype *bt)
{
    const uint8_t *at = L->r.p;
    uint8_t b;
    uint64_t x;
    memset(bt, 0, sizeof *bt);
    TRY(rd_byte(&L->r, &b));
    if (b == 0x40) return WASM_OK;
    if (is_valtype(b)) {
        bt->results = at;
        bt->nresults = 1;
        return WASM_OK;
    }
    if (b == 0x7b) return WASM_E_UNSUP_SIMD;
    L->r.p = at;
    TRY(rd_leb(&L->r, 33, 1, &x));
    if ((int64_t)x < 0) return WASM_E_VALTYPE;
    if (x >= L->m->ntypes) return WASM_E_UNKNOWN_TYPE;
    *bt = L->m->types[x];
    return WASM_OK;
}

/* Pops operands of types ts[0..n) (the last on top); they stay in L->vs from L->vh on. */
static wasm_err pop_types(ld *L, const uint8_t *ts, uint32_t n)
{
    for (uint32_t i = n; i-- > 0;) TRY(pop(L, ts[i], NULL));
    return WASM_OK;
}

/* Pushes operands of types ts[0..n), each in its own slot. */
static wasm_err push_types(ld *L, const uint8_t *ts, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) TRY(push(L, ts[i]));
    return WASM_OK;
}

/*
 * Moves the n operands from height `from` (just popped) to the slots from height `to`
 * on (to <= from, so in ascending order no move overwrites a value still to be read).
 */
static wasm_err move_vals(ld *L, uint32_t from, uint32_t n, uint32_t to)
{
    for (uint32_t i = 0; i < n; i++) TRY(move(L, &L->vs[from + i], from + i, home(L, to + i)));
    return WASM_OK;
}

/* Whether the n operands from height `from` already are in the slots from height `to` on. */
static int in_place(const ld *L, uint32_t from, uint32_t n, uint32_t to)
{
    if (n && from != to) return 0;
    for (uint32_t i = 0; i < n; i++)
        if (L->vs[from + i].k != V_SLOT) return 0;
    return 1;
}

/*
 * Enters a block, loop or if of type bt (an if's condition already popped): its
 * params are popped, put in their own slots (a loop's back edges and an if's other
 * arm find them there) and pushed again above the new frame's height.
 */
static wasm_err enter_block(ld *L, uint8_t kind, const wasm_functype *bt)
{
    TRY(pop_types(L, bt->params, bt->nparams));
    if (!dead(L)) {
        TRY(settle_locals(L, WASM_NONE));
        for (uint32_t i = 0; i < bt->nparams; i++) TRY(settle(L, L->vh + i));
    }
    TRY(push_ctrl(L, kind, bt));
    return push_types(L, bt->params, bt->nparams);
}

static uint8_t local_type(ld *L, uint32_t idx)
{
    if (idx < L->ft->nparams) return L->ft->params[idx];
    idx -= L->ft->nparams;
    const uint8_t *p = L->locals;
    for (uint32_t g = 0; g < L->nlocal_groups; g++) {
        uint32_t n = wasm_rd_u32(&p);
        uint8_t t = *p++;
        if (idx < n) return t;
        idx -= n;
    }
    return 0;
}

/* Numeric operator signatures 0x45..0xc4: (a, b, result) as 1=i32 2=i64 3=f32 4=f64, 0 none. */
static const struct { uint8_t first, last, sig; } numsig[] = {
#define S(a, b, r) (uint8_t)((a) | (b) << 3 | (r) << 6)
    {0x45, 0x45, S(1, 0, 1)}, {0x46, 0x4f, S(1, 1, 1)}, {0x50, 0x50, S(2, 0, 1)},
    {0x51, 0x5a, S(2, 2, 1)}, {0x5b, 0x60, S(3, 3, 1)}, {0x61, 0x66, S(4, 4, 1)},
    {0x67, 0x69, S(1, 0, 1)}, {0x6a, 0x78, S(1, 1, 1)}, {0x79, 0x7b, S(2, 0, 2)},
    {0x7c, 0x8a, S(2, 2, 2)}, {0x8b, 0x91, S(3, 0, 3)}, {0x92, 0x98, S(3, 3, 3)},
    {0x99, 0x9f, S(4, 0, 4)}, {0xa0, 0xa6, S(4, 4, 4)}, {0xa7, 0xa7, S(2, 0, 1)},
    {0xa8, 0xa9, S(3, 0, 1)}, {0xaa, 0xab, S(4, 0, 1)}, {0xac, 0xad, S(1, 0, 2)},
    {0xae, 0xaf, S(3, 0, 2)}, {0xb0, 0xb1, S(4, 0, 2)}, {0xb2, 0xb3, S(1, 0, 3)},
    {0xb4, 0xb5, S(2, 0, 3)}, {0xb6, 0xb6, S(4, 0, 3)}, {0xb7, 0xb8, S(1, 0, 4)},
    {0xb9, 0xba, S(2, 0, 4)}, {0xbb, 0xbb, S(3, 0, 4)}, {0xbc, 0xbc, S(3, 0, 1)},
    {0xbd, 0xbd, S(4, 0, 2)}, {0xbe, 0xbe, S(1, 0, 3)}, {0xbf, 0xbf, S(2, 0, 4)},
    {0xc0, 0xc1, S(1, 0, 1)}, {0xc2, 0xc4, S(2, 0, 2)},
};
/* Saturating truncations 0xfc 0..7 */
static const uint8_t satsig[8] = {S(3, 0, 1), S(3, 0, 1), S(4, 0, 1), S(4, 0, 1),
                                  S(3, 0, 2), S(3, 0, 2), S(4, 0, 2), S(4, 0, 2)};
#undef S

static const uint8_t tcode[5] = {0, WASM_I32, WASM_I64, WASM_F32, WASM_F64};

/* Index of an i32 binary operator's immediate form (X_RI + index), or -1. */
static int ri_index(uint8_t op)
{
    if (op >= 0x46 && op <= 0x4f) return op - 0x46;
    if (op >= 0x6a && op <= 0x78) return 10 + op - 0x6a;
    return -1;
}

/* The operator with its operands swapped: itself if commutative, the mirrored comparison, or 0. */
static uint8_t swapped(uint8_t op)
{
    switch (op) {
    case 0x46: case 0x47: case 0x6a: case 0x6c: case 0x71: case 0x72: case 0x73: return op;
    case 0x48: return 0x4a; case 0x4a: return 0x48; case 0x49: return 0x4b; case 0x4b: return 0x49;
    case 0x4c: return 0x4e; case 0x4e: return 0x4c; case 0x4d: return 0x4f; case 0x4f: return 0x4d;
    }
    return 0;
}

/* A numeric operator `op` with signature `sig`, emitted as `code` (op itself, or X_TRUNC_SAT + k). */
static wasm_err numeric(ld *L, uint8_t op, uint8_t code, uint8_t sig)
{
    uint8_t ta = sig & 7, tb = (sig >> 3) & 7, tr = sig >> 6;
    vval *a, *b = NULL;
    uint32_t h, sa, sb;
    wasm_code *p;
    if (tb) TRY(pop(L, tcode[tb], &b));
    TRY(pop(L, tcode[ta], &a));
    h = L->vh;
    if (dead(L)) return push(L, tcode[tr]);
    if (!tb) {
        TRY(src_slot(L, a, h, &sa));
        TRY(push(L, tcode[tr]));
        TRY(emit_def(L, 3, &p));
        p[0] = code;
        p[2] = (wasm_code)sa;
        return WASM_OK;
    }
    int ri = ri_index(op);
    uint32_t ca = (uint32_t)a->c, cb = (uint32_t)b->c; /* a's entry is reused by the push below */
    if (ri >= 0 && a->k == V_CONST && b->k != V_CONST) {
        uint8_t sw = swapped(op);
        if (op == 0x6b) { /* const - x */
            TRY(src_slot(L, b, h + 1, &sb));
            TRY(push(L, WASM_I32));
            TRY(emit_def(L, 5, &p));
            p[0] = X_RSUB;
            p[2] = (wasm_code)sb;
            put32(p + 3, ca);
            return WASM_OK;
        }
        if (sw) {
            TRY(src_slot(L, b, h + 1, &sb));
            TRY(push(L, WASM_I32));
            TRY(emit_def(L, 5, &p));
            p[0] = (wasm_code)(X_RI + ri_index(sw));
            p[2] = (wasm_code)sb;
            put32(p + 3, ca);
            return WASM_OK;
        }
    }
    if (ri >= 0 && b->k == V_CONST) {
        TRY(src_slot(L, a, h, &sa));
        TRY(push(L, WASM_I32));
        TRY(emit_def(L, 5, &p));
        p[0] = (wasm_code)(X_RI + ri);
        p[2] = (wasm_code)sa;
        put32(p + 3, cb);
        return WASM_OK;
    }
    TRY(src_slot(L, a, h, &sa));
    TRY(src_slot(L, b, h + 1, &sb));
    TRY(push(L, tcode[tr]));
    TRY(emit_def(L, 4, &p));
    p[0] = code;
    p[2] = (wasm_code)sa;
    p[3] = (wasm_code)sb;
    return WASM_OK;
}

/* Memory access: value type and log2 of natural alignment, loads 0x28..0x35, stores 0x36..0x3e */
static const uint8_t memop[23][2] = {
    {1, 2}, {2, 3}, {3, 2}, {4, 3}, {1, 0}, {1, 0}, {1, 1}, {1, 1}, {2, 0}, {2, 0}, {2, 1}, {2, 1},
    {2, 2}, {2, 2}, {1, 2}, {2, 3}, {3, 2}, {4, 3}, {1, 0}, {1, 1}, {2, 0}, {2, 1}, {2, 2}};

/* br / br_if to label depth d (already checked), the condition popped by the caller. */
static wasm_err branch(ld *L, uint8_t op, uint32_t d, const vval *cond, uint32_t hc, int fused)
{
    vctrl *c = &L->cs[L->ch - 1 - d];
    uint32_t n, hv, f, skip;
    const uint8_t *ts = label_types(c, &n);
    int need;
    wasm_code *p;
    TRY(pop_types(L, ts, n));
    hv = L->vh;
    if (!dead(L)) {
        need = !in_place(L, hv, n, c->height); /* the carried values must move */
        if (op == 0x0c) {
            if (need) TRY(move_vals(L, hv, n, c->height));
            EMIT(p, 3);
            p[0] = X_BR;
            link_label(L, c, L->last + 1, 1);
        } else {
            cbr cb;
            TRY(cond_of(L, cond, hc, fused, &cb));
            if (!need) {
                TRY(emit_cbr(L, &cb, 1, &f));
                link_label(L, c, f, !cb.cmp);
            } else { /* not taken: skip the moves and the jump */
                TRY(emit_cbr(L, &cb, 0, &skip));
                TRY(move_vals(L, hv, n, c->height));
                EMIT(p, 3);
                p[0] = X_BR;
                link_label(L, c, L->last + 1, 1);
                resolve(L, skip, L->m->ncode);
            }
        }
    }
    if (op == 0x0c) {
        set_unreachable(L);
    } else if (L->cs[L->ch - 1].unreach) { /* br_if leaves the label's types (popped ones may be unknown) */
        L->vh = hv;
        TRY(push_types(L, ts, n));
    } else {
        L->vh = hv + n; /* the values stay where they were */
    }
    return WASM_OK;
}

static wasm_err br_table(ld *L)
{
    rd *r = &L->r;
    uint32_t n, d, hi, s;
    vval *idx;
    wasm_code *p;
    TRY(rd_u32(r, &n));
    if (n > (uint32_t)(r->end - r->p)) return WASM_E_EOF;
    TRY(pop(L, WASM_I32, &idx));
    hi = L->vh;
    const uint8_t *labels = r->p;
    for (uint32_t i = 0; i <= n; i++) TRY(rd_u32(r, &d)); /* default last */
    uint32_t na, nt;
    const uint8_t *q = labels, *dts;
    for (uint32_t i = 0; i <= n; i++)
        if (wasm_rd_u32(&q) >= L->ch) { /* a miscounted label vector reads on into the code: decode it first */
            L->deferred = WASM_E_UNKNOWN_LABEL;
            set_unreachable(L);
            L->cs[L->ch - 1].dead_in = 1;
            return WASM_OK;
        }
    dts = label_types(&L->cs[L->ch - 1 - d], &na);
    q = labels;
    for (uint32_t i = 0; i <= n; i++) { /* every label takes operands of its types from the same stack */
        d = wasm_rd_u32(&q);
        const uint8_t *ts = label_types(&L->cs[L->ch - 1 - d], &nt);
        if (nt != na || (L->m->mvp && !same_types(ts, nt, dts, na))) return WASM_E_TYPE_MISMATCH;
        TRY(pop_types(L, ts, nt));
        L->vh = hi;
    }
    if (!dead(L)) {
        TRY(src_slot(L, idx, hi, &s));
        if (n > (0xffffffffu - 4) / 2) return WASM_E_NOMEM;
        EMIT(p, 4 + 2 * (n + 1));
        p[0] = X_BRTABLE;
        p[1] = (wasm_code)s;
        put32(p + 2, n);
        uint32_t tab = L->last + 4;
        q = labels;
        for (uint32_t i = 0; i <= n; i++) {
            vctrl *c = &L->cs[L->ch - 1 - wasm_rd_u32(&q)];
            uint32_t f = tab + 2 * i;
            if (!in_place(L, hi - na, na, c->height)) { /* a pad moves the values, then jumps */
                put32(L->m->code + f, L->m->ncode - f);
                TRY(move_vals(L, hi - na, na, c->height));
                EMIT(p, 3);
                p[0] = X_BR;
                link_label(L, c, L->last + 1, 1);
            } else {
                link_label(L, c, f, 0);
            }
        }
    }
    set_unreachable(L);
    return WASM_OK;
}

/*
 * call / call_indirect (table `tab`) of type ft: arguments move to their slots, the
 * callee's frame starts at the first, and its results are left from there on.
 */
static wasm_err call(ld *L, const wasm_functype *ft, uint8_t op, uint32_t x, const vval *idx, uint32_t hi, uint32_t tab)
{
    wasm_code *p;
    uint32_t s = 0;
    TRY(pop_types(L, ft->params, ft->nparams));
    if (!dead(L)) {
        for (uint32_t i = 0; i < ft->nparams; i++) TRY(settle(L, L->vh + i));
        if (op == 0x11) TRY(src_slot(L, idx, hi, &s));
        EMIT(p, op == 0x10 ? 4 : 6);
        p[0] = op == 0x10 ? X_CALL : X_CALLI;
        p[1] = (wasm_code)home(L, L->vh);
        if (op == 0x10) put32(p + 2, x);
        else { p[2] = (wasm_code)s; put32(p + 3, x); p[5] = (wasm_code)tab; }
    }
    return push_types(L, ft->results, ft->nresults);
}

/*
 * Returns the n results just popped from height h (a function's end: h = 0): one is
 * copied to fp[0] by X_RETURN from wherever it is, several are first put in their own
 * slots and copied to fp[0..n) by X_RETN.
 */
static wasm_err emit_return(ld *L, uint32_t h, uint32_t n)
{
    wasm_code *p;
    uint32_t src = X_NOSLOT;
    if (n == 1) TRY(src_slot(L, &L->vs[h], h, &src));
    if (n <= 1) {
        EMIT(p, 2);
        p[0] = X_RETURN;
        p[1] = (wasm_code)src;
        return WASM_OK;
    }
    TRY(move_vals(L, h, n, h));
    EMIT(p, 3);
    p[0] = X_RETN;
    p[1] = (wasm_code)home(L, h);
    p[2] = (wasm_code)n;
    return WASM_OK;
}

/* A table index of an instruction: in range, and small enough for a 16-bit operand. */
static wasm_err rd_table(ld *L, uint32_t *x)
{
    TRY(rd_u32(&L->r, x));
    if (*x >= L->m->ntables) return WASM_E_UNKNOWN_TABLE;
    if (*x > 0xffff) return WASM_E_IMPL_LIMIT;
    return WASM_OK;
}

/*
 * An X_EXT instruction: pops operands of types in[0..nin) (nin <= 3), pushes one of
 * type `out` (0: none), and emits sub-operation `sub` with the result's slot (if any),
 * the operands' slots, then the units imm[0..nimm).
 */
static wasm_err ext(ld *L, uint8_t sub, const uint8_t *in, uint32_t nin, uint8_t out, const wasm_code *imm,
                    uint32_t nimm)
{
    uint32_t h, sl[3], first = 1 + (out != 0), len = first + nin + nimm;
    wasm_code *p;
    TRY(pop_types(L, in, nin));
    h = L->vh;
    if (dead(L)) return out ? push(L, out) : WASM_OK;
    for (uint32_t i = 0; i < nin; i++) TRY(src_slot(L, &L->vs[h + i], h + i, &sl[i]));
    if (out) {
        TRY(push(L, out));
        TRY(emit_def(L, len, &p));
    } else {
        EMIT(p, len);
    }
    p[0] = (wasm_code)(X_EXT | len << 8 | (uint32_t)sub << 12);
    for (uint32_t i = 0; i < nin; i++) p[first + i] = (wasm_code)sl[i];
    for (uint32_t i = 0; i < nimm; i++) p[first + nin + i] = imm[i];
    return WASM_OK;
}

static const uint8_t i32x3[3] = {WASM_I32, WASM_I32, WASM_I32};

/* memory.init, data.drop, memory.copy, memory.fill (0xfc 8..11). */
static wasm_err bulk_memory(ld *L, uint32_t x)
{
    static const uint8_t zeros[4] = {1, 0, 2, 1}, subs[4] = {XS_MINIT, XS_DDROP, XS_MCOPY, XS_MFILL};
    uint32_t seg = 0;
    uint8_t z;
    wasm_code imm[2];
    if (x <= 9) { /* a data segment: the data section follows the code, so its count comes first */
        TRY(rd_u32(&L->r, &seg));
        L->data_ref = 1; /* without a count: judged at the module's end (wasm_module_load_limited) */
        if (L->has_data_count && seg >= L->data_count) return WASM_E_UNKNOWN_DATA;
        put32(imm, seg);
    }
    for (uint32_t k = 0; k < zeros[x - 8]; k++) { /* memory indices: 0, the only memory */
        TRY(rd_byte(&L->r, &z));
        if (z) return WASM_E_ZERO_BYTE;
    }
    if (x == 9) return ext(L, XS_DDROP, NULL, 0, 0, imm, 2);
    if (!L->nmems) return WASM_E_UNKNOWN_MEMORY;
    return ext(L, subs[x - 8], i32x3, 3, 0, imm, x == 8 ? 2 : 0);
}

/* table.init, elem.drop, table.copy/grow/size/fill (0xfc 12..17) and table.get/set (0x25, 0x26). */
static wasm_err table_op(ld *L, uint32_t x)
{
    wasm_module *m = L->m;
    uint32_t tab, y;
    wasm_code imm[3];
    uint8_t t, in[3];
    if (x == 12 || x == 13) { /* an element segment, then (table.init) the table */
        TRY(rd_u32(&L->r, &y));
        if (x == 12) TRY(rd_table(L, &tab));
        if (y >= m->nelems) return WASM_E_UNKNOWN_ELEM;
        put32(imm + 1, y);
        if (x == 13) return ext(L, XS_EDROP, NULL, 0, 0, imm + 1, 2);
        if (m->elems[y].type != m->tables[tab].type) return WASM_E_TYPE_MISMATCH;
        imm[0] = (wasm_code)tab;
        return ext(L, XS_TINIT, i32x3, 3, 0, imm, 3);
    }
    TRY(rd_table(L, &tab));
    t = m->tables[tab].type;
    imm[0] = (wasm_code)tab;
    in[0] = WASM_I32;
    in[1] = t;
    in[2] = WASM_I32;
    switch (x) {
    case 14: /* table.copy dst src */
        TRY(rd_table(L, &y));
        if (m->tables[y].type != t) return WASM_E_TYPE_MISMATCH;
        imm[1] = (wasm_code)y;
        return ext(L, XS_TCOPY, i32x3, 3, 0, imm, 2);
    case 15: m->grows_tables = 1; return ext(L, XS_TGROW, in + 1, 2, WASM_I32, imm, 1);
    case 16: return ext(L, XS_TSIZE, NULL, 0, WASM_I32, imm, 1);
    case 17: return ext(L, XS_TFILL, in, 3, 0, imm, 1);
    case 0x25: return ext(L, XS_TGET, in, 1, t, imm, 1);
    default: return ext(L, XS_TSET, in, 2, 0, imm, 1); /* 0x26 */
    }
}

/* The function's end, its results popped: they are in slots from height 0 on when branches carried them there. */
static wasm_err end_func(ld *L)
{
    vctrl *c = &L->cs[0];
    uint32_t n = c->bt.nresults;
    wasm_code *p;
    if (c->pending != WASM_NONE) { /* branches carried the results to their slots: the end takes them there too */
        if (!c->unreach) TRY(move_vals(L, 0, n, 0));
        for (uint32_t i = 0; i < n; i++) L->vs[i].k = V_SLOT; /* n <= the height the branches had */
        c->unreach = 0;
        resolve(L, c->pending, L->m->ncode);
    }
    if (!c->unreach) {
        TRY(emit_return(L, 0, n));
    } else { /* never reached; the code still ends with a return */
        EMIT(p, 2);
        p[0] = X_RETURN;
        p[1] = X_NOSLOT;
    }
    put32(L->m->code + c->fuel_pos, c->fuel_n);
    return WASM_OK;
}

static wasm_err validate_body(ld *L, wasm_funcdef *fd)
{
    wasm_module *m = L->m;
    rd *r = &L->r;
    uint8_t op, t;
    uint32_t x, h, s;
    uint64_t v;
    vval *a, *b, *cnd;
    wasm_code *p;
    wasm_functype bt = {NULL, L->ft->results, 0, L->ft->nresults}; /* the function's frame: no params */
    int fused;

    if ((uint64_t)L->ft->nparams + L->nlocals >= X_NOSLOT) return WASM_E_IMPL_LIMIT;
    L->nloc = L->ft->nparams + L->nlocals;
    L->vh = 0;
    L->ch = 0;
    L->maxh = 0;
    L->fuelc = 0;
    L->fuse = WASM_NONE;
    TRY(push_ctrl(L, K_FUNC, &bt));
    fd->code = m->code + m->ncode;
    EMIT(p, 3);
    p[0] = X_FUEL;
    L->cs[0].fuel_pos = L->last + 1;

    while (L->ch) {
        TRY(rd_byte(r, &op));
        L->cs[L->fuelc].fuel_n++;
        switch (op) {
        case 0x00:                            /* unreachable */
            if (!dead(L)) { EMIT(p, 1); p[0] = X_UNREACHABLE; }
            set_unreachable(L);
            break;
        case 0x01: break;                     /* nop */
        case 0x02: case 0x03:                 /* block, loop */
            TRY(rd_blocktype(L, &bt));
            TRY(enter_block(L, op == 0x02 ? K_BLOCK : K_LOOP, &bt));
            L->fuse = WASM_NONE;
            if (op == 0x03) {
                vctrl *c = &L->cs[L->ch - 1];
                L->fuelc = L->ch - 1;
                if (!c->dead_in) {
                    EMIT(p, 3);
                    p[0] = X_FUEL;
                    c->loop_pos = L->last;
                    c->fuel_pos = L->last + 1;
                }
            }
            break;
        case 0x04: {                          /* if */
            cbr cb;
            int live;
            TRY(rd_blocktype(L, &bt));
            fused = fusable(L);
            TRY(pop(L, WASM_I32, &cnd));
            h = L->vh;
            if ((live = !dead(L))) TRY(cond_of(L, cnd, h, fused, &cb));
            TRY(enter_block(L, K_IF, &bt)); /* the params settle before the branch: both arms find them */
            x = WASM_NONE;
            if (live) TRY(emit_cbr(L, &cb, 0, &x));
            L->cs[L->ch - 1].if_br = x;
            break;
        }
        case 0x05: {                          /* else */
            vctrl *c = &L->cs[L->ch - 1];
            if (c->kind != K_IF) return WASM_E_END_EXPECTED;
            TRY(pop_types(L, c->bt.results, c->bt.nresults));
            if (L->vh != c->height) return WASM_E_TYPE_MISMATCH;
            if (!dead(L)) TRY(move_vals(L, L->vh, c->bt.nresults, c->height));
            if (!dead(L)) {
                EMIT(p, 3);
                p[0] = X_BR;
                link_label(L, c, L->last + 1, 1);
            }
            resolve(L, c->if_br, m->ncode);
            c->if_br = WASM_NONE;
            c->kind = K_ELSE;
            c->unreach = 0;
            TRY(push_types(L, c->bt.params, c->bt.nparams)); /* still in their slots */
            L->fuse = WASM_NONE;
            break;
        }
        case 0x0b: {                          /* end */
            vctrl *c = &L->cs[L->ch - 1];
            bt = c->bt;
            TRY(pop_types(L, bt.results, bt.nresults));
            if (L->vh != c->height) return WASM_E_TYPE_MISMATCH;
            /* an if without else passes its params on as its results */
            if (c->kind == K_IF && !same_types(bt.params, bt.nparams, bt.results, bt.nresults))
                return WASM_E_TYPE_MISMATCH;
            if (c->kind == K_FUNC) {
                TRY(end_func(L));
                L->ch--;
                break;
            }
            if (!dead(L)) TRY(move_vals(L, L->vh, bt.nresults, c->height));
            resolve(L, c->if_br, m->ncode);
            resolve(L, c->pending, m->ncode);
            if (c->kind == K_LOOP) {
                if (c->fuel_pos != WASM_NONE) put32(m->code + c->fuel_pos, c->fuel_n);
                L->fuelc = c->fuel_up;
            }
            L->ch--;
            TRY(push_types(L, bt.results, bt.nresults));
            L->fuse = WASM_NONE;
            break;
        }
        case 0x0c: case 0x0d:                 /* br, br_if */
            TRY(rd_u32(r, &x));
            if (x >= L->ch) return WASM_E_UNKNOWN_LABEL;
            cnd = NULL;
            h = 0;
            fused = 0;
            if (op == 0x0d) {
                fused = fusable(L);
                TRY(pop(L, WASM_I32, &cnd));
                h = L->vh;
            }
            TRY(branch(L, op, x, cnd, h, fused));
            break;
        case 0x0e:                            /* br_table */
            TRY(br_table(L));
            break;
        case 0x0f:                            /* return */
            TRY(pop_types(L, L->ft->results, L->ft->nresults));
            if (!dead(L)) TRY(emit_return(L, L->vh, L->ft->nresults));
            set_unreachable(L);
            break;
        case 0x10:                            /* call */
            TRY(rd_u32(r, &x));
            if (x >= m->nfuncs) return WASM_E_UNKNOWN_FUNC;
            TRY(call(L, &m->types[m->func_type[x]], op, x, NULL, 0, 0));
            break;
        case 0x11: {                          /* call_indirect */
            uint32_t tab;
            TRY(rd_u32(r, &x));
            if (m->mvp) { /* 1.0: a reserved zero byte */
                uint8_t z;
                TRY(rd_byte(r, &z));
                if (z) return WASM_E_ZERO_BYTE;
                if (!m->ntables) return WASM_E_UNKNOWN_TABLE;
                tab = 0;
            } else {
                TRY(rd_table(L, &tab));
            }
            if (x >= m->ntypes) return WASM_E_UNKNOWN_TYPE;
            if (m->tables[tab].type != WASM_FUNCREF) return WASM_E_TYPE_MISMATCH;
            TRY(pop(L, WASM_I32, &cnd));
            h = L->vh;
            TRY(call(L, &m->types[x], op, x, cnd, h, tab));
            break;
        }
        case 0x1a:                            /* drop */
            TRY(pop(L, T_ANY, NULL));
            break;
        case 0x1b: case 0x1c: {               /* select, select t */
            uint8_t want = T_ANY;
            uint32_t sa, sb;
            if (op == 0x1c) {
                TRY(rd_u32(r, &x));
                if (x != 1) return WASM_E_TYPE_MISMATCH; /* invalid result arity */
                TRY(rd_valtype(r, &want));
            }
            TRY(pop(L, WASM_I32, &cnd));
            TRY(pop(L, want, &b));
            TRY(pop(L, want != T_ANY ? want : b->t, &a));
            if (op == 0x1b && (is_ref(a->t) || is_ref(b->t))) return WASM_E_TYPE_MISMATCH; /* references need select t */
            if (want == T_ANY) want = b->t != T_ANY ? b->t : a->t;
            h = L->vh;
            if (dead(L)) {
                TRY(push(L, want));
                break;
            }
            TRY(src_slot(L, a, h, &sa));
            TRY(src_slot(L, b, h + 1, &sb));
            TRY(src_slot(L, cnd, h + 2, &s));
            TRY(push(L, want));
            TRY(emit_def(L, 5, &p));
            p[0] = (wasm_code)(X_SELECT | (want == WASM_I32 || want == WASM_F32 ? X_32 : 0));
            p[2] = (wasm_code)sa;
            p[3] = (wasm_code)sb;
            p[4] = (wasm_code)s;
            break;
        }
        case 0x20: case 0x21: case 0x22:      /* local.get/set/tee */
            TRY(rd_u32(r, &x));
            if ((uint64_t)x >= (uint64_t)L->ft->nparams + L->nlocals) return WASM_E_UNKNOWN_LOCAL;
            t = local_type(L, x);
            if (op == 0x20) {
                TRY(push_v(L, t, V_LOCAL, x, 0));
                break;
            }
            fused = fusable(L);
            TRY(pop(L, t, &a));
            h = L->vh;
            if (!dead(L) && !(a->k == V_LOCAL && a->x == x)) {
                uint32_t before = m->ncode;
                TRY(settle_locals(L, x));
                if (fused && m->ncode == before) m->code[L->fuse] = (wasm_code)x; /* retarget the producer */
                else TRY(move(L, a, h, x));
                L->fuse = WASM_NONE;
            }
            if (op == 0x22) TRY(push_v(L, t, V_LOCAL, x, 0));
            break;
        case 0x23: case 0x24:                 /* global.get/set */
            TRY(rd_u32(r, &x));
            if (x >= m->nglobals) return WASM_E_UNKNOWN_GLOBAL;
            if (x > 0xffff) return WASM_E_IMPL_LIMIT;
            t = m->globals[x].type;
            if (op == 0x23) {
                TRY(push(L, t));
                if (!dead(L)) {
                    TRY(emit_def(L, 3, &p));
                    p[0] = X_GGET;
                    p[2] = (wasm_code)x;
                }
            } else {
                if (!m->globals[x].mut) return WASM_E_IMMUTABLE;
                TRY(pop(L, t, &a));
                if (!dead(L)) {
                    TRY(src_slot(L, a, L->vh, &s));
                    EMIT(p, 3);
                    p[0] = X_GSET;
                    p[1] = (wasm_code)s;
                    p[2] = (wasm_code)x;
                }
            }
            break;
        case 0x3f: case 0x40: {               /* memory.size/grow */
            uint8_t z;
            TRY(rd_byte(r, &z));
            if (z) return WASM_E_ZERO_BYTE;
            if (!L->nmems) return WASM_E_UNKNOWN_MEMORY;
            s = 0;
            if (op == 0x40) {
                TRY(pop(L, WASM_I32, &a));
                if (!dead(L)) TRY(src_slot(L, a, L->vh, &s));
            }
            TRY(push(L, WASM_I32));
            if (!dead(L)) {
                TRY(emit_def(L, op == 0x3f ? 2 : 3, &p));
                p[0] = op;
                if (op == 0x40) p[2] = (wasm_code)s;
            }
            break;
        }
        case 0x41: TRY(rd_leb(r, 32, 1, &v)); TRY(push_v(L, WASM_I32, V_CONST, 0, (uint32_t)v)); break;
        case 0x42: TRY(rd_leb(r, 64, 1, &v)); TRY(push_v(L, WASM_I64, V_CONST, 0, v)); break;
        case 0x43: {
            uint32_t u;
            if (r->end - r->p < 4) return WASM_E_EOF;
            memcpy(&u, r->p, 4);
            r->p += 4;
            TRY(push_v(L, WASM_F32, V_CONST, 0, u));
            break;
        }
        case 0x44:
            if (r->end - r->p < 8) return WASM_E_EOF;
            memcpy(&v, r->p, 8);
            r->p += 8;
            TRY(push_v(L, WASM_F64, V_CONST, 0, v));
            break;
        case 0xfc:
            TRY(rd_u32(r, &x));
            if (x < 8) { TRY(numeric(L, 0, (uint8_t)(X_TRUNC_SAT + x), satsig[x])); break; }
            if (x <= 11) { TRY(bulk_memory(L, x)); break; }
            if (x <= 17) { TRY(table_op(L, x)); break; }
            return WASM_E_OPCODE;
        case 0x25: TRY(table_op(L, 0x25)); break; /* table.get */
        case 0x26: TRY(table_op(L, 0x26)); break; /* table.set */
        case 0xd0:                            /* ref.null t */
            TRY(rd_reftype(r, &t));
            TRY(push_v(L, t, V_CONST, 0, 0));
            break;
        case 0xd1:                            /* ref.is_null: i64.eqz of the slot, a reference fills it */
            TRY(pop(L, T_ANY, &a));
            if (a->t != T_ANY && !is_ref(a->t)) return WASM_E_TYPE_MISMATCH;
            h = L->vh;
            if (dead(L)) { TRY(push(L, WASM_I32)); break; }
            TRY(src_slot(L, a, h, &s));
            TRY(push(L, WASM_I32));
            TRY(emit_def(L, 3, &p));
            p[0] = 0x50;
            p[2] = (wasm_code)s;
            break;
        case 0xd2: {                          /* ref.func */
            wasm_code f[2];
            TRY(rd_u32(r, &x));
            if (x >= m->nfuncs) return WASM_E_UNKNOWN_FUNC;
            if (!L->refs || !(L->refs[x / 8] & (1u << (x % 8)))) return WASM_E_UNDECLARED_REF;
            put32(f, x);
            TRY(ext(L, XS_REFFUNC, NULL, 0, WASM_FUNCREF, f, 2));
            break;
        }
        case 0xfd:
            return WASM_E_UNSUP_SIMD;
        default:
            if (op >= 0x28 && op <= 0x3e) {
                uint32_t align, off, sa = 0, sv = 0;
                const uint8_t *mo = memop[op - 0x28];
                TRY(rd_u32(r, &align));
                if (align >= 32) return WASM_E_MEMOP_FLAGS; /* 2^align does not fit 32 bits: malformed (2.0 suite) */
                TRY(rd_u32(r, &off));
                if (!L->nmems) return WASM_E_UNKNOWN_MEMORY;
                if (align > mo[1]) return WASM_E_ALIGNMENT;
                if (op <= 0x35) {
                    TRY(pop(L, WASM_I32, &a));
                    h = L->vh;
                    if (!dead(L)) TRY(src_slot(L, a, h, &sa));
                    TRY(push(L, tcode[mo[0]]));
                    if (!dead(L)) {
                        TRY(emit_def(L, 5, &p));
                        p[0] = op;
                        p[2] = (wasm_code)sa;
                        put32(p + 3, off);
                    }
                } else {
                    TRY(pop(L, tcode[mo[0]], &b));
                    TRY(pop(L, WASM_I32, &a));
                    h = L->vh;
                    if (!dead(L)) {
                        TRY(src_slot(L, a, h, &sa));
                        TRY(src_slot(L, b, h + 1, &sv));
                        EMIT(p, 5);
                        p[0] = op;
                        p[1] = (wasm_code)sa;
                        p[2] = (wasm_code)sv;
                        put32(p + 3, off);
                    }
                }
                break;
            }
            if (op >= 0x45 && op <= 0xc4) {
                for (unsigned i = 0;; i++)
                    if (op <= numsig[i].last) { TRY(numeric(L, op, op, numsig[i].sig)); break; }
                break;
            }
            return WASM_E_OPCODE;
        }
    }
    if (L->deferred) return L->deferred;
    fd->max_height = L->maxh;
    fd->nparams = L->ft->nparams;
    fd->frame_slots = L->nloc + L->maxh;
    fd->nresults = L->ft->nresults;
    return WASM_OK;
}

static wasm_err sec_code(ld *L)
{
    wasm_module *m = L->m;
    rd *r = &L->r;
    uint32_t n;
    TRY(rd_u32(r, &n));
    if (n != L->nfuncdefs) return WASM_E_FUNC_COUNT;

    /* Validator scratch at the top of the free arena; the translated code grows from the bottom. */
    wasm_arena *a = L->a;
    size_t used = up8(a->used);
    if (used > a->size) return WASM_E_NOMEM;
    size_t free_ = a->size - used, s = free_ / 2;
    if (s > 49152) s = 49152;
    s &= ~(size_t)7u;
    size_t saved_size = a->size;
    L->cs_cap = (uint32_t)(s / 4 / sizeof(vctrl));
    L->vs_cap = (uint32_t)((s - L->cs_cap * sizeof(vctrl)) / sizeof(vval));
    L->vs = wasm_arena_top(a, s); /* fits: s <= half the free space */
    L->cs = (vctrl *)(L->vs + L->vs_cap);
    a->used = used;
    m->code = (wasm_code *)(a->base + used);
    m->ncode = 0;

    wasm_err err = WASM_OK;
    for (uint32_t i = 0; i < n && !err; i++) {
        wasm_funcdef *fd = &m->funcs[i];
        uint32_t size;
        if ((err = rd_u32(r, &size))) break;
        if (size > (uint32_t)(r->end - r->p)) { err = WASM_E_EOF; break; }
        rd body = {r->p, r->p + size}, outer = *r;
        L->r = body;
        uint32_t groups;
        uint64_t total = 0;
        if ((err = rd_u32(&L->r, &groups))) break;
        L->locals = L->r.p;
        for (uint32_t g = 0; g < groups && !err; g++) {
            uint32_t cnt;
            uint8_t t;
            if ((err = rd_u32(&L->r, &cnt))) break;
            total += cnt;
            if (total > 0xffffffffu) err = WASM_E_TOO_MANY_LOCALS;
            else err = rd_valtype(&L->r, &t);
        }
        if (err) break;
        if (total + m->types[m->func_type[m->nfunc_imports + i]].nparams > 0x7fffffff) { err = WASM_E_IMPL_LIMIT; break; }
        L->nlocal_groups = groups;
        L->nlocals = fd->nlocals = (uint32_t)total;
        L->ft = &m->types[m->func_type[m->nfunc_imports + i]];
        err = validate_body(L, fd);
        if (!err && L->r.p != body.end) err = WASM_E_SECTION_SIZE;
        *r = outer;
        r->p = body.end;
    }
    wasm_arena_top_free(a, saved_size);
    return err;
}

/* ---------------------------------------------------------------- module */

static const uint8_t sec_rank[13] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 10};

wasm_err wasm_module_load(const uint8_t *bin, uint32_t len, wasm_arena *a, wasm_module **out)
{
    return wasm_module_load_limited(bin, len, NULL, a, out);
}

wasm_err wasm_module_load_limited(const uint8_t *bin, uint32_t len, const wasm_load_limits *lim, wasm_arena *a,
                                  wasm_module **out)
{
    ld L;
    wasm_err err = WASM_OK;
    uint8_t last = 0;
    memset(&L, 0, sizeof L);
    *out = NULL;
    if (!(L.m = wasm_arena_alloc(a, sizeof *L.m))) return WASM_E_NOMEM;
    L.a = a;
    L.max_table = lim && lim->max_table ? lim->max_table : WASM_MAX_TABLE;
    L.m->mvp = lim && lim->mvp;
    L.m->bin = bin;
    L.m->len = len;
    L.m->start = WASM_NONE;
    L.r.p = bin;
    L.r.end = bin + len;
    if (len < 4 || memcmp(bin, "\0asm", 4)) return WASM_E_MAGIC;
    if (len < 8) return WASM_E_EOF;
    if (memcmp(bin + 4, "\1\0\0\0", 4)) return WASM_E_VERSION;
    L.r.p += 8;
    while (L.r.p < L.r.end) {
        uint8_t id;
        uint32_t size;
        TRY(rd_byte(&L.r, &id));
        TRY(rd_u32(&L.r, &size));
        if (size > (uint32_t)(L.r.end - L.r.p)) return WASM_E_EOF;
        if (id > 12) return WASM_E_SECTION_ID;
        const uint8_t *send = L.r.p + size, *mend = L.r.end;
        L.r.end = send;
        if (id) {
            if (sec_rank[id] <= last) return WASM_E_SECTION_ORDER;
            last = sec_rank[id];
        }
        switch (id) {
        case 0: { const uint8_t *s; uint32_t n; err = rd_name(&L.r, &s, &n); L.r.p = send; break; }
        case 1: err = sec_type(&L); break;
        case 2: err = sec_import(&L); break;
        case 3: err = sec_function(&L); break;
        case 4: err = sec_table(&L); break;
        case 5: err = sec_memory(&L); break;
        case 6: err = sec_global(&L); break;
        case 7: err = sec_export(&L); break;
        case 8: err = sec_start(&L); break;
        case 9: err = sec_elem(&L); break;
        case 10: err = sec_code(&L); break;
        case 11: err = sec_data(&L); L.has_data = 1; break;
        case 12: err = rd_u32(&L.r, &L.data_count); L.has_data_count = 1; break;
        }
        if (err) return err;
        if (L.r.p != send) return WASM_E_SECTION_SIZE;
        L.r.end = mend;
    }
    if (L.nfuncdefs && !L.m->code) return WASM_E_FUNC_COUNT;
    if (L.has_data_count && L.data_count && !L.m->datas) return WASM_E_DATA_COUNT;
    /*
     * Code naming a data segment needs the data count section: without one, a module with
     * a data section is malformed; one without any has no segment to name (the spec
     * suite's text modules, converted without the section, expect that verdict).
     */
    if (L.data_ref && !L.has_data_count) return L.has_data ? WASM_E_DATA_COUNT_REQ : WASM_E_UNKNOWN_DATA;
    L.m->nfuncs = L.m->nfunc_imports + L.nfuncdefs;
    *out = L.m;
    return WASM_OK;
}

int wasm_module_memory(const wasm_module *m, uint32_t *min_pages, uint32_t *max_pages, int *has_max)
{
    if (!m->memory.present) return 0;
    *min_pages = m->memory.min;
    *max_pages = m->memory.max;
    *has_max = m->memory.has_max;
    return 1;
}

size_t wasm_module_code_bytes(const wasm_module *m)
{
    return wb_size_mul(m->ncode, sizeof(wasm_code));
}

int32_t wasm_module_export(const wasm_module *m, const char *name, uint32_t name_len, wasm_extern_kind kind)
{
    for (uint32_t i = 0; i < m->nexports; i++) {
        const wasm_export *e = &m->exports[i];
        if (e->kind == kind && e->name_len == name_len && !memcmp(e->name, name, name_len))
            return (int32_t)e->index;
    }
    return -1;
}

const wasm_functype *wasm_module_func_type(const wasm_module *m, uint32_t index)
{
    return index < m->nfuncs ? &m->types[m->func_type[index]] : NULL;
}
