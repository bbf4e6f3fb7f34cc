/*
 * Instantiation and the interpreter. The interpreter runs the validated
 * bytecode in place; structured control flow uses the side table built by
 * the validator (wasm_branch), so no instruction ever scans for `end`.
 */
#include <string.h>
#include "wasm_int.h"
#include "wasm_num.h"

typedef struct frame {
    const uint8_t *pc;
    const wasm_branch *stp;
    wasm_slot *fp, *ob;
    wasm_func *fn;
} frame;

#define TRY(x) do { wasm_err e_ = (x); if (e_) return e_; } while (0)

/* ---------------------------------------------------------------- instantiation */

static uint64_t eval_const(wasm_instance *inst, const uint8_t *p)
{
    uint8_t op = *p++;
    uint64_t v = 0;
    switch (op) {
    case 0x41: v = wasm_rd_s32(&p); break;
    case 0x42: v = wasm_rd_s64(&p); break;
    case 0x43: { uint32_t u; memcpy(&u, p, 4); v = u; break; }
    case 0x44: memcpy(&v, p, 8); break;
    case 0x23: v = inst->globals[wasm_rd_u32(&p)]->val; break;
    }
    return v;
}

static int limits_match(uint32_t have_min, uint32_t have_max, int have_has_max, const wasm_import *im)
{
    if (have_min < im->min) return 0;
    if (im->has_max && (!have_has_max || have_max > im->max)) return 0;
    return 1;
}

static wasm_err link_import(wasm_instance *inst, const wasm_config *cfg, const wasm_import *im, uint32_t *nf, uint32_t *ng)
{
    wasm_extern ex;
    memset(&ex, 0, sizeof ex);
    if (!cfg->resolve || cfg->resolve(cfg->resolve_ctx, im, &ex) != WASM_OK) return WASM_E_UNKNOWN_IMPORT;
    if (ex.kind != im->kind) return WASM_E_IMPORT_TYPE;
    switch (im->kind) {
    case WASM_EXTERN_FUNC:
        if (!ex.func || !wasm_functype_eq(ex.func->type, im->func_type)) return WASM_E_IMPORT_TYPE;
        inst->funcs[(*nf)++] = ex.func;
        break;
    case WASM_EXTERN_GLOBAL:
        if (!ex.global || ex.global->type != im->global_type || ex.global->mut != im->global_mut)
            return WASM_E_IMPORT_TYPE;
        inst->globals[(*ng)++] = ex.global;
        break;
    case WASM_EXTERN_MEMORY:
        if (!ex.memory || !limits_match(ex.memory->pages, ex.memory->max_pages, ex.memory->has_max, im))
            return WASM_E_IMPORT_TYPE;
        inst->mem = ex.memory;
        break;
    case WASM_EXTERN_TABLE:
        if (!ex.table || !limits_match(ex.table->size, ex.table->max, ex.table->has_max, im))
            return WASM_E_IMPORT_TYPE;
        inst->table = ex.table;
        break;
    }
    return WASM_OK;
}

static wasm_err run(wasm_instance *owner, wasm_func *f, wasm_slot *slots);

wasm_err wasm_instantiate(const wasm_module *m, const wasm_config *cfg, wasm_arena *a, uint64_t fuel,
                          wasm_instance **out)
{
    wasm_instance *inst;
    uint32_t nf = 0, ng = 0, i;
    uint32_t stack_slots = cfg->stack_slots ? cfg->stack_slots : 512;
    uint32_t depth = cfg->call_depth ? cfg->call_depth : 64;

    *out = NULL;
    if (!(inst = wasm_arena_alloc(a, sizeof *inst))) return WASM_E_NOMEM;
    inst->mod = m;
    inst->fuel = fuel;
    inst->depth_max = depth;
    if (!(inst->stack = wasm_arena_alloc(a, (size_t)stack_slots * sizeof(wasm_slot)))) return WASM_E_NOMEM;
    inst->stack_end = inst->stack + stack_slots;
    if (!(inst->frames = wasm_arena_alloc(a, (size_t)depth * sizeof(frame)))) return WASM_E_NOMEM;
    if (!(inst->funcs = wasm_arena_alloc(a, (size_t)m->nfuncs * sizeof(wasm_func *) + 1))) return WASM_E_NOMEM;
    if (!(inst->own = wasm_arena_alloc(a, (size_t)(m->nfuncs - m->nfunc_imports) * sizeof(wasm_func) + 1)))
        return WASM_E_NOMEM;
    if (!(inst->globals = wasm_arena_alloc(a, (size_t)m->nglobals * sizeof(wasm_global *) + 1))) return WASM_E_NOMEM;
    if (!(inst->own_globals = wasm_arena_alloc(a, (size_t)(m->nglobals - m->nglobal_imports) * sizeof(wasm_global) + 1)))
        return WASM_E_NOMEM;

    for (i = 0; i < m->nimports; i++) TRY(link_import(inst, cfg, &m->imports[i], &nf, &ng));

    for (i = m->nfunc_imports; i < m->nfuncs; i++) {
        wasm_func *f = &inst->own[i - m->nfunc_imports];
        f->type = &m->types[m->func_type[i]];
        f->inst = inst;
        f->index = i;
        f->def = &m->funcs[i - m->nfunc_imports];
        inst->funcs[i] = f;
    }
    for (i = m->nglobal_imports; i < m->nglobals; i++) {
        wasm_global *g = &inst->own_globals[i - m->nglobal_imports];
        g->type = m->globals[i].type;
        g->mut = m->globals[i].mut;
        g->val = eval_const(inst, m->globals[i].init);
        inst->globals[i] = g;
    }
    if (m->table.present && !m->table.imported) {
        wasm_table *t = &inst->own_table;
        if (!(t->elems = wasm_arena_alloc(a, (size_t)m->table.min * sizeof(wasm_func *) + 1))) return WASM_E_NOMEM;
        t->size = m->table.min;
        t->max = m->table.max;
        t->has_max = m->table.has_max;
        inst->table = t;
    }
    if (m->memory.present && !m->memory.imported) {
        wasm_memory *mem = &inst->own_mem;
        uint64_t want = (uint64_t)m->memory.min * WASM_PAGE;
        mem->cap = cfg->mem_cap;
        mem->data = cfg->mem_buf;
        if (!mem->data) {
            if (!mem->cap) mem->cap = want > 0xffffffffu ? 0xffffffffu : (uint32_t)want;
            if (!(mem->data = wasm_arena_alloc(a, mem->cap))) return WASM_E_NOMEM;
        }
        mem->pages = m->memory.min;
        mem->max_pages = m->memory.max;
        mem->has_max = m->memory.has_max;
        mem->bytes = want < mem->cap ? (uint32_t)want : mem->cap;
        memset(mem->data, 0, mem->bytes);
        inst->mem = mem;
    }
    *out = inst;

    /* segments, in order; a failing segment traps and leaves earlier writes in place */
    for (i = 0; i < m->nelems; i++) {
        const wasm_elemseg *s = &m->elems[i];
        uint32_t off = (uint32_t)eval_const(inst, s->offset);
        const uint8_t *p = s->funcs;
        if ((uint64_t)off + s->count > inst->table->size) return WASM_TRAP_TABLE_OOB;
        for (uint32_t k = 0; k < s->count; k++) inst->table->elems[off + k] = inst->funcs[wasm_rd_u32(&p)];
    }
    for (i = 0; i < m->ndatas; i++) {
        const wasm_dataseg *s = &m->datas[i];
        uint32_t off = (uint32_t)eval_const(inst, s->offset);
        if ((uint64_t)off + s->len > inst->mem->bytes) return WASM_TRAP_MEM_OOB;
        memcpy(inst->mem->data + off, s->data, s->len);
    }
    if (m->start != WASM_NONE) {
        wasm_slot none[1];
        return run(inst, inst->funcs[m->start], none);
    }
    return WASM_OK;
}

uint32_t wasm_module_data_end(const wasm_module *m)
{
    uint32_t end = 0;
    for (uint32_t i = 0; i < m->ndatas; i++) {
        const uint8_t *p = m->datas[i].offset;
        if (*p++ != 0x41) continue; /* global-relative: unknown until instantiation */
        uint64_t e = (uint64_t)wasm_rd_s32(&p) + m->datas[i].len;
        if (e > end) end = e > 0xffffffffu ? 0xffffffffu : (uint32_t)e;
    }
    return end;
}

/* ---------------------------------------------------------------- accessors */

void wasm_set_fuel(wasm_instance *inst, uint64_t fuel) { inst->fuel = fuel; }
uint64_t wasm_get_fuel(const wasm_instance *inst) { return inst->fuel; }
const wasm_module *wasm_instance_module(const wasm_instance *inst) { return inst->mod; }
wasm_memory *wasm_instance_memory(wasm_instance *inst) { return inst->mem; }
wasm_table *wasm_instance_table(wasm_instance *inst) { return inst->table; }
void *wasm_instance_user(wasm_instance *inst) { return inst->user; }
void wasm_instance_set_user(wasm_instance *inst, void *user) { inst->user = user; }
const wasm_functype *wasm_func_type(const wasm_func *f) { return f->type; }

wasm_global *wasm_instance_global(wasm_instance *inst, uint32_t index)
{
    return index < inst->mod->nglobals ? inst->globals[index] : NULL;
}

wasm_func *wasm_instance_func(wasm_instance *inst, uint32_t index)
{
    return index < inst->mod->nfuncs ? inst->funcs[index] : NULL;
}

wasm_err wasm_instance_export(wasm_instance *inst, const char *name, uint32_t name_len, wasm_extern *out)
{
    const wasm_module *m = inst->mod;
    memset(out, 0, sizeof *out);
    for (uint32_t i = 0; i < m->nexports; i++) {
        const wasm_export *e = &m->exports[i];
        if (e->name_len != name_len || memcmp(e->name, name, name_len)) continue;
        out->kind = (wasm_extern_kind)e->kind;
        switch (e->kind) {
        case WASM_EXTERN_FUNC: out->func = inst->funcs[e->index]; break;
        case WASM_EXTERN_TABLE: out->table = inst->table; break;
        case WASM_EXTERN_MEMORY: out->memory = inst->mem; break;
        case WASM_EXTERN_GLOBAL: out->global = inst->globals[e->index]; break;
        }
        return WASM_OK;
    }
    return WASM_E_UNKNOWN_IMPORT;
}

uint8_t *wasm_mem_ptr(wasm_instance *inst, uint32_t off, uint32_t len)
{
    wasm_memory *m = inst->mem;
    if (!m || (uint64_t)off + len > m->bytes) return NULL;
    return m->data + off;
}

wasm_err wasm_call(wasm_instance *inst, uint32_t func_index, wasm_slot *slots)
{
    if (func_index >= inst->mod->nfuncs) return WASM_E_ARG;
    return run(inst, inst->funcs[func_index], slots);
}

wasm_err wasm_call_func(wasm_instance *inst, wasm_func *f, wasm_slot *slots)
{
    return run(inst, f, slots);
}

/* ---------------------------------------------------------------- interpreter */

static uint32_t popcnt64(uint64_t x)
{
    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
    return (uint32_t)((x * 0x0101010101010101ull) >> 56);
}

static uint32_t clz64(uint64_t x)
{
    uint32_t n = 0;
    if (!x) return 64;
    if (!(x >> 32)) { n += 32; x <<= 32; }
    if (!(x >> 48)) { n += 16; x <<= 16; }
    if (!(x >> 56)) { n += 8; x <<= 8; }
    if (!(x >> 60)) { n += 4; x <<= 4; }
    if (!(x >> 62)) { n += 2; x <<= 2; }
    if (!(x >> 63)) n += 1;
    return n;
}

static uint32_t ctz64(uint64_t x)
{
    if (!x) return 64;
    return 63 - clz64(x & (~x + 1));
}

static uint32_t rotl32(uint32_t a, uint32_t k) { k &= 31; return (a << k) | (a >> ((32 - k) & 31)); }
static uint64_t rotl64(uint64_t a, uint64_t k) { k &= 63; return (a << k) | (a >> ((64 - k) & 63)); }

/* Clear the (unmaintained) high half of i32/f32 values crossing the API. */
static void mask32(wasm_slot *v, const uint8_t *types, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (types[i] == WASM_I32 || types[i] == WASM_F32) v[i] &= 0xffffffffu;
}

const uint8_t *wasm_leb_u32(const uint8_t *p, uint32_t *v) { *v = wasm_rd_u32(&p); return p; }
const uint8_t *wasm_leb_s32(const uint8_t *p, uint32_t *v) { *v = wasm_rd_s32(&p); return p; }
const uint8_t *wasm_leb_s64(const uint8_t *p, uint64_t *v) { *v = wasm_rd_s64(&p); return p; }
const uint8_t *wasm_leb_skip(const uint8_t *p) { while (*p++ & 0x80) {} return p; }

/* Immediates: one-byte fast path inline, longer encodings out of line. */
#define IMM_U32(x)                                                              \
    do {                                                                        \
        if (*pc < 0x80) (x) = *pc++;                                            \
        else { uint32_t t_; pc = wasm_leb_u32(pc, &t_); (x) = t_; } /* x stays in a register */ \
    } while (0)
#define IMM_SKIP() do { if (*pc < 0x80) pc++; else pc = wasm_leb_skip(pc); } while (0)

/* Fetch the memarg and bounds-check an access of N bytes; p = host address. */
#define MEMARG(N)                                                         \
    do {                                                                  \
        uint32_t o_;                                                      \
        IMM_SKIP(); /* align */                                           \
        IMM_U32(o_);                                                      \
        ea = o_ + (uint32_t)sp[-1];                                       \
        if (ea < o_ || R.msz < (N) || ea > R.msz - (N)) { err = WASM_TRAP_MEM_OOB; goto trap; } \
        p = R.mb + ea;                                                      \
    } while (0)

#define MEMARG_ST(N)                                                      \
    do {                                                                  \
        uint32_t o_;                                                      \
        IMM_SKIP();                                                       \
        IMM_U32(o_);                                                      \
        ea = o_ + (uint32_t)sp[-2];                                       \
        if (ea < o_ || R.msz < (N) || ea > R.msz - (N)) { err = WASM_TRAP_MEM_OOB; goto trap; } \
        p = R.mb + ea;                                                      \
    } while (0)

#define LOAD(T, N, CONV) do { T v_; MEMARG(N); memcpy(&v_, p, N); sp[-1] = (CONV); } while (0)
#define STORE(T, N) do { T v_ = (T)sp[-1]; MEMARG_ST(N); memcpy(p, &v_, N); sp -= 2; } while (0)

/*
 * i32/f32 values live in the low half of a slot; the high half is not
 * maintained inside the interpreter (it is masked at the API boundary), so
 * a 32-bit result is one 32-bit store.
 */
#define PUT32(slot, v) do { uint32_t v_ = (uint32_t)(v); memcpy((slot), &v_, 4); } while (0)
#define A32 ((uint32_t)sp[-2])
#define B32 ((uint32_t)sp[-1])
#define A64 (sp[-2])
#define B64 (sp[-1])
#define BIN32(e) do { uint32_t a = A32, b = B32; (void)a; (void)b; sp--; PUT32(sp - 1, e); } while (0)
#define BIN64(e) do { uint64_t a = A64, b = B64; (void)a; (void)b; sp--; sp[-1] = (uint64_t)(e); } while (0)
#define CMP64(e) do { uint64_t a = A64, b = B64; sp--; PUT32(sp - 1, (e) ? 1 : 0); } while (0)
#define UN32(e) do { uint32_t a = (uint32_t)sp[-1]; PUT32(sp - 1, e); } while (0)
#define UN64(e) do { uint64_t a = sp[-1]; sp[-1] = (uint64_t)(e); } while (0)
#define FBIN32(e) do { float a = f32_of(sp[-2]), b = f32_of(sp[-1]); sp--; sp[-1] = slot_f32(e); } while (0)
#define FBIN64(e) do { double a = f64_of(sp[-2]), b = f64_of(sp[-1]); sp--; sp[-1] = slot_f64(e); } while (0)
#define FCMP32(e) do { float a = f32_of(sp[-2]), b = f32_of(sp[-1]); sp--; PUT32(sp - 1, (e) ? 1 : 0); } while (0)
#define FCMP64(e) do { double a = f64_of(sp[-2]), b = f64_of(sp[-1]); sp--; PUT32(sp - 1, (e) ? 1 : 0); } while (0)

#define BRANCH(B)                                                \
    do {                                                         \
        const wasm_branch *b_ = (B);                             \
        wasm_slot *d_ = R.ob + b_->height;                         \
        if (b_->keep) *d_ = sp[-1];                              \
        sp = d_ + b_->keep;                                      \
        pc = R.bin + b_->pc;                                       \
        stp = R.br0 + b_->stp;                                     \
    } while (0)

/* Switch to the function R.fn; instance state is reloaded only when it changes. */
#define LOAD_FN()                                                          \
    do {                                                                   \
        R.fd = (const wasm_funcdef *)R.fn->def;                            \
        if (R.fn->inst != R.inst) {                                        \
            R.inst = R.fn->inst;                                           \
            R.mod = R.inst->mod;                                           \
            R.bin = R.mod->bin;                                            \
            R.br0 = R.mod->branches;                                       \
        }                                                                  \
        R.mb = R.inst->mem ? R.inst->mem->data : NULL;                     \
        R.msz = R.inst->mem ? R.inst->mem->bytes : 0;                      \
    } while (0)

/*
 * Dispatch: with GNU C, threaded code (one indirect jump per handler, which
 * predicts better and skips the switch's range check); otherwise a switch.
 * Threaded code doubles run() in thumb code (~+9.9 KiB), so -Os builds keep
 * the switch unless WASM_THREADED=1 is given. Either way every instruction
 * costs one unit of fuel before it runs.
 */
#ifndef WASM_THREADED
#if defined(__GNUC__) && !defined(__OPTIMIZE_SIZE__)
#define WASM_THREADED 1
#else
#define WASM_THREADED 0
#endif
#endif

#define FUEL_STEP()                                                              \
    do {                                                                         \
        if (!fuel) {                                                             \
            if (!R.reserve) { err = WASM_TRAP_FUEL; goto trap; }                 \
            fuel = R.reserve > 0xffffffffu ? 0xffffffffu : (uint32_t)R.reserve;  \
            R.reserve -= fuel;                                                   \
        }                                                                        \
        fuel--;                                                                  \
        op = *pc++;                                                              \
    } while (0)
#if WASM_THREADED
#define CASE(n) L_##n:
#define NEXT do { FUEL_STEP(); goto *optab[op]; } while (0)
#define DISPATCH_TOP NEXT
#define SWITCH
#define DEFAULT L_bad:
#else
#define CASE(n) case n:
#define NEXT break
#define DISPATCH_TOP FUEL_STEP()
#define SWITCH switch (op)
/* every byte value has a label, so the compiler can drop the range check */
#define DEFAULT UNUSED_OPS default:
#define UNUSED_OPS \
    case 0x06: case 0x07: case 0x08: case 0x09: case 0x0a: case 0x12: case 0x13: case 0x14: \
    case 0x15: case 0x16: case 0x17: case 0x18: case 0x19: case 0x1d: case 0x1e: case 0x1f: \
    case 0x25: case 0x26: case 0x27: case 0xc5: case 0xc6: case 0xc7: case 0xc8: case 0xc9: \
    case 0xca: case 0xcb: case 0xcc: case 0xcd: case 0xce: case 0xcf: case 0xd0: case 0xd1: \
    case 0xd2: case 0xd3: case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: case 0xd9: \
    case 0xda: case 0xdb: case 0xdc: case 0xdd: case 0xde: case 0xdf: case 0xe0: case 0xe1: \
    case 0xe2: case 0xe3: case 0xe4: case 0xe5: case 0xe6: case 0xe7: case 0xe8: case 0xe9: \
    case 0xea: case 0xeb: case 0xec: case 0xed: case 0xee: case 0xef: case 0xf0: case 0xf1: \
    case 0xf2: case 0xf3: case 0xf4: case 0xf5: case 0xf6: case 0xf7: case 0xf8: case 0xf9: \
    case 0xfa: case 0xfb: case 0xfd: case 0xfe: case 0xff:
#endif

static wasm_err run(wasm_instance *owner, wasm_func *entry, wasm_slot *slots)
{
    /*
     * Only pc, sp, fp, stp and fuel are hot: the rest lives in R so that a
     * register-starved core (Cortex-M: 13 registers) keeps those five in
     * registers instead of spilling everything.
     */
    struct {
        frame *frames;
        uint32_t nframes;
        wasm_slot *ob;
        const uint8_t *bin;
        const wasm_branch *br0;
        const wasm_module *mod;
        const wasm_funcdef *fd;
        wasm_instance *inst;
        wasm_func *fn;
        uint8_t *mb;
        uint32_t msz;
        uint64_t reserve; /* fuel beyond the 32-bit counter */
    } R;
    wasm_slot *sp = owner->stack, *fp;
    const uint8_t *pc;
    const wasm_branch *stp;
    wasm_func *callee;
    uint8_t *p;
    uint32_t ea;
    uint32_t fuel = owner->fuel > 0xffffffffu ? 0xffffffffu : (uint32_t)owner->fuel;
    wasm_err err = WASM_OK;
    uint32_t x;
    uint8_t op;
    R.frames = (frame *)owner->frames;
    R.nframes = 0;
    R.fn = entry;
    R.inst = NULL;
    R.reserve = owner->fuel - fuel;
#if defined(__GNUC__)
    __asm__ volatile("" : : "r"(&R) : "memory"); /* keep R in memory, not in registers */
#endif
#if WASM_THREADED
    static const void *const optab[256] = {
        &&L_0x00, &&L_0x01, &&L_0x02, &&L_0x03, &&L_0x04, &&L_0x05, &&L_bad, &&L_bad,
        &&L_bad, &&L_bad, &&L_bad, &&L_0x0b, &&L_0x0c, &&L_0x0d, &&L_0x0e, &&L_0x0f,
        &&L_0x10, &&L_0x11, &&L_bad, &&L_bad, &&L_bad, &&L_bad, &&L_bad, &&L_bad,
        &&L_bad, &&L_bad, &&L_0x1a, &&L_0x1b, &&L_0x1c, &&L_bad, &&L_bad, &&L_bad,
        &&L_0x20, &&L_0x21, &&L_0x22, &&L_0x23, &&L_0x24, &&L_bad, &&L_bad, &&L_bad,
        &&L_0x28, &&L_0x29, &&L_0x2a, &&L_0x2b, &&L_0x2c, &&L_0x2d, &&L_0x2e, &&L_0x2f,
        &&L_0x30, &&L_0x31, &&L_0x32, &&L_0x33, &&L_0x34, &&L_0x35, &&L_0x36, &&L_0x37,
        &&L_0x38, &&L_0x39, &&L_0x3a, &&L_0x3b, &&L_0x3c, &&L_0x3d, &&L_0x3e, &&L_0x3f,
        &&L_0x40, &&L_0x41, &&L_0x42, &&L_0x43, &&L_0x44, &&L_0x45, &&L_0x46, &&L_0x47,
        &&L_0x48, &&L_0x49, &&L_0x4a, &&L_0x4b, &&L_0x4c, &&L_0x4d, &&L_0x4e, &&L_0x4f,
        &&L_0x50, &&L_0x51, &&L_0x52, &&L_0x53, &&L_0x54, &&L_0x55, &&L_0x56, &&L_0x57,
        &&L_0x58, &&L_0x59, &&L_0x5a, &&L_0x5b, &&L_0x5c, &&L_0x5d, &&L_0x5e, &&L_0x5f,
        &&L_0x60, &&L_0x61, &&L_0x62, &&L_0x63, &&L_0x64, &&L_0x65, &&L_0x66, &&L_0x67,
        &&L_0x68, &&L_0x69, &&L_0x6a, &&L_0x6b, &&L_0x6c, &&L_0x6d, &&L_0x6e, &&L_0x6f,
        &&L_0x70, &&L_0x71, &&L_0x72, &&L_0x73, &&L_0x74, &&L_0x75, &&L_0x76, &&L_0x77,
        &&L_0x78, &&L_0x79, &&L_0x7a, &&L_0x7b, &&L_0x7c, &&L_0x7d, &&L_0x7e, &&L_0x7f,
        &&L_0x80, &&L_0x81, &&L_0x82, &&L_0x83, &&L_0x84, &&L_0x85, &&L_0x86, &&L_0x87,
        &&L_0x88, &&L_0x89, &&L_0x8a, &&L_0x8b, &&L_0x8c, &&L_0x8d, &&L_0x8e, &&L_0x8f,
        &&L_0x90, &&L_0x91, &&L_0x92, &&L_0x93, &&L_0x94, &&L_0x95, &&L_0x96, &&L_0x97,
        &&L_0x98, &&L_0x99, &&L_0x9a, &&L_0x9b, &&L_0x9c, &&L_0x9d, &&L_0x9e, &&L_0x9f,
        &&L_0xa0, &&L_0xa1, &&L_0xa2, &&L_0xa3, &&L_0xa4, &&L_0xa5, &&L_0xa6, &&L_0xa7,
        &&L_0xa8, &&L_0xa9, &&L_0xaa, &&L_0xab, &&L_0xac, &&L_0xad, &&L_0xae, &&L_0xaf,
        &&L_0xb0, &&L_0xb1, &&L_0xb2, &&L_0xb3, &&L_0xb4, &&L_0xb5, &&L_0xb6, &&L_0xb7,
        &&L_0xb8, &&L_0xb9, &&L_0xba, &&L_0xbb, &&L_0xbc, &&L_0xbd, &&L_0xbe, &&L_0xbf,
        &&L_0xc0, &&L_0xc1, &&L_0xc2, &&L_0xc3, &&L_0xc4, &&L_bad, &&L_bad, &&L_bad,
        &&L_bad, &&L_bad, &&L_bad, &&L_bad, &&L_bad, &&L_bad, &&L_bad, &&L_bad,
        &&L_bad, &&L_bad, &&L_bad, &&L_bad, &&L_bad, &&L_bad, &&L_bad, &&L_bad,
        &&L_bad, &&L_bad, &&L_bad, &&L_bad, &&L_bad, &&L_bad, &&L_bad, &&L_bad,
        &&L_bad, &&L_bad, &&L_bad, &&L_bad, &&L_bad, &&L_bad, &&L_bad, &&L_bad,
        &&L_bad, &&L_bad, &&L_bad, &&L_bad, &&L_bad, &&L_bad, &&L_bad, &&L_bad,
        &&L_bad, &&L_bad, &&L_bad, &&L_bad, &&L_bad, &&L_bad, &&L_bad, &&L_bad,
        &&L_bad, &&L_bad, &&L_bad, &&L_bad, &&L_0xfc, &&L_bad, &&L_bad, &&L_bad,
    };
#endif

    if (entry->host) return entry->host(owner, entry->host_ctx, slots);
    if ((size_t)(owner->stack_end - sp) < entry->type->nparams) return WASM_TRAP_STACK_OVERFLOW;
    memcpy(sp, slots, entry->type->nparams * sizeof *sp);
    sp += entry->type->nparams;
    callee = entry;
    goto enter;

    for (;;) {
        DISPATCH_TOP;
        SWITCH {
        CASE(0x00) err = WASM_TRAP_UNREACHABLE; goto trap;
        CASE(0x01) NEXT;
        CASE(0x02) CASE(0x03) pc++; NEXT; /* block, loop: nothing to do at run time */
        CASE(0x04)                          /* if */
            pc++;
            if ((uint32_t)*--sp) stp++;
            else BRANCH(stp);
            NEXT;
        CASE(0x05) BRANCH(stp); NEXT;      /* else: end of the then-arm */
        CASE(0x0b)                          /* end */
            if (pc - 1 == R.fd->end) goto do_return;
            NEXT;
        CASE(0x0c) BRANCH(stp); NEXT;
        CASE(0x0d)
            if ((uint32_t)*--sp) BRANCH(stp);
            else { stp++; IMM_SKIP(); }
            NEXT;
        CASE(0x0e) {
            uint32_t n, i = (uint32_t)*--sp;
            IMM_U32(n);
            BRANCH(stp + (i < n ? i : n));
            NEXT;
        }
        CASE(0x0f) goto do_return;
        CASE(0x10)
            IMM_U32(x);
            callee = R.inst->funcs[x];
            goto do_call;
        CASE(0x11) {
            IMM_U32(x);
            const wasm_functype *want = &R.mod->types[x];
            uint32_t i = (uint32_t)*--sp;
            IMM_SKIP(); /* table index */
            if (i >= R.inst->table->size) { err = WASM_TRAP_UNDEF_ELEMENT; goto trap; }
            callee = R.inst->table->elems[i];
            if (!callee) { err = WASM_TRAP_UNINIT_ELEMENT; goto trap; }
            if (callee->type != want && !wasm_functype_eq(callee->type, want)) {
                err = WASM_TRAP_INDIRECT_TYPE;
                goto trap;
            }
            goto do_call;
        }
        CASE(0x1a) sp--; NEXT;
        CASE(0x1b) CASE(0x1c)
            if (op == 0x1c) pc += 2; /* vec(1) + valtype */
            sp -= 2;
            if (!(uint32_t)sp[1]) sp[-1] = sp[0];
            NEXT;
        CASE(0x20) IMM_U32(x); *sp++ = fp[x]; NEXT;
        CASE(0x21) IMM_U32(x); fp[x] = *--sp; NEXT;
        CASE(0x22) IMM_U32(x); fp[x] = sp[-1]; NEXT;
        CASE(0x23) IMM_U32(x); *sp++ = R.inst->globals[x]->val; NEXT;
        CASE(0x24) {
            wasm_global *g;
            IMM_U32(x);
            g = R.inst->globals[x];
            g->val = *--sp;
            if (g->type == WASM_I32 || g->type == WASM_F32) g->val &= 0xffffffffu;
            NEXT;
        }

        CASE(0x28) LOAD(uint32_t, 4, v_); NEXT;
        CASE(0x29) LOAD(uint64_t, 8, v_); NEXT;
        CASE(0x2a) LOAD(uint32_t, 4, v_); NEXT;
        CASE(0x2b) LOAD(uint64_t, 8, v_); NEXT;
        CASE(0x2c) LOAD(int8_t, 1, (uint32_t)(int32_t)v_); NEXT;
        CASE(0x2d) LOAD(uint8_t, 1, v_); NEXT;
        CASE(0x2e) LOAD(int16_t, 2, (uint32_t)(int32_t)v_); NEXT;
        CASE(0x2f) LOAD(uint16_t, 2, v_); NEXT;
        CASE(0x30) LOAD(int8_t, 1, (uint64_t)(int64_t)v_); NEXT;
        CASE(0x31) LOAD(uint8_t, 1, v_); NEXT;
        CASE(0x32) LOAD(int16_t, 2, (uint64_t)(int64_t)v_); NEXT;
        CASE(0x33) LOAD(uint16_t, 2, v_); NEXT;
        CASE(0x34) LOAD(int32_t, 4, (uint64_t)(int64_t)v_); NEXT;
        CASE(0x35) LOAD(uint32_t, 4, v_); NEXT;
        CASE(0x36) STORE(uint32_t, 4); NEXT;
        CASE(0x37) STORE(uint64_t, 8); NEXT;
        CASE(0x38) STORE(uint32_t, 4); NEXT;
        CASE(0x39) STORE(uint64_t, 8); NEXT;
        CASE(0x3a) STORE(uint8_t, 1); NEXT;
        CASE(0x3b) STORE(uint16_t, 2); NEXT;
        CASE(0x3c) STORE(uint8_t, 1); NEXT;
        CASE(0x3d) STORE(uint16_t, 2); NEXT;
        CASE(0x3e) STORE(uint32_t, 4); NEXT;
        CASE(0x3f) pc++; *sp++ = R.inst->mem->pages; NEXT;
        CASE(0x40) {
            wasm_memory *m = R.inst->mem;
            uint32_t delta = (uint32_t)sp[-1], old = m->pages;
            uint64_t np = (uint64_t)old + delta, nb = np * WASM_PAGE;
            pc++;
            if (!delta) { /* growing by 0 always succeeds and changes nothing, even on a short backing */
                sp[-1] = old;
                NEXT;
            }
            if (np > m->max_pages || nb > m->cap) {
                sp[-1] = 0xffffffffu;
                NEXT;
            }
            if (nb > m->bytes) memset(m->data + m->bytes, 0, (size_t)(nb - m->bytes));
            m->bytes = (uint32_t)(nb > 0xffffffffu ? 0xffffffffu : nb);
            m->pages = (uint32_t)np;
            R.mb = m->data;
            R.msz = m->bytes;
            sp[-1] = old;
            NEXT;
        }
        CASE(0x41)
            if (*pc < 0x40) x = *pc++;
            else { uint32_t t_; pc = wasm_leb_s32(pc, &t_); x = t_; }
            PUT32(sp, x);
            sp++;
            NEXT;
        CASE(0x42) { uint64_t v; pc = wasm_leb_s64(pc, &v); *sp++ = v; NEXT; }
        CASE(0x43) { uint32_t u; memcpy(&u, pc, 4); pc += 4; *sp++ = u; NEXT; }
        CASE(0x44) { uint64_t u; memcpy(&u, pc, 8); pc += 8; *sp++ = u; NEXT; }

        CASE(0x45) UN32(a == 0); NEXT;
        CASE(0x46) BIN32(a == b); NEXT;
        CASE(0x47) BIN32(a != b); NEXT;
        CASE(0x48) BIN32((int32_t)a < (int32_t)b); NEXT;
        CASE(0x49) BIN32(a < b); NEXT;
        CASE(0x4a) BIN32((int32_t)a > (int32_t)b); NEXT;
        CASE(0x4b) BIN32(a > b); NEXT;
        CASE(0x4c) BIN32((int32_t)a <= (int32_t)b); NEXT;
        CASE(0x4d) BIN32(a <= b); NEXT;
        CASE(0x4e) BIN32((int32_t)a >= (int32_t)b); NEXT;
        CASE(0x4f) BIN32(a >= b); NEXT;
        CASE(0x50) sp[-1] = sp[-1] == 0; NEXT;
        CASE(0x51) CMP64(a == b); NEXT;
        CASE(0x52) CMP64(a != b); NEXT;
        CASE(0x53) CMP64((int64_t)a < (int64_t)b); NEXT;
        CASE(0x54) CMP64(a < b); NEXT;
        CASE(0x55) CMP64((int64_t)a > (int64_t)b); NEXT;
        CASE(0x56) CMP64(a > b); NEXT;
        CASE(0x57) CMP64((int64_t)a <= (int64_t)b); NEXT;
        CASE(0x58) CMP64(a <= b); NEXT;
        CASE(0x59) CMP64((int64_t)a >= (int64_t)b); NEXT;
        CASE(0x5a) CMP64(a >= b); NEXT;
        CASE(0x5b) FCMP32(a == b); NEXT;
        CASE(0x5c) FCMP32(a != b); NEXT;
        CASE(0x5d) FCMP32(a < b); NEXT;
        CASE(0x5e) FCMP32(a > b); NEXT;
        CASE(0x5f) FCMP32(a <= b); NEXT;
        CASE(0x60) FCMP32(a >= b); NEXT;
        CASE(0x61) FCMP64(a == b); NEXT;
        CASE(0x62) FCMP64(a != b); NEXT;
        CASE(0x63) FCMP64(a < b); NEXT;
        CASE(0x64) FCMP64(a > b); NEXT;
        CASE(0x65) FCMP64(a <= b); NEXT;
        CASE(0x66) FCMP64(a >= b); NEXT;

        CASE(0x67) UN32(a ? clz64(a) - 32 : 32); NEXT;
        CASE(0x68) UN32(a ? ctz64(a) : 32); NEXT;
        CASE(0x69) UN32(popcnt64(a)); NEXT;
        CASE(0x6a) BIN32(a + b); NEXT;
        CASE(0x6b) BIN32(a - b); NEXT;
        CASE(0x6c) BIN32(a * b); NEXT;
        CASE(0x6d) /* div_s */
            if (!B32) { err = WASM_TRAP_DIV_ZERO; goto trap; }
            if (A32 == 0x80000000u && B32 == 0xffffffffu) { err = WASM_TRAP_INT_OVERFLOW; goto trap; }
            BIN32((int32_t)a / (int32_t)b);
            NEXT;
        CASE(0x6e)
            if (!B32) { err = WASM_TRAP_DIV_ZERO; goto trap; }
            BIN32(a / b);
            NEXT;
        CASE(0x6f)
            if (!B32) { err = WASM_TRAP_DIV_ZERO; goto trap; }
            BIN32(b == 0xffffffffu ? 0 : (int32_t)a % (int32_t)b);
            NEXT;
        CASE(0x70)
            if (!B32) { err = WASM_TRAP_DIV_ZERO; goto trap; }
            BIN32(a % b);
            NEXT;
        CASE(0x71) BIN32(a & b); NEXT;
        CASE(0x72) BIN32(a | b); NEXT;
        CASE(0x73) BIN32(a ^ b); NEXT;
        CASE(0x74) BIN32(a << (b & 31)); NEXT;
        CASE(0x75) BIN32((int32_t)a >> (b & 31)); NEXT;
        CASE(0x76) BIN32(a >> (b & 31)); NEXT;
        CASE(0x77) BIN32(rotl32(a, b)); NEXT;
        CASE(0x78) BIN32(rotl32(a, 32 - (b & 31))); NEXT;

        CASE(0x79) UN64(clz64(a)); NEXT;
        CASE(0x7a) UN64(ctz64(a)); NEXT;
        CASE(0x7b) UN64(popcnt64(a)); NEXT;
        CASE(0x7c) BIN64(a + b); NEXT;
        CASE(0x7d) BIN64(a - b); NEXT;
        CASE(0x7e) BIN64(a * b); NEXT;
        CASE(0x7f)
            if (!B64) { err = WASM_TRAP_DIV_ZERO; goto trap; }
            if (A64 == 0x8000000000000000ull && B64 == ~0ull) { err = WASM_TRAP_INT_OVERFLOW; goto trap; }
            BIN64((int64_t)a / (int64_t)b);
            NEXT;
        CASE(0x80)
            if (!B64) { err = WASM_TRAP_DIV_ZERO; goto trap; }
            BIN64(a / b);
            NEXT;
        CASE(0x81)
            if (!B64) { err = WASM_TRAP_DIV_ZERO; goto trap; }
            BIN64(b == ~0ull ? 0 : (int64_t)a % (int64_t)b);
            NEXT;
        CASE(0x82)
            if (!B64) { err = WASM_TRAP_DIV_ZERO; goto trap; }
            BIN64(a % b);
            NEXT;
        CASE(0x83) BIN64(a & b); NEXT;
        CASE(0x84) BIN64(a | b); NEXT;
        CASE(0x85) BIN64(a ^ b); NEXT;
        CASE(0x86) BIN64(a << (b & 63)); NEXT;
        CASE(0x87) BIN64((int64_t)a >> (b & 63)); NEXT;
        CASE(0x88) BIN64(a >> (b & 63)); NEXT;
        CASE(0x89) BIN64(rotl64(a, b)); NEXT;
        CASE(0x8a) BIN64(rotl64(a, 64 - (b & 63))); NEXT;

        CASE(0x8b) sp[-1] = (uint32_t)sp[-1] & ~F32_SIGN; NEXT;
        CASE(0x8c) sp[-1] = (uint32_t)sp[-1] ^ F32_SIGN; NEXT;
        CASE(0x8d) sp[-1] = wasm_f32_round((uint32_t)sp[-1], WR_CEIL); NEXT;
        CASE(0x8e) sp[-1] = wasm_f32_round((uint32_t)sp[-1], WR_FLOOR); NEXT;
        CASE(0x8f) sp[-1] = wasm_f32_round((uint32_t)sp[-1], WR_TRUNC); NEXT;
        CASE(0x90) sp[-1] = wasm_f32_round((uint32_t)sp[-1], WR_NEAREST); NEXT;
        CASE(0x91) sp[-1] = wasm_f32_sqrt((uint32_t)sp[-1]); NEXT;
        CASE(0x92) FBIN32(a + b); NEXT;
        CASE(0x93) FBIN32(a - b); NEXT;
        CASE(0x94) FBIN32(a * b); NEXT;
        CASE(0x95) FBIN32(a / b); NEXT;
        CASE(0x96) sp--; sp[-1] = wasm_f32_minmax((uint32_t)sp[-1], (uint32_t)sp[0], 0); NEXT;
        CASE(0x97) sp--; sp[-1] = wasm_f32_minmax((uint32_t)sp[-1], (uint32_t)sp[0], 1); NEXT;
        CASE(0x98) sp--; sp[-1] = ((uint32_t)sp[-1] & ~F32_SIGN) | ((uint32_t)sp[0] & F32_SIGN); NEXT;
        CASE(0x99) sp[-1] &= ~F64_SIGN; NEXT;
        CASE(0x9a) sp[-1] ^= F64_SIGN; NEXT;
        CASE(0x9b) sp[-1] = wasm_f64_round(sp[-1], WR_CEIL); NEXT;
        CASE(0x9c) sp[-1] = wasm_f64_round(sp[-1], WR_FLOOR); NEXT;
        CASE(0x9d) sp[-1] = wasm_f64_round(sp[-1], WR_TRUNC); NEXT;
        CASE(0x9e) sp[-1] = wasm_f64_round(sp[-1], WR_NEAREST); NEXT;
        CASE(0x9f) sp[-1] = wasm_f64_sqrt(sp[-1]); NEXT;
        CASE(0xa0) FBIN64(a + b); NEXT;
        CASE(0xa1) FBIN64(a - b); NEXT;
        CASE(0xa2) FBIN64(a * b); NEXT;
        CASE(0xa3) FBIN64(a / b); NEXT;
        CASE(0xa4) sp--; sp[-1] = wasm_f64_minmax(sp[-1], sp[0], 0); NEXT;
        CASE(0xa5) sp--; sp[-1] = wasm_f64_minmax(sp[-1], sp[0], 1); NEXT;
        CASE(0xa6) sp--; sp[-1] = (sp[-1] & ~F64_SIGN) | (sp[0] & F64_SIGN); NEXT;

        CASE(0xa7) sp[-1] = (uint32_t)sp[-1]; NEXT;
        CASE(0xa8) CASE(0xa9) CASE(0xaa) CASE(0xab) CASE(0xae) CASE(0xaf) CASE(0xb0) CASE(0xb1) {
            /* trapping float -> int: kind = 2*is64 + unsigned, source f64 if bit 1 of the pair */
            static const uint8_t kind[10] = {0, 1, 0, 1, 0, 0, 2, 3, 2, 3};
            uint32_t k = op - 0xa8;
            double d = (k == 2 || k == 3 || k >= 8) ? f64_of(sp[-1]) : (double)f32_of(sp[-1]);
            int r = wasm_trunc(d, kind[k], 0, &sp[-1]);
            if (r) { err = r == 1 ? WASM_TRAP_INVALID_CONV : WASM_TRAP_INT_OVERFLOW; goto trap; }
            NEXT;
        }
        CASE(0xac) sp[-1] = (uint64_t)(int64_t)(int32_t)sp[-1]; NEXT;
        CASE(0xad) sp[-1] = (uint32_t)sp[-1]; NEXT;
        CASE(0xb2) sp[-1] = slot_f32((float)(int32_t)sp[-1]); NEXT;
        CASE(0xb3) sp[-1] = slot_f32((float)(uint32_t)sp[-1]); NEXT;
        CASE(0xb4) sp[-1] = slot_f32((float)(int64_t)sp[-1]); NEXT;
        CASE(0xb5) sp[-1] = slot_f32((float)sp[-1]); NEXT;
        CASE(0xb6) sp[-1] = slot_f32((float)f64_of(sp[-1])); NEXT;
        CASE(0xb7) sp[-1] = slot_f64((double)(int32_t)sp[-1]); NEXT;
        CASE(0xb8) sp[-1] = slot_f64((double)(uint32_t)sp[-1]); NEXT;
        CASE(0xb9) sp[-1] = slot_f64((double)(int64_t)sp[-1]); NEXT;
        CASE(0xba) sp[-1] = slot_f64((double)sp[-1]); NEXT;
        CASE(0xbb) sp[-1] = slot_f64((double)f32_of(sp[-1])); NEXT;
        CASE(0xbc) CASE(0xbd) CASE(0xbe) CASE(0xbf) NEXT; /* reinterpret: same bits */
        CASE(0xc0) sp[-1] = (uint32_t)(int32_t)(int8_t)sp[-1]; NEXT;
        CASE(0xc1) sp[-1] = (uint32_t)(int32_t)(int16_t)sp[-1]; NEXT;
        CASE(0xc2) sp[-1] = (uint64_t)(int64_t)(int8_t)sp[-1]; NEXT;
        CASE(0xc3) sp[-1] = (uint64_t)(int64_t)(int16_t)sp[-1]; NEXT;
        CASE(0xc4) sp[-1] = (uint64_t)(int64_t)(int32_t)sp[-1]; NEXT;
        CASE(0xfc) {                        /* saturating truncations */
            static const uint8_t kind[8] = {0, 1, 0, 1, 2, 3, 2, 3};
            uint32_t k;
            IMM_U32(k);
            double d = (k & 2) ? f64_of(sp[-1]) : (double)f32_of(sp[-1]);
            (void)wasm_trunc(d, kind[k], 1, &sp[-1]);
            NEXT;
        }
        DEFAULT err = WASM_TRAP_UNREACHABLE; goto trap; /* not reachable after validation */
        }
        continue;

    do_call:
        if (callee->host) {
            uint32_t np = callee->type->nparams;
            owner->fuel = R.reserve + fuel;
            mask32(sp - np, callee->type->params, np);
            err = callee->host(R.inst, callee->host_ctx, sp - np);
            if (err) goto trap;
            sp += (int32_t)callee->type->nresults - (int32_t)np;
            if (R.inst->mem) { R.mb = R.inst->mem->data; R.msz = R.inst->mem->bytes; }
            continue;
        }
        if (R.nframes >= owner->depth_max) { err = WASM_TRAP_STACK_OVERFLOW; goto trap; }
        R.frames[R.nframes].pc = pc;
        R.frames[R.nframes].stp = stp;
        R.frames[R.nframes].fp = fp;
        R.frames[R.nframes].ob = R.ob;
        R.frames[R.nframes].fn = R.fn;
        R.nframes++;
    enter: {
        uint32_t n;
        R.fn = callee;
        LOAD_FN();
        fp = sp - callee->type->nparams;
        if ((size_t)(owner->stack_end - fp) < R.fd->frame_slots) {
            err = WASM_TRAP_STACK_OVERFLOW;
            goto trap;
        }
        for (n = R.fd->nlocals; n; n--) *sp++ = 0;
        R.ob = sp;
        pc = R.fd->code;
        stp = R.br0 + R.fd->st;
        continue;
    }

    do_return: {
        uint32_t nr = R.fd->nresults;
        if (nr) fp[0] = sp[-1];
        sp = fp + nr;
        if (!R.nframes) break;
        R.nframes--;
        pc = R.frames[R.nframes].pc;
        stp = R.frames[R.nframes].stp;
        fp = R.frames[R.nframes].fp;
        R.ob = R.frames[R.nframes].ob;
        R.fn = R.frames[R.nframes].fn;
        LOAD_FN();
        continue;
    }
    }
    owner->fuel = R.reserve + fuel;
    memcpy(slots, owner->stack, entry->type->nresults * sizeof *slots);
    mask32(slots, entry->type->results, entry->type->nresults);
    return WASM_OK;

trap:
    owner->fuel = R.reserve + fuel;
    return err;
}
