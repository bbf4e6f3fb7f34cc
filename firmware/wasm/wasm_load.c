/*
 * Binary decoder and validator. One pass over the module: every section is
 * decoded with the malformed-module checks of the binary format, and every
 * function body is type-checked (the validation algorithm of the spec's
 * appendix) while its branch side table is emitted.
 */
#include <string.h>
#include "wasm_int.h"

/* ---------------------------------------------------------------- arena */

void wasm_arena_init(wasm_arena *a, void *buf, size_t size)
{
    a->base = (uint8_t *)buf;
    a->size = size;
    a->used = 0;
}

void *wasm_arena_alloc(wasm_arena *a, size_t n)
{
    size_t off = (a->used + 7u) & ~(size_t)7u;
    if (off > a->size || n > a->size - off)
        return NULL;
    a->used = off + n;
    memset(a->base + off, 0, n);
    return a->base + off;
}

/* ---------------------------------------------------------------- errors */

const char *wasm_err_str(wasm_err e)
{
    switch (e) {
    case WASM_OK: return "ok";
    case WASM_E_EOF: return "unexpected end";
    case WASM_E_MAGIC: return "magic header not detected";
    case WASM_E_VERSION: return "unknown binary version";
    case WASM_E_LEB_LONG: return "integer representation too long";
    case WASM_E_LEB_RANGE: return "integer too large";
    case WASM_E_SECTION_ID: return "malformed section id";
    case WASM_E_SECTION_ORDER: return "unexpected content after last section";
    case WASM_E_SECTION_SIZE: return "section size mismatch";
    case WASM_E_UTF8: return "malformed UTF-8 encoding";
    case WASM_E_OPCODE: return "illegal opcode";
    case WASM_E_VALTYPE: return "malformed value type";
    case WASM_E_FUNC_COUNT: return "function and code section have inconsistent lengths";
    case WASM_E_DATA_COUNT: return "data count and data section have inconsistent lengths";
    case WASM_E_TOO_MANY_LOCALS: return "too many locals";
    case WASM_E_ZERO_BYTE: return "zero byte expected";
    case WASM_E_MUTABILITY: return "malformed mutability";
    case WASM_E_IMPORT_KIND: return "malformed import kind";
    case WASM_E_LIMITS_FLAG: return "malformed limits flags";
    case WASM_E_END_EXPECTED: return "END opcode expected";
    case WASM_E_FORM: return "malformed type form";
    case WASM_E_UNSUPPORTED: return "unsupported feature";
    case WASM_E_UNSUP_MULTI_VALUE: return "unsupported feature: multi-value";
    case WASM_E_UNSUP_REF_TYPES: return "unsupported feature: reference types";
    case WASM_E_UNSUP_BULK: return "unsupported feature: bulk memory";
    case WASM_E_UNSUP_SIMD: return "unsupported feature: SIMD";
    case WASM_E_UNSUP_LAST: return "unsupported feature";
    case WASM_E_TYPE_MISMATCH: return "type mismatch";
    case WASM_E_UNKNOWN_TYPE: return "unknown type";
    case WASM_E_UNKNOWN_FUNC: return "unknown function";
    case WASM_E_UNKNOWN_GLOBAL: return "unknown global";
    case WASM_E_UNKNOWN_LOCAL: return "unknown local";
    case WASM_E_UNKNOWN_LABEL: return "unknown label";
    case WASM_E_UNKNOWN_MEMORY: return "unknown memory";
    case WASM_E_UNKNOWN_TABLE: return "unknown table";
    case WASM_E_ALIGNMENT: return "alignment must not be larger than natural";
    case WASM_E_IMMUTABLE: return "global is immutable";
    case WASM_E_CONST_EXPR: return "constant expression required";
    case WASM_E_MEM_LIMITS: return "memory size must be at most 65536 pages (4GiB)";
    case WASM_E_LIMITS_ORDER: return "size minimum must not be greater than maximum";
    case WASM_E_DUP_EXPORT: return "duplicate export name";
    case WASM_E_MULTI_MEMORY: return "multiple memories";
    case WASM_E_START_TYPE: return "start function must have type [] -> []";
    case WASM_E_NOMEM: return "arena exhausted";
    case WASM_E_IMPL_LIMIT: return "implementation limit exceeded";
    case WASM_E_ARG: return "bad argument";
    case WASM_E_UNKNOWN_IMPORT: return "unknown import";
    case WASM_E_IMPORT_TYPE: return "incompatible import type";
    case WASM_E_MEMORY_BUDGET: return "memory does not fit the buffer";
    case WASM_TRAP_UNREACHABLE: return "unreachable";
    case WASM_TRAP_MEM_OOB: return "out of bounds memory access";
    case WASM_TRAP_DIV_ZERO: return "integer divide by zero";
    case WASM_TRAP_INT_OVERFLOW: return "integer overflow";
    case WASM_TRAP_INVALID_CONV: return "invalid conversion to integer";
    case WASM_TRAP_INDIRECT_TYPE: return "indirect call type mismatch";
    case WASM_TRAP_UNDEF_ELEMENT: return "undefined element";
    case WASM_TRAP_UNINIT_ELEMENT: return "uninitialized element";
    case WASM_TRAP_TABLE_OOB: return "out of bounds table access";
    case WASM_TRAP_STACK_OVERFLOW: return "call stack exhausted";
    case WASM_TRAP_FUEL: return "fuel exhausted";
    case WASM_TRAP_HOST: return "host function failed";
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

static int utf8_ok(const uint8_t *s, uint32_t n)
{
    uint32_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        uint32_t len, cp, min;
        if (c < 0x80) { i++; continue; }
        if ((c & 0xe0) == 0xc0) { len = 2; cp = c & 0x1f; min = 0x80; }
        else if ((c & 0xf0) == 0xe0) { len = 3; cp = c & 0x0f; min = 0x800; }
        else if ((c & 0xf8) == 0xf0) { len = 4; cp = c & 0x07; min = 0x10000; }
        else return 0;
        if (n - i < len) return 0;
        for (uint32_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        i += len;
    }
    return 1;
}

static wasm_err rd_name(rd *r, const uint8_t **s, uint32_t *n)
{
    TRY(rd_u32(r, n));
    if ((uint32_t)(r->end - r->p) < *n) return WASM_E_EOF;
    *s = r->p;
    r->p += *n;
    return utf8_ok(*s, *n) ? WASM_OK : WASM_E_UTF8;
}

/* ---------------------------------------------------------------- loader state */

typedef struct vctrl {
    uint32_t height;   /* operand height at entry */
    uint32_t pending;  /* forward branch entries to patch at `end` (linked through .pc) */
    uint32_t if_br;    /* entry of the if's false edge, WASM_NONE once resolved */
    uint32_t loop_pc, loop_stp;
    uint8_t kind;      /* K_* */
    uint8_t rtype;     /* result type, 0 for none */
    uint8_t unreach;
} vctrl;

enum { K_BLOCK, K_LOOP, K_IF, K_ELSE, K_FUNC };

typedef struct ld {
    wasm_module *m;
    wasm_arena *a;
    rd r;
    uint32_t nfuncdefs, ntables, nmems;
    uint32_t data_count; uint8_t has_data_count;
    /* validator scratch */
    uint8_t *vs; uint32_t vs_cap, vh;      /* operand types (absolute height) */
    vctrl *cs; uint32_t cs_cap, ch;        /* control frames */
    uint32_t base;                         /* vh at function entry */
    uint32_t maxh;
    /* current function */
    const wasm_functype *ft;
    const uint8_t *locals; uint32_t nlocal_groups, nlocals;
} ld;

static void *alloc_n(ld *L, uint32_t count, size_t size)
{
    if (count && size > (size_t)-1 / count) return NULL;
    return wasm_arena_alloc(L->a, (size_t)count * size + (count == 0));
}

static wasm_err rd_valtype(rd *r, uint8_t *t)
{
    TRY(rd_byte(r, t));
    if (*t >= WASM_F64 && *t <= WASM_I32) return WASM_OK;
    if (*t == 0x70 || *t == 0x6f) return WASM_E_UNSUP_REF_TYPES;
    if (*t == 0x7b) return WASM_E_UNSUP_SIMD;
    return WASM_E_VALTYPE;
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
    TRY(rd_byte(&L->r, &t));
    if (t == 0x6f) return WASM_E_UNSUP_REF_TYPES;
    if (t != 0x70) return WASM_E_VALTYPE;
    TRY(rd_limits(&L->r, l, 0));
    if (++L->ntables > 1) return WASM_E_UNSUP_REF_TYPES; /* multiple tables */
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
 * read (`nglobals_visible`).
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
        case 0xd0: case 0xd2: return WASM_E_UNSUP_REF_TYPES;
        default: return WASM_E_CONST_EXPR;
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
        if (ft->nresults > 1) return WASM_E_UNSUP_MULTI_VALUE;
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
    /* globals: imported ones are indexed first; count them in a first pass */
    const uint8_t *save = r->p;
    for (int pass = 0; pass < 2; pass++) {
        uint32_t gi = 0;
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
                TRY(rd_tabletype(L, &l));
                if (pass == 0) { L->ntables--; break; }
                l.imported = 1; m->table = l;
                im->min = l.min; im->max = l.max; im->has_max = l.has_max;
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
            if (!(m->globals = alloc_n(L, gi, sizeof *m->globals))) return WASM_E_NOMEM;
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
    uint32_t *ft = alloc_n(L, m->nfunc_imports + n, sizeof *ft);
    if (!ft) return WASM_E_NOMEM;
    if (m->nfunc_imports) memcpy(ft, m->func_type, m->nfunc_imports * sizeof *ft);
    m->func_type = ft;
    m->nfuncs = m->nfunc_imports + n;
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
    uint32_t n;
    TRY(rd_u32(&L->r, &n));
    for (uint32_t i = 0; i < n; i++) {
        TRY(rd_tabletype(L, &L->m->table));
        L->m->table.imported = 0;
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
    wasm_globaldef *g = alloc_n(L, m->nglobal_imports + n, sizeof *g);
    if (!g) return WASM_E_NOMEM;
    if (m->nglobal_imports) memcpy(g, m->globals, m->nglobal_imports * sizeof *g);
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
        case 0: if (e->index >= m->nfuncs) return WASM_E_UNKNOWN_FUNC; break;
        case 1: if (e->index >= L->ntables) return WASM_E_UNKNOWN_TABLE; break;
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

static wasm_err sec_elem(ld *L)
{
    wasm_module *m = L->m;
    rd *r = &L->r;
    TRY(rd_u32(r, &m->nelems));
    if (m->nelems > (uint32_t)(r->end - r->p)) return WASM_E_EOF;
    if (!(m->elems = alloc_n(L, m->nelems, sizeof *m->elems))) return WASM_E_NOMEM;
    for (uint32_t i = 0; i < m->nelems; i++) {
        wasm_elemseg *s = &m->elems[i];
        uint32_t flags;
        TRY(rd_u32(r, &flags));
        if (flags != 0) return flags < 8 ? WASM_E_UNSUP_BULK : WASM_E_LEB_RANGE;
        if (!L->ntables) return WASM_E_UNKNOWN_TABLE;
        TRY(rd_const(L, WASM_I32, &s->offset));
        TRY(rd_u32(r, &s->count));
        s->funcs = r->p;
        for (uint32_t k = 0; k < s->count; k++) {
            uint32_t f;
            TRY(rd_u32(r, &f));
            if (f >= m->nfuncs) return WASM_E_UNKNOWN_FUNC;
        }
    }
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
        if (flags == 1) return WASM_E_UNSUP_BULK; /* passive segment */
        if (flags > 2) return WASM_E_LEB_RANGE;
        if (flags == 2) TRY(rd_u32(r, &mem));
        if (mem >= L->nmems) return WASM_E_UNKNOWN_MEMORY;
        TRY(rd_const(L, WASM_I32, &s->offset));
        TRY(rd_u32(r, &s->len));
        if ((uint32_t)(r->end - r->p) < s->len) return WASM_E_EOF;
        s->data = r->p;
        r->p += s->len;
    }
    return WASM_OK;
}

/* ---------------------------------------------------------------- code validation */

#define T_ANY 0 /* unknown type from unreachable code */

static wasm_err push(ld *L, uint8_t t)
{
    if (L->vh >= L->vs_cap) return WASM_E_IMPL_LIMIT;
    L->vs[L->vh++] = t;
    if (L->vh - L->base > L->maxh) L->maxh = L->vh - L->base;
    return WASM_OK;
}

static wasm_err pop(ld *L, uint8_t want, uint8_t *got)
{
    vctrl *c = &L->cs[L->ch - 1];
    uint8_t t;
    if (L->vh == c->height) {
        if (!c->unreach) return WASM_E_TYPE_MISMATCH;
        t = T_ANY;
    } else {
        t = L->vs[--L->vh];
    }
    if (want != T_ANY && t != T_ANY && t != want) return WASM_E_TYPE_MISMATCH;
    if (got) *got = t;
    return WASM_OK;
}

static wasm_err push_ctrl(ld *L, uint8_t kind, uint8_t rtype)
{
    if (L->ch >= L->cs_cap) return WASM_E_IMPL_LIMIT;
    vctrl *c = &L->cs[L->ch++];
    c->height = L->vh;
    c->pending = WASM_NONE;
    c->if_br = WASM_NONE;
    c->kind = kind;
    c->rtype = rtype;
    c->unreach = 0;
    c->loop_pc = (uint32_t)(L->r.p - L->m->bin);
    c->loop_stp = L->m->nbranches;
    return WASM_OK;
}

static void set_unreachable(ld *L)
{
    vctrl *c = &L->cs[L->ch - 1];
    L->vh = c->height;
    c->unreach = 1;
}

static wasm_err new_branch(ld *L, uint32_t *idx)
{
    wasm_arena *a = L->a;
    if (a->size - a->used < sizeof(wasm_branch)) return WASM_E_NOMEM;
    a->used += sizeof(wasm_branch);
    *idx = L->m->nbranches++;
    return WASM_OK;
}

/* Emit the side-table entry of a branch to label depth `d`. */
static wasm_err emit_br(ld *L, uint32_t d)
{
    uint32_t idx, h;
    vctrl *c = &L->cs[L->ch - 1 - d];
    TRY(new_branch(L, &idx));
    wasm_branch *b = &L->m->branches[idx];
    h = c->height - L->base;
    if (h > 0xffff) return WASM_E_IMPL_LIMIT;
    b->height = (uint16_t)h;
    if (c->kind == K_LOOP) {
        b->keep = 0;
        b->pc = c->loop_pc;
        b->stp = c->loop_stp;
    } else {
        b->keep = c->rtype ? 1 : 0;
        b->pc = c->pending;
        c->pending = idx;
    }
    return WASM_OK;
}

static uint8_t label_type(vctrl *c)
{
    return c->kind == K_LOOP ? 0 : c->rtype;
}

static wasm_err rd_blocktype(ld *L, uint8_t *t)
{
    TRY(rd_byte(&L->r, t));
    if (*t == 0x40) { *t = 0; return WASM_OK; }
    if (*t >= WASM_F64 && *t <= WASM_I32) return WASM_OK;
    if (*t == 0x70 || *t == 0x6f) return WASM_E_UNSUP_REF_TYPES;
    if (*t == 0x7b) return WASM_E_UNSUP_SIMD;
    if (!(*t & 0x40)) return WASM_E_UNSUP_MULTI_VALUE; /* type index */
    return WASM_E_VALTYPE;
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

static wasm_err apply_sig(ld *L, uint8_t sig)
{
    uint8_t a = sig & 7, b = (sig >> 3) & 7, res = sig >> 6;
    if (b) TRY(pop(L, tcode[b], NULL));
    TRY(pop(L, tcode[a], NULL));
    return push(L, tcode[res]);
}

/* Memory access: value type and log2 of natural alignment, loads 0x28..0x35, stores 0x36..0x3e */
static const uint8_t memop[23][2] = {
    {1, 2}, {2, 3}, {3, 2}, {4, 3}, {1, 0}, {1, 0}, {1, 1}, {1, 1}, {2, 0}, {2, 0}, {2, 1}, {2, 1},
    {2, 2}, {2, 2}, {1, 2}, {2, 3}, {3, 2}, {4, 3}, {1, 0}, {1, 1}, {2, 0}, {2, 1}, {2, 2}};

static wasm_err validate_body(ld *L, wasm_funcdef *fd)
{
    wasm_module *m = L->m;
    rd *r = &L->r;
    uint8_t op, t, t2;
    uint32_t x;
    uint64_t v;

    L->vh = L->base = 0;
    L->ch = 0;
    L->maxh = 0;
    TRY(push_ctrl(L, K_FUNC, L->ft->nresults ? L->ft->results[0] : 0));
    fd->code = r->p;
    fd->st = m->nbranches;

    while (L->ch) {
        TRY(rd_byte(r, &op));
        switch (op) {
        case 0x00: set_unreachable(L); break; /* unreachable */
        case 0x01: break;                     /* nop */
        case 0x02: case 0x03:                 /* block, loop */
            TRY(rd_blocktype(L, &t));
            TRY(push_ctrl(L, op == 0x02 ? K_BLOCK : K_LOOP, t));
            break;
        case 0x04: {                          /* if */
            TRY(rd_blocktype(L, &t));
            TRY(pop(L, WASM_I32, NULL));
            TRY(push_ctrl(L, K_IF, t));
            TRY(new_branch(L, &x));
            vctrl *c = &L->cs[L->ch - 1];
            c->if_br = x;
            m->branches[x].height = (uint16_t)(c->height - L->base);
            m->branches[x].keep = 0;
            break;
        }
        case 0x05: {                          /* else */
            vctrl *c = &L->cs[L->ch - 1];
            if (c->kind != K_IF) return WASM_E_END_EXPECTED;
            if (c->rtype) TRY(pop(L, c->rtype, NULL));
            if (L->vh != c->height) return WASM_E_TYPE_MISMATCH;
            TRY(emit_br(L, 0));
            wasm_branch *b = &m->branches[c->if_br];
            b->pc = (uint32_t)(r->p - m->bin);
            b->stp = m->nbranches;
            c->if_br = WASM_NONE;
            c->kind = K_ELSE;
            c->unreach = 0;
            break;
        }
        case 0x0b: {                          /* end */
            vctrl *c = &L->cs[L->ch - 1];
            if (c->rtype) TRY(pop(L, c->rtype, NULL));
            if (L->vh != c->height) return WASM_E_TYPE_MISMATCH;
            if (c->kind == K_IF && c->rtype) return WASM_E_TYPE_MISMATCH;
            /* forward branches land after the `end` (on it for the function body) */
            uint32_t target = (uint32_t)(r->p - m->bin) - (c->kind == K_FUNC);
            if (c->if_br != WASM_NONE) c->pending = (m->branches[c->if_br].pc = c->pending, c->if_br);
            for (uint32_t i = c->pending; i != WASM_NONE;) {
                wasm_branch *b = &m->branches[i];
                i = b->pc;
                b->pc = target;
                b->stp = m->nbranches;
            }
            if (c->kind == K_FUNC) fd->end = r->p - 1;
            t = c->rtype;
            L->ch--;
            if (L->ch && t) TRY(push(L, t));
            break;
        }
        case 0x0c: case 0x0d: {               /* br, br_if */
            TRY(rd_u32(r, &x));
            if (x >= L->ch) return WASM_E_UNKNOWN_LABEL;
            if (op == 0x0d) TRY(pop(L, WASM_I32, NULL));
            t = label_type(&L->cs[L->ch - 1 - x]);
            if (t) TRY(pop(L, t, NULL));
            TRY(emit_br(L, x));
            if (op == 0x0c) set_unreachable(L);
            else if (t) TRY(push(L, t));
            break;
        }
        case 0x0e: {                          /* br_table */
            uint32_t n, d;
            TRY(rd_u32(r, &n));
            if (n > (uint32_t)(r->end - r->p)) return WASM_E_EOF;
            TRY(pop(L, WASM_I32, NULL));
            const uint8_t *labels = r->p;
            for (uint32_t i = 0; i <= n; i++) TRY(rd_u32(r, &d)); /* default last */
            if (d >= L->ch) return WASM_E_UNKNOWN_LABEL;
            uint8_t dt = label_type(&L->cs[L->ch - 1 - d]);
            const uint8_t *p = labels;
            for (uint32_t i = 0; i <= n; i++) {
                d = wasm_rd_u32(&p);
                if (d >= L->ch) return WASM_E_UNKNOWN_LABEL;
                t = label_type(&L->cs[L->ch - 1 - d]);
                if (!t != !dt) return WASM_E_TYPE_MISMATCH;
                if (t) {
                    TRY(pop(L, t, &t2));
                    TRY(push(L, t2));
                }
                TRY(emit_br(L, d));
            }
            if (dt) TRY(pop(L, dt, NULL));
            set_unreachable(L);
            break;
        }
        case 0x0f:                            /* return */
            if (L->ft->nresults) TRY(pop(L, L->ft->results[0], NULL));
            set_unreachable(L);
            break;
        case 0x10: {                          /* call */
            TRY(rd_u32(r, &x));
            if (x >= m->nfuncs) return WASM_E_UNKNOWN_FUNC;
            const wasm_functype *ft = &m->types[m->func_type[x]];
            for (uint32_t i = ft->nparams; i-- > 0;) TRY(pop(L, ft->params[i], NULL));
            if (ft->nresults) TRY(push(L, ft->results[0]));
            break;
        }
        case 0x11: {                          /* call_indirect */
            uint32_t tab;
            TRY(rd_u32(r, &x));
            TRY(rd_u32(r, &tab));
            if (tab >= L->ntables) return WASM_E_UNKNOWN_TABLE;
            if (x >= m->ntypes) return WASM_E_UNKNOWN_TYPE;
            const wasm_functype *ft = &m->types[x];
            TRY(pop(L, WASM_I32, NULL));
            for (uint32_t i = ft->nparams; i-- > 0;) TRY(pop(L, ft->params[i], NULL));
            if (ft->nresults) TRY(push(L, ft->results[0]));
            break;
        }
        case 0x1a:                            /* drop */
            TRY(pop(L, T_ANY, NULL));
            break;
        case 0x1b: case 0x1c: {               /* select, select t */
            uint8_t want = T_ANY;
            if (op == 0x1c) {
                TRY(rd_u32(r, &x));
                if (x != 1) return WASM_E_TYPE_MISMATCH; /* invalid result arity */
                TRY(rd_valtype(r, &want));
            }
            TRY(pop(L, WASM_I32, NULL));
            TRY(pop(L, want, &t));
            TRY(pop(L, want != T_ANY ? want : t, &t2));
            if (want == T_ANY) want = t != T_ANY ? t : t2;
            TRY(push(L, want));
            break;
        }
        case 0x20: case 0x21: case 0x22:      /* local.get/set/tee */
            TRY(rd_u32(r, &x));
            if ((uint64_t)x >= (uint64_t)L->ft->nparams + L->nlocals) return WASM_E_UNKNOWN_LOCAL;
            t = local_type(L, x);
            if (op == 0x20) TRY(push(L, t));
            else {
                TRY(pop(L, t, NULL));
                if (op == 0x22) TRY(push(L, t));
            }
            break;
        case 0x23: case 0x24:                 /* global.get/set */
            TRY(rd_u32(r, &x));
            if (x >= m->nglobals) return WASM_E_UNKNOWN_GLOBAL;
            t = m->globals[x].type;
            if (op == 0x23) TRY(push(L, t));
            else {
                if (!m->globals[x].mut) return WASM_E_IMMUTABLE;
                TRY(pop(L, t, NULL));
            }
            break;
        case 0x3f: case 0x40: {               /* memory.size/grow */
            uint8_t z;
            TRY(rd_byte(r, &z));
            if (z) return WASM_E_ZERO_BYTE;
            if (!L->nmems) return WASM_E_UNKNOWN_MEMORY;
            if (op == 0x40) TRY(pop(L, WASM_I32, NULL));
            TRY(push(L, WASM_I32));
            break;
        }
        case 0x41: TRY(rd_leb(r, 32, 1, &v)); TRY(push(L, WASM_I32)); break;
        case 0x42: TRY(rd_leb(r, 64, 1, &v)); TRY(push(L, WASM_I64)); break;
        case 0x43: if (r->end - r->p < 4) return WASM_E_EOF; r->p += 4; TRY(push(L, WASM_F32)); break;
        case 0x44: if (r->end - r->p < 8) return WASM_E_EOF; r->p += 8; TRY(push(L, WASM_F64)); break;
        case 0xfc:
            TRY(rd_u32(r, &x));
            if (x < 8) { TRY(apply_sig(L, satsig[x])); break; }
            if (x <= 11) return WASM_E_UNSUP_BULK;
            if (x <= 17) return WASM_E_UNSUP_REF_TYPES; /* table.init/copy/grow/size/fill, elem.drop */
            return WASM_E_OPCODE;
        case 0x25: case 0x26: case 0xd0: case 0xd1: case 0xd2:
            return WASM_E_UNSUP_REF_TYPES;
        case 0xfd:
            return WASM_E_UNSUP_SIMD;
        default:
            if (op >= 0x28 && op <= 0x3e) {
                uint32_t align, off;
                const uint8_t *mo = memop[op - 0x28];
                TRY(rd_u32(r, &align));
                TRY(rd_u32(r, &off));
                if (!L->nmems) return WASM_E_UNKNOWN_MEMORY;
                if (align > mo[1]) return WASM_E_ALIGNMENT;
                if (op <= 0x35) {
                    TRY(pop(L, WASM_I32, NULL));
                    TRY(push(L, tcode[mo[0]]));
                } else {
                    TRY(pop(L, tcode[mo[0]], NULL));
                    TRY(pop(L, WASM_I32, NULL));
                }
                break;
            }
            if (op >= 0x45 && op <= 0xc4) {
                for (unsigned i = 0;; i++)
                    if (op <= numsig[i].last) { TRY(apply_sig(L, numsig[i].sig)); break; }
                break;
            }
            return WASM_E_OPCODE;
        }
    }
    fd->max_height = L->maxh;
    uint64_t slots = (uint64_t)L->ft->nparams + fd->nlocals + fd->max_height;
    if (slots > 0x7fffffffu) return WASM_E_IMPL_LIMIT;
    fd->frame_slots = (uint32_t)slots;
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

    /* Validator scratch at the top of the free arena; side table grows from the bottom. */
    wasm_arena *a = L->a;
    size_t used = (a->used + 7u) & ~(size_t)7u;
    if (used > a->size) return WASM_E_NOMEM;
    size_t free_ = a->size - used, s = free_ / 2;
    if (s > 32768) s = 32768;
    size_t saved_size = a->size;
    L->cs_cap = (uint32_t)(s / 2 / sizeof(vctrl));
    L->vs_cap = (uint32_t)(s - L->cs_cap * sizeof(vctrl));
    L->cs = (vctrl *)(a->base + a->size - s);
    L->vs = (uint8_t *)(L->cs + L->cs_cap);
    a->size -= s;
    a->used = used;
    m->branches = (wasm_branch *)(a->base + used);

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
    a->size = saved_size;
    return err;
}

/* ---------------------------------------------------------------- module */

static const uint8_t sec_rank[13] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 10};

wasm_err wasm_module_load(const uint8_t *bin, uint32_t len, wasm_arena *a, wasm_module **out)
{
    ld L;
    wasm_err err = WASM_OK;
    uint8_t last = 0;
    memset(&L, 0, sizeof L);
    *out = NULL;
    if (!(L.m = wasm_arena_alloc(a, sizeof *L.m))) return WASM_E_NOMEM;
    L.a = a;
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
        case 11: err = sec_data(&L); break;
        case 12: err = rd_u32(&L.r, &L.data_count); L.has_data_count = 1; break;
        }
        if (err) return err;
        if (L.r.p != send) return WASM_E_SECTION_SIZE;
        L.r.end = mend;
    }
    if (L.nfuncdefs && !L.m->branches) return WASM_E_FUNC_COUNT;
    if (L.has_data_count && L.data_count && !L.m->datas) return WASM_E_DATA_COUNT;
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
