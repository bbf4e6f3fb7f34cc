/*
 * Instantiation and the interpreter. The interpreter runs the register code
 * the validator translated each function into (wasm_int.h): operands are
 * frame slots named by the instruction, branches are precomputed offsets.
 */
#include <string.h>
#include "wasm_int.h"
#include "wasm_num.h"
#include "../common/size.h"

typedef struct frame {
    const wasm_code *ip;
    wasm_slot *fp;
    wasm_func *fn;
} frame;

#define TRY(x) do { wasm_err e_ = (x); if (e_) return e_; } while (0)

/* ---------------------------------------------------------------- instantiation */

/* The value of the (validated) constant expression at *pp, which is left after its end. */
static uint64_t eval_const(wasm_instance *inst, const uint8_t **pp)
{
    const uint8_t *p = *pp;
    uint8_t op = *p++;
    uint64_t v = 0;
    switch (op) {
    case 0x41: v = wasm_rd_s32(&p); break;
    case 0x42: v = wasm_rd_s64(&p); break;
    case 0x43: { uint32_t u; memcpy(&u, p, 4); v = u; p += 4; break; }
    case 0x44: memcpy(&v, p, 8); p += 8; break;
    case 0x23: v = inst->globals[wasm_rd_u32(&p)]->val; break;
    case 0xd0: p++; break; /* ref.null t */
    case 0xd2: v = (uintptr_t)inst->funcs[wasm_rd_u32(&p)]; break;
    }
    *pp = p + 1; /* end */
    return v;
}

static uint32_t eval_i32(wasm_instance *inst, const uint8_t *p) { return (uint32_t)eval_const(inst, &p); }

/* A range [a, a + n) within size, computed without wrapping. */
static int fits(uint32_t a, uint32_t n, uint32_t size) { return (uint64_t)a + n <= size; }

static int limits_match(uint32_t have_min, uint32_t have_max, int have_has_max, const wasm_import *im)
{
    if (have_min < im->min) return 0;
    if (im->has_max && (!have_has_max || have_max > im->max)) return 0;
    return 1;
}

static wasm_err link_import(wasm_instance *inst, const wasm_config *cfg, const wasm_import *im, uint32_t *nf, uint32_t *ng,
                            uint32_t *nt)
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
        if (!ex.table || ex.table->type != im->global_type ||
            !limits_match(ex.table->size, ex.table->max, ex.table->has_max, im))
            return WASM_E_IMPORT_TYPE;
        inst->tables[(*nt)++] = ex.table;
        break;
    }
    return WASM_OK;
}

static wasm_err run(wasm_instance *owner, wasm_func *f, wasm_slot *slots);

/* Machine stack for any mix of compiled and interpreted calls at full depth: depth x 160 + 1 KiB,
 * saturated at 4 GiB - 1 (a budget that large only means "unbounded"). */
static uint32_t default_machine_stack(uint32_t depth)
{
    size_t b = wb_size_add(wb_size_mul(depth, 160u), 1024u);
    return b > 0xffffffffu ? 0xffffffffu : (uint32_t)b;
}

/*
 * Whether table i can grow: by the module's own table.grow, or through an export (another
 * module or the embedder). Only then is it backed beyond its minimum (wasm_config.table_cap).
 */
static int may_grow(const wasm_module *m, uint32_t i)
{
    if (m->grows_tables) return 1;
    for (uint32_t k = 0; k < m->nexports; k++)
        if (m->exports[k].kind == WASM_EXTERN_TABLE && m->exports[k].index == i) return 1;
    return 0;
}

static wasm_err new_table(const wasm_module *m, uint32_t i, uint32_t table_cap, wasm_arena *a, wasm_table *t)
{
    const wasm_limits *l = &m->tables[i];
    uint32_t cap = l->min;
    if (may_grow(m, i) && table_cap > cap) cap = table_cap < l->max ? table_cap : l->max;
    if (!(t->elems = wasm_arena_array(a, cap, sizeof(wasm_ref)))) return WASM_E_NOMEM;
    t->size = l->min;
    t->cap = cap;
    t->max = l->max;
    t->has_max = l->has_max;
    t->type = l->type;
    return WASM_OK;
}

/* table.init of element segment `seg` (also at instantiation): n of its items from s on, to d on. */
static wasm_err table_init(wasm_instance *inst, wasm_table *t, uint32_t seg, uint32_t d, uint32_t s, uint32_t n)
{
    const wasm_elemseg *e = &inst->mod->elems[seg];
    const uint8_t *p = e->items;
    uint32_t count = inst->dropped[seg] ? 0 : e->count;
    if ((uint64_t)s + n > count || (uint64_t)d + n > t->size) return WASM_TRAP_TABLE_OOB;
    for (uint32_t k = 0; k < s + n; k++) {
        wasm_ref r = e->exprs ? (wasm_ref)(uintptr_t)eval_const(inst, &p) : inst->funcs[wasm_rd_u32(&p)];
        if (k >= s) t->elems[d + k - s] = r;
    }
    return WASM_OK;
}

/* memory.init of data segment `seg` (also at instantiation). */
static wasm_err memory_init(wasm_instance *inst, uint32_t seg, uint32_t d, uint32_t s, uint32_t n)
{
    const wasm_dataseg *g = &inst->mod->datas[seg];
    uint32_t len = inst->dropped[inst->mod->nelems + seg] ? 0 : g->len;
    if ((uint64_t)s + n > len || (uint64_t)d + n > inst->mem->bytes) return WASM_TRAP_MEM_OOB;
    if (n) memcpy(inst->mem->data + d, g->data + s, n);
    return WASM_OK;
}

/* Segments, in order: active ones are copied (a failing one traps and leaves earlier writes in place), then every
 * active and declarative segment is dropped, as the spec's instantiation does. */
/* WebAssembly 1.0 (wasm_load_limits.mvp): every active segment must fit before any is written. */
static wasm_err segments_fit(wasm_instance *inst)
{
    const wasm_module *m = inst->mod;
    for (uint32_t i = 0; i < m->nelems; i++) {
        const wasm_elemseg *s = &m->elems[i];
        if (s->mode == SEG_ACTIVE && !fits(eval_i32(inst, s->offset), s->count, inst->tables[s->table]->size))
            return WASM_E_ELEM_FIT;
    }
    for (uint32_t i = 0; i < m->ndatas; i++) {
        const wasm_dataseg *s = &m->datas[i];
        if (s->offset && !fits(eval_i32(inst, s->offset), s->len, inst->mem->bytes)) return WASM_E_DATA_FIT;
    }
    return WASM_OK;
}

static wasm_err init_segments(wasm_instance *inst)
{
    const wasm_module *m = inst->mod;
    uint32_t i;
    if (m->mvp) TRY(segments_fit(inst));
    for (i = 0; i < m->nelems; i++) {
        const wasm_elemseg *s = &m->elems[i];
        if (s->mode == SEG_ACTIVE)
            TRY(table_init(inst, inst->tables[s->table], i, eval_i32(inst, s->offset), 0, s->count));
        if (s->mode != SEG_PASSIVE) inst->dropped[i] = 1;
    }
    for (i = 0; i < m->ndatas; i++) {
        const wasm_dataseg *s = &m->datas[i];
        if (!s->offset) continue; /* passive */
        TRY(memory_init(inst, i, eval_i32(inst, s->offset), 0, s->len));
        inst->dropped[m->nelems + i] = 1;
    }
    return WASM_OK;
}

wasm_err wasm_instantiate(const wasm_module *m, const wasm_config *cfg, wasm_arena *a, uint64_t fuel,
                          wasm_instance **out)
{
    wasm_instance *inst;
    uint32_t nf = 0, ng = 0, nt = 0, i;
    uint32_t stack_slots = cfg->stack_slots ? cfg->stack_slots : 512;
    uint32_t depth = cfg->call_depth ? cfg->call_depth : 64;

    *out = NULL;
    if (!(inst = wasm_arena_alloc(a, sizeof *inst))) return WASM_E_NOMEM;
    inst->mod = m;
    inst->fuel = fuel;
    inst->machine_stack = cfg->machine_stack ? cfg->machine_stack : default_machine_stack(depth);
    inst->depth_max = depth;
    if (!(inst->stack = wasm_arena_array(a, stack_slots, sizeof(wasm_slot)))) return WASM_E_NOMEM;
    inst->stack_end = inst->stack + stack_slots;
    if (!(inst->frames = wasm_arena_array(a, depth, sizeof(frame)))) return WASM_E_NOMEM;
    if (!(inst->funcs = wasm_arena_array(a, m->nfuncs, sizeof(wasm_func *)))) return WASM_E_NOMEM;
    if (!(inst->own = wasm_arena_array(a, m->nfuncs - m->nfunc_imports, sizeof(wasm_func)))) return WASM_E_NOMEM;
    if (!(inst->globals = wasm_arena_array(a, m->nglobals, sizeof(wasm_global *)))) return WASM_E_NOMEM;
    if (!(inst->own_globals = wasm_arena_array(a, m->nglobals - m->nglobal_imports, sizeof(wasm_global))))
        return WASM_E_NOMEM;
    if (!(inst->tables = wasm_arena_array(a, m->ntables, sizeof(wasm_table *)))) return WASM_E_NOMEM;
    if (!(inst->dropped = wasm_arena_array(a, wb_size_add(m->nelems, m->ndatas), 1))) return WASM_E_NOMEM;

    for (i = 0; i < m->nimports; i++) TRY(link_import(inst, cfg, &m->imports[i], &nf, &ng, &nt));

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
        const uint8_t *init = m->globals[i].init;
        g->val = eval_const(inst, &init);
        inst->globals[i] = g;
    }
    if (m->ntables > nt && !(inst->own_tables = wasm_arena_array(a, m->ntables - nt, sizeof(wasm_table))))
        return WASM_E_NOMEM;
    for (i = nt; i < m->ntables; i++) {
        TRY(new_table(m, i, cfg->table_cap, a, &inst->own_tables[i - nt]));
        inst->tables[i] = &inst->own_tables[i - nt];
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
#if defined(WASM_JIT)
    if (!cfg->interpret_only) inst->nnative = wasm_jit_compile(inst, a, cfg->code_guard);
#endif
    *out = inst;
    TRY(init_segments(inst));
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
        if (!p || *p++ != 0x41) continue; /* passive, or global-relative: unknown until instantiation */
        uint64_t e = (uint64_t)wasm_rd_s32(&p) + m->datas[i].len;
        if (e > end) end = e > 0xffffffffu ? 0xffffffffu : (uint32_t)e;
    }
    return end;
}

/* ---------------------------------------------------------------- accessors */

void wasm_set_fuel(wasm_instance *inst, uint64_t fuel) { inst->fuel = fuel; }
uint64_t wasm_get_fuel(const wasm_instance *inst) { return inst->fuel; }
const wasm_module *wasm_instance_module(const wasm_instance *inst) { return inst->mod; }
uint32_t wasm_instance_native_funcs(const wasm_instance *inst, uint32_t *defined, uint32_t *bytes)
{
    if (defined) *defined = inst->mod->nfuncs - inst->mod->nfunc_imports;
    if (bytes) *bytes = inst->native_bytes;
    return inst->nnative;
}
wasm_memory *wasm_instance_memory(wasm_instance *inst) { return inst->mem; }
wasm_table *wasm_instance_table(wasm_instance *inst) { return inst->mod->ntables ? inst->tables[0] : NULL; }
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
        case WASM_EXTERN_TABLE: out->table = inst->tables[e->index]; break;
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

uint32_t wasm_memory_grow(wasm_memory *m, uint32_t delta)
{
    uint32_t old = m->pages;
    uint64_t np = (uint64_t)old + delta, nb = np * WASM_PAGE;
    if (!delta) return old; /* growing by 0 always succeeds and changes nothing, even on a short backing */
    if (np > m->max_pages || nb > m->cap) return 0xffffffffu;
    if (nb > m->bytes) memset(m->data + m->bytes, 0, (size_t)(nb - m->bytes));
    m->bytes = (uint32_t)(nb > 0xffffffffu ? 0xffffffffu : nb);
    m->pages = (uint32_t)np;
    return old;
}

/* table.grow: the old size, or 0xffffffff when the table cannot grow by n (its backing or maximum). */
static uint32_t table_grow(wasm_table *t, uint32_t n, wasm_ref init)
{
    uint32_t old = t->size;
    uint64_t size = (uint64_t)old + n;
    if (size > t->cap || size > t->max) return 0xffffffffu;
    for (uint32_t k = old; k < size; k++) t->elems[k] = init;
    t->size = (uint32_t)size;
    return old;
}

static wasm_ref ref_of(wasm_slot v) { return (wasm_ref)(uintptr_t)v; }

/* An i32 operand of the X_EXT instruction at ip (the low half of its slot), and a 32-bit immediate. */
#define XV(i) ((uint32_t)fp[ip[i]])
#define XIMM(i) (ip[i] | (uint32_t)ip[(i) + 1] << 16)

wasm_err wasm_ext(wasm_instance *inst, const wasm_code *ip, wasm_slot *fp)
{
    wasm_memory *m = inst->mem;
    wasm_table *t, *from;
    wasm_ref r;
    uint32_t d, s, n;
    /* each case reads all its operands before it writes a result (the slots may be the same) */
    switch (X_EXT_SUB(*ip)) {
    case XS_MCOPY:
        d = XV(1), s = XV(2), n = XV(3);
        if (!fits(s, n, m->bytes) || !fits(d, n, m->bytes)) return WASM_TRAP_MEM_OOB;
        if (n) memmove(m->data + d, m->data + s, n);
        return WASM_OK;
    case XS_MFILL:
        d = XV(1), s = XV(2), n = XV(3);
        if (!fits(d, n, m->bytes)) return WASM_TRAP_MEM_OOB;
        if (n) memset(m->data + d, (uint8_t)s, n);
        return WASM_OK;
    case XS_MINIT: return memory_init(inst, XIMM(4), XV(1), XV(2), XV(3));
    case XS_DDROP: inst->dropped[inst->mod->nelems + XIMM(1)] = 1; return WASM_OK;
    case XS_EDROP: inst->dropped[XIMM(1)] = 1; return WASM_OK;
    case XS_REFFUNC: fp[ip[1]] = (uintptr_t)inst->funcs[XIMM(2)]; return WASM_OK;
    case XS_TINIT: return table_init(inst, inst->tables[ip[4]], XIMM(5), XV(1), XV(2), XV(3));
    case XS_TGET:
        t = inst->tables[ip[3]];
        if ((s = XV(2)) >= t->size) return WASM_TRAP_TABLE_OOB;
        fp[ip[1]] = (uintptr_t)t->elems[s];
        return WASM_OK;
    case XS_TSET:
        t = inst->tables[ip[3]];
        if ((d = XV(1)) >= t->size) return WASM_TRAP_TABLE_OOB;
        t->elems[d] = ref_of(fp[ip[2]]);
        return WASM_OK;
    case XS_TSIZE: fp[ip[1]] = inst->tables[ip[2]]->size; return WASM_OK;
    case XS_TGROW:
        r = ref_of(fp[ip[2]]), n = XV(3);
        fp[ip[1]] = table_grow(inst->tables[ip[4]], n, r);
        return WASM_OK;
    case XS_TFILL:
        t = inst->tables[ip[4]];
        d = XV(1), r = ref_of(fp[ip[2]]), n = XV(3);
        if (!fits(d, n, t->size)) return WASM_TRAP_TABLE_OOB;
        while (n--) t->elems[d++] = r;
        return WASM_OK;
    default: /* XS_TCOPY */
        t = inst->tables[ip[4]], from = inst->tables[ip[5]];
        d = XV(1), s = XV(2), n = XV(3);
        if (!fits(s, n, from->size) || !fits(d, n, t->size)) return WASM_TRAP_TABLE_OOB;
        if (n) memmove(t->elems + d, from->elems + s, (size_t)n * sizeof(wasm_ref));
        return WASM_OK;
    }
}

static uint32_t rotl32(uint32_t a, uint32_t k) { k &= 31; return (a << k) | (a >> ((32 - k) & 31)); }

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

/*
 * i32/f32 values live in the low half of a slot; the high half is not
 * maintained inside the interpreter (it is masked at the API boundary), so
 * a 32-bit result is one 32-bit store. Slots and code are little-endian.
 */
static inline uint32_t lo32(const wasm_slot *s) { uint32_t v; memcpy(&v, s, 4); return v; }
static inline uint32_t imm32(const wasm_code *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t imm64(const wasm_code *p) { uint64_t v; memcpy(&v, p, 8); return v; }
#define PUT32(slot, v) do { uint32_t p32_ = (uint32_t)(v); memcpy((slot), &p32_, 4); } while (0)

/* Operand fields of the current instruction: slot of unit i, its low 32 bits, immediates. */
#define S(i) fp[ip[i]]
#define U(i) lo32(&fp[ip[i]])
#define I32(i) imm32(ip + (i))
#define JUMP(i) (ip += (i) + (int32_t)I32(i))

/* Every handler reads all its operands before it writes its destination (they may alias). */
#define UN32(e) do { uint32_t a = U(2); PUT32(&S(1), e); ip += 3; } while (0)
#define UN64(e) do { uint64_t a = S(2); S(1) = (uint64_t)(e); ip += 3; } while (0)
#define UNF(e) do { uint64_t a = S(2); S(1) = (e); ip += 3; } while (0)
#define BIN32(e) do { uint32_t a = U(2), b = U(3); PUT32(&S(1), e); ip += 4; } while (0)
#define RI32(e) do { uint32_t a = U(2), b = I32(3); PUT32(&S(1), e); ip += 5; } while (0)
#define BIN64(e) do { uint64_t a = S(2), b = S(3); S(1) = (uint64_t)(e); ip += 4; } while (0)
#define CMP64(e) do { uint64_t a = S(2), b = S(3); PUT32(&S(1), (e) ? 1 : 0); ip += 4; } while (0)
/* i32 division and remainder; B is the divisor (a slot or an immediate), LEN the instruction length. */
#define DIV32(E, B, LEN, SIGNED)                                                    \
    do {                                                                            \
        uint32_t a = U(2), b = (B);                                                 \
        if (!b) { err = WASM_TRAP_DIV_ZERO; goto trap; }                            \
        if ((SIGNED) && a == 0x80000000u && b == 0xffffffffu) { err = WASM_TRAP_INT_OVERFLOW; goto trap; } \
        PUT32(&S(1), E);                                                            \
        ip += (LEN);                                                                \
    } while (0)
/* Compare-and-branch: operands a (slot) and b (slot, or immediate for the I form). */
#define BCMP(e) do { uint32_t a = U(1), b = U(2); if (e) JUMP(3); else ip += 5; } while (0)
#define BCMPI(e) do { uint32_t a = U(1), b = I32(2); if (e) JUMP(4); else ip += 6; } while (0)
/*
 * f32 add and mul with a as the first operand: given two NaNs, ARM's VFP returns the
 * first one (quieted), and the compiler is free to swap commutative operands. The native
 * tier's templates put a first; so does this, so that both engines give the same bits.
 */
#if defined(WASM_JIT) && defined(__ARM_FP) && (__ARM_FP & 4)
static inline float f32_add(float a, float b) { float r; __asm__("vadd.f32 %0, %1, %2" : "=t"(r) : "t"(a), "t"(b)); return r; }
static inline float f32_mul(float a, float b) { float r; __asm__("vmul.f32 %0, %1, %2" : "=t"(r) : "t"(a), "t"(b)); return r; }
#else
#define f32_add(a, b) ((a) + (b))
#define f32_mul(a, b) ((a) * (b))
#endif
#define FBIN32(e) do { float a = f32_of(S(2)), b = f32_of(S(3)); S(1) = slot_f32(e); ip += 4; } while (0)
#define FBIN64(e) do { double a = f64_of(S(2)), b = f64_of(S(3)); S(1) = slot_f64(e); ip += 4; } while (0)
#define FCMP32(e) do { float a = f32_of(S(2)), b = f32_of(S(3)); PUT32(&S(1), (e) ? 1 : 0); ip += 4; } while (0)
#define FCMP64(e) do { double a = f64_of(S(2)), b = f64_of(S(3)); PUT32(&S(1), (e) ? 1 : 0); ip += 4; } while (0)

/* Effective address of an N-byte access: address slot in unit AF, offset at units 3-4; p = host address. */
#define EA(N, AF)                                                                  \
    do {                                                                           \
        uint32_t o_ = I32(3), ea_ = o_ + U(AF);                                    \
        if (ea_ < o_ || R.msz < (N) || ea_ > R.msz - (N)) { err = WASM_TRAP_MEM_OOB; goto trap; } \
        p = R.mb + ea_;                                                            \
    } while (0)
#define LOAD32(T, N) do { T v_; EA(N, 2); memcpy(&v_, p, N); PUT32(&S(1), (uint32_t)(int32_t)v_); ip += 5; } while (0)
#define LOAD64(T, N) do { T v_; EA(N, 2); memcpy(&v_, p, N); S(1) = (uint64_t)(int64_t)v_; ip += 5; } while (0)
#define LOADU(T, N) do { T v_; EA(N, 2); memcpy(&v_, p, N); S(1) = v_; ip += 5; } while (0)
#define STORE(T, N) do { T v_ = (T)S(2); EA(N, 1); memcpy(p, &v_, N); ip += 5; } while (0)

/* Switch to the function R.fn; instance state is reloaded only when it changes. */
#define LOAD_FN()                                                          \
    do {                                                                   \
        R.fd = (const wasm_funcdef *)R.fn->def;                            \
        if (R.fn->inst != R.inst) {                                        \
            R.inst = R.fn->inst;                                           \
            R.mod = R.inst->mod;                                           \
            R.mb = R.inst->mem ? R.inst->mem->data : NULL;                 \
            R.msz = R.inst->mem ? R.inst->mem->bytes : 0;                  \
        }                                                                  \
    } while (0)

/*
 * Dispatch is a switch on the opcode byte in which every byte value has a
 * case (those no translation produces share one), so the compiler emits one
 * table branch with no range check.
 */
#define UNUSED_OPS \
    case 0x03: case 0x04: case 0x05: case 0x06: case 0x07: case 0x08: case 0x09: \
    case 0x0a: case 0x0b: case 0x17: case 0x18: case 0x19: case 0x1a: case 0x1c: \
    case 0x1d: case 0x1e: case 0x1f: case 0x21: case 0x22: case 0x25: case 0x26: case 0x27: \
    case 0x43: case 0x44: case 0xdf: case 0xf4: case 0xf5: case 0xf6: case 0xf7:

static wasm_err run(wasm_instance *owner, wasm_func *entry, wasm_slot *slots)
{
    wasm_err err;
    if (entry->host) return entry->host(owner, entry->host_ctx, slots);
    if ((size_t)(owner->stack_end - owner->stack) < entry->type->nparams) return WASM_TRAP_STACK_OVERFLOW;
    memcpy(owner->stack, slots, wb_size_mul(entry->type->nparams, sizeof *slots));
#if defined(WASM_JIT)
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    owner->stack_floor = here > owner->machine_stack ? here - owner->machine_stack : 0;
#endif
    if ((err = wasm_interp(owner, entry, owner->stack, 0, owner->depth_max))) return err;
    memcpy(slots, owner->stack, wb_size_mul(entry->type->nresults, sizeof *slots));
    mask32(slots, entry->type->results, entry->type->nresults);
    return WASM_OK;
}

#if defined(WASM_JIT)
/* Compiled f on the frame nfp, with interpreter frames from base in use below and depth more
 * calls allowed; the fuel counter and its reserve go in and come back (inlined: they stay in
 * the interpreter's registers). */
static inline __attribute__((always_inline)) wasm_err native(wasm_instance *owner, wasm_func *f, wasm_slot *nfp,
                                                             uint32_t base, uint32_t depth, uint32_t *fuel,
                                                             uint64_t *reserve)
{
    wasm_jit_ctx c;
    c.fuel = *fuel;
    c.reserve = *reserve;
    c.frames = base;
    wasm_err e = wasm_jit_call(&c, owner, f, nfp, depth);
    *fuel = c.fuel;
    *reserve = c.reserve;
    return e;
}
#endif

wasm_err wasm_interp(wasm_instance *owner, wasm_func *entry, wasm_slot *fp, uint32_t base, uint32_t limit)
{
    /*
     * Only ip, fp and fuel are hot: the rest lives in R so that a
     * register-starved core (Cortex-M: 13 registers) keeps those in registers.
     */
    struct {
        frame *frames;
        uint32_t nframes, limit;
        const wasm_module *mod;
        const wasm_funcdef *fd;
        wasm_instance *inst;
        wasm_func *fn;
        uint8_t *mb;
        uint32_t msz;
        uint64_t reserve; /* fuel beyond the 32-bit counter */
    } R;
    const wasm_code *ip;
    wasm_slot *nfp;
    wasm_func *callee;
    uint8_t *p;
    uint32_t fuel = owner->fuel > WASM_FUEL_WORD ? WASM_FUEL_WORD : (uint32_t)owner->fuel;
    wasm_err err = WASM_OK;
    R.frames = (frame *)owner->frames + base;
    R.nframes = 0;
    R.limit = limit;
    R.fn = entry;
    R.inst = NULL;
    R.reserve = owner->fuel - fuel;
#if defined(__GNUC__)
    __asm__ volatile("" : : "r"(&R) : "memory"); /* keep R in memory, not in registers */
#endif

#if defined(WASM_JIT)
    if (entry->native) {
        if ((err = native(owner, entry, fp, base, limit, &fuel, &R.reserve))) goto trap;
        goto done;
    }
#endif
    nfp = fp;
    callee = entry;
    goto enter;

    for (;;) {
        switch ((uint8_t)*ip) {
        case X_UNREACHABLE: err = WASM_TRAP_UNREACHABLE; goto trap;
        case X_BRL: JUMP(1); goto fuel_op;
        case X_BRNZL: if (U(1)) { JUMP(2); goto fuel_op; } ip += 4; break;
        case X_BRZL: if (!U(1)) { JUMP(2); goto fuel_op; } ip += 4; break;
        case X_FUEL:
        fuel_op: {
            uint32_t n = I32(1);
            if (fuel < n) {
                uint64_t total = R.reserve + fuel;
                if (total < n) { fuel = 0; R.reserve = 0; err = WASM_TRAP_FUEL; goto trap; }
                total -= n;
                fuel = total > WASM_FUEL_WORD ? WASM_FUEL_WORD : (uint32_t)total;
                R.reserve = total - fuel;
            } else {
                fuel -= n;
            }
            ip += 3;
            break;
        }
        case X_BR: JUMP(1); break;
        case X_BRNZ: if (U(1)) JUMP(2); else ip += 4; break;
        case X_BRZ: if (!U(1)) JUMP(2); else ip += 4; break;
        case X_BRTABLE: {
            uint32_t i = U(1), n = I32(2);
            ip += 4 + 2 * (i < n ? i : n);
            JUMP(0);
            break;
        }
        case X_RETN: { /* several results: fp[0..n) from fp[src..], ascending (src > 0) */
            uint32_t s = ip[1], n = ip[2];
            for (uint32_t k = 0; k < n; k++) fp[k] = fp[s + k];
            goto ret;
        }
        case X_RETURN: {
            uint32_t s = ip[1];
            if (s != X_NOSLOT) fp[0] = fp[s];
        ret:
            if (!R.nframes) goto done;
            R.nframes--;
            ip = R.frames[R.nframes].ip;
            fp = R.frames[R.nframes].fp;
            R.fn = R.frames[R.nframes].fn;
            LOAD_FN();
            break;
        }
        case X_CALL:
            callee = R.inst->funcs[I32(2)];
            nfp = fp + ip[1];
            ip += 4;
            goto do_call;
        case X_CALLI: {
            const wasm_functype *want = &R.mod->types[I32(3)];
            const wasm_table *t = R.inst->tables[ip[5]];
            uint32_t i = U(2);
            if (i >= t->size) { err = WASM_TRAP_UNDEF_ELEMENT; goto trap; }
            callee = t->elems[i];
            if (!callee) { err = WASM_TRAP_UNINIT_ELEMENT; goto trap; }
            if (callee->type != want && !wasm_functype_eq(callee->type, want)) {
                err = WASM_TRAP_INDIRECT_TYPE;
                goto trap;
            }
            nfp = fp + ip[1];
            ip += 6;
            goto do_call;
        }
        case X_EXT: /* bulk memory and tables: rare enough for a call, and the native tier calls the same */
            if ((err = wasm_ext(R.inst, ip, fp))) goto trap;
            ip += X_EXT_LEN(*ip);
            break;
        case X_SELECT: { wasm_slot v = U(4) ? S(2) : S(3); S(1) = v; ip += 5; break; }
        case X_COPY: S(1) = S(2); ip += 3; break;
        case X_GGET: S(1) = R.inst->globals[ip[2]]->val; ip += 3; break;
        case X_GSET: {
            wasm_global *g = R.inst->globals[ip[2]];
            g->val = S(1);
            if (g->type == WASM_I32 || g->type == WASM_F32) g->val &= 0xffffffffu;
            ip += 3;
            break;
        }

        case 0x28: LOADU(uint32_t, 4); break;
        case 0x29: LOADU(uint64_t, 8); break;
        case 0x2a: LOADU(uint32_t, 4); break;
        case 0x2b: LOADU(uint64_t, 8); break;
        case 0x2c: LOAD32(int8_t, 1); break;
        case 0x2d: LOADU(uint8_t, 1); break;
        case 0x2e: LOAD32(int16_t, 2); break;
        case 0x2f: LOADU(uint16_t, 2); break;
        case 0x30: LOAD64(int8_t, 1); break;
        case 0x31: LOADU(uint8_t, 1); break;
        case 0x32: LOAD64(int16_t, 2); break;
        case 0x33: LOADU(uint16_t, 2); break;
        case 0x34: LOAD64(int32_t, 4); break;
        case 0x35: LOADU(uint32_t, 4); break;
        case 0x36: STORE(uint32_t, 4); break;
        case 0x37: STORE(uint64_t, 8); break;
        case 0x38: STORE(uint32_t, 4); break;
        case 0x39: STORE(uint64_t, 8); break;
        case 0x3a: STORE(uint8_t, 1); break;
        case 0x3b: STORE(uint16_t, 2); break;
        case 0x3c: STORE(uint8_t, 1); break;
        case 0x3d: STORE(uint16_t, 2); break;
        case 0x3e: STORE(uint32_t, 4); break;
        case X_MSIZE: S(1) = R.inst->mem->pages; ip += 2; break;
        case X_MGROW:
            S(1) = wasm_memory_grow(R.inst->mem, U(2));
            R.msz = R.inst->mem->bytes;
            ip += 3;
            break;
        case X_CONST32: S(1) = I32(2); ip += 4; break;
        case X_CONST64: S(1) = imm64(ip + 2); ip += 6; break;

        case 0x45: UN32(a == 0); break;
        case 0x46: BIN32(a == b); break;
        case 0x47: BIN32(a != b); break;
        case 0x48: BIN32((int32_t)a < (int32_t)b); break;
        case 0x49: BIN32(a < b); break;
        case 0x4a: BIN32((int32_t)a > (int32_t)b); break;
        case 0x4b: BIN32(a > b); break;
        case 0x4c: BIN32((int32_t)a <= (int32_t)b); break;
        case 0x4d: BIN32(a <= b); break;
        case 0x4e: BIN32((int32_t)a >= (int32_t)b); break;
        case 0x4f: BIN32(a >= b); break;
        case 0x50: UN64(a == 0); break;
        case 0x51: CMP64(a == b); break;
        case 0x52: CMP64(a != b); break;
        case 0x53: CMP64((int64_t)a < (int64_t)b); break;
        case 0x54: CMP64(a < b); break;
        case 0x55: CMP64((int64_t)a > (int64_t)b); break;
        case 0x56: CMP64(a > b); break;
        case 0x57: CMP64((int64_t)a <= (int64_t)b); break;
        case 0x58: CMP64(a <= b); break;
        case 0x59: CMP64((int64_t)a >= (int64_t)b); break;
        case 0x5a: CMP64(a >= b); break;
        case 0x5b: FCMP32(a == b); break;
        case 0x5c: FCMP32(a != b); break;
        case 0x5d: FCMP32(a < b); break;
        case 0x5e: FCMP32(a > b); break;
        case 0x5f: FCMP32(a <= b); break;
        case 0x60: FCMP32(a >= b); break;
        case 0x61: FCMP64(a == b); break;
        case 0x62: FCMP64(a != b); break;
        case 0x63: FCMP64(a < b); break;
        case 0x64: FCMP64(a > b); break;
        case 0x65: FCMP64(a <= b); break;
        case 0x66: FCMP64(a >= b); break;

        case 0x67: UN32(a ? wasm_clz64(a) - 32 : 32); break;
        case 0x68: UN32(a ? wasm_ctz64(a) : 32); break;
        case 0x69: UN32(wasm_popcnt64(a)); break;
        case 0x6a: BIN32(a + b); break;
        case 0x6b: BIN32(a - b); break;
        case 0x6c: BIN32(a * b); break;
        case 0x6d: DIV32((uint32_t)((int32_t)a / (int32_t)b), U(3), 4, 1); break;
        case 0x6e: DIV32(a / b, U(3), 4, 0); break;
        case 0x6f: DIV32(b == 0xffffffffu ? 0 : (uint32_t)((int32_t)a % (int32_t)b), U(3), 4, 0); break;
        case 0x70: DIV32(a % b, U(3), 4, 0); break;
        case 0x71: BIN32(a & b); break;
        case 0x72: BIN32(a | b); break;
        case 0x73: BIN32(a ^ b); break;
        case 0x74: BIN32(a << (b & 31)); break;
        case 0x75: BIN32((int32_t)a >> (b & 31)); break;
        case 0x76: BIN32(a >> (b & 31)); break;
        case 0x77: BIN32(rotl32(a, b)); break;
        case 0x78: BIN32(rotl32(a, 32 - (b & 31))); break;

        case 0x79: UN64(wasm_clz64(a)); break;
        case 0x7a: UN64(wasm_ctz64(a)); break;
        case 0x7b: UN64(wasm_popcnt64(a)); break;
        case 0x7c: BIN64(a + b); break;
        case 0x7d: BIN64(a - b); break;
        case 0x7e: BIN64(a * b); break;
        case 0x7f:
            if (!S(3)) { err = WASM_TRAP_DIV_ZERO; goto trap; }
            if (S(2) == 0x8000000000000000ull && S(3) == ~0ull) { err = WASM_TRAP_INT_OVERFLOW; goto trap; }
            BIN64((int64_t)a / (int64_t)b);
            break;
        case 0x80:
            if (!S(3)) { err = WASM_TRAP_DIV_ZERO; goto trap; }
            BIN64(a / b);
            break;
        case 0x81:
            if (!S(3)) { err = WASM_TRAP_DIV_ZERO; goto trap; }
            BIN64(b == ~0ull ? 0 : (int64_t)a % (int64_t)b);
            break;
        case 0x82:
            if (!S(3)) { err = WASM_TRAP_DIV_ZERO; goto trap; }
            BIN64(a % b);
            break;
        case 0x83: BIN64(a & b); break;
        case 0x84: BIN64(a | b); break;
        case 0x85: BIN64(a ^ b); break;
        case 0x86: BIN64(a << (b & 63)); break;
        case 0x87: BIN64((int64_t)a >> (b & 63)); break;
        case 0x88: BIN64(a >> (b & 63)); break;
        case 0x89: BIN64(wasm_rotl64(a, b)); break;
        case 0x8a: BIN64(wasm_rotl64(a, 64 - (b & 63))); break;

        case 0x8b: UNF((uint32_t)a & ~F32_SIGN); break;
        case 0x8c: UNF((uint32_t)a ^ F32_SIGN); break;
        case 0x8d: UNF(wasm_f32_round((uint32_t)a, WR_CEIL)); break;
        case 0x8e: UNF(wasm_f32_round((uint32_t)a, WR_FLOOR)); break;
        case 0x8f: UNF(wasm_f32_round((uint32_t)a, WR_TRUNC)); break;
        case 0x90: UNF(wasm_f32_round((uint32_t)a, WR_NEAREST)); break;
        case 0x91: UNF(wasm_f32_sqrt((uint32_t)a)); break;
        case 0x92: FBIN32(f32_add(a, b)); break;
        case 0x93: FBIN32(a - b); break;
        case 0x94: FBIN32(f32_mul(a, b)); break;
        case 0x95: FBIN32(a / b); break;
        case 0x96: { uint32_t a = U(2), b = U(3); S(1) = wasm_f32_minmax(a, b, 0); ip += 4; break; }
        case 0x97: { uint32_t a = U(2), b = U(3); S(1) = wasm_f32_minmax(a, b, 1); ip += 4; break; }
        case 0x98: BIN32((a & ~F32_SIGN) | (b & F32_SIGN)); break;
        case 0x99: UNF(a & ~F64_SIGN); break;
        case 0x9a: UNF(a ^ F64_SIGN); break;
        case 0x9b: UNF(wasm_f64_round(a, WR_CEIL)); break;
        case 0x9c: UNF(wasm_f64_round(a, WR_FLOOR)); break;
        case 0x9d: UNF(wasm_f64_round(a, WR_TRUNC)); break;
        case 0x9e: UNF(wasm_f64_round(a, WR_NEAREST)); break;
        case 0x9f: UNF(wasm_f64_sqrt(a)); break;
        case 0xa0: FBIN64(a + b); break;
        case 0xa1: FBIN64(a - b); break;
        case 0xa2: FBIN64(a * b); break;
        case 0xa3: FBIN64(a / b); break;
        case 0xa4: BIN64(wasm_f64_minmax(a, b, 0)); break;
        case 0xa5: BIN64(wasm_f64_minmax(a, b, 1)); break;
        case 0xa6: BIN64((a & ~F64_SIGN) | (b & F64_SIGN)); break;

        case 0xa7: UN32(a); break;
        case 0xa8: case 0xa9: case 0xaa: case 0xab: case 0xae: case 0xaf: case 0xb0: case 0xb1: {
            /* trapping float -> int: kind = 2*is64 + unsigned, source f64 for 0xaa/0xab/0xb0/0xb1 */
            static const uint8_t kind[10] = {0, 1, 0, 1, 0, 0, 2, 3, 2, 3};
            uint32_t k = (uint8_t)*ip - 0xa8;
            double d = (k == 2 || k == 3 || k >= 8) ? f64_of(S(2)) : (double)f32_of(S(2));
            wasm_slot out;
            int rc = wasm_trunc(d, kind[k], 0, &out);
            if (rc) { err = rc == 1 ? WASM_TRAP_INVALID_CONV : WASM_TRAP_INT_OVERFLOW; goto trap; }
            S(1) = out;
            ip += 3;
            break;
        }
        case 0xac: UN64((uint64_t)(int64_t)(int32_t)a); break;
        case 0xad: UN64((uint32_t)a); break;
        case 0xb2: UNF(slot_f32((float)(int32_t)a)); break;
        case 0xb3: UNF(slot_f32((float)(uint32_t)a)); break;
        case 0xb4: UNF(slot_f32((float)(int64_t)a)); break;
        case 0xb5: UNF(slot_f32((float)a)); break;
        case 0xb6: UNF(slot_f32((float)f64_of(a))); break;
        case 0xb7: UNF(slot_f64((double)(int32_t)a)); break;
        case 0xb8: UNF(slot_f64((double)(uint32_t)a)); break;
        case 0xb9: UNF(slot_f64((double)(int64_t)a)); break;
        case 0xba: UNF(slot_f64((double)a)); break;
        case 0xbb: UNF(slot_f64((double)f32_of(a))); break;
        case 0xbc: case 0xbd: case 0xbe: case 0xbf: S(1) = S(2); ip += 3; break; /* reinterpret */
        case 0xc0: UN32((uint32_t)(int32_t)(int8_t)a); break;
        case 0xc1: UN32((uint32_t)(int32_t)(int16_t)a); break;
        case 0xc2: UN64((uint64_t)(int64_t)(int8_t)a); break;
        case 0xc3: UN64((uint64_t)(int64_t)(int16_t)a); break;
        case 0xc4: UN64((uint64_t)(int64_t)(int32_t)a); break;

        /* i32 operators with an immediate right operand */
        case X_RI + 0: RI32(a == b); break;
        case X_RI + 1: RI32(a != b); break;
        case X_RI + 2: RI32((int32_t)a < (int32_t)b); break;
        case X_RI + 3: RI32(a < b); break;
        case X_RI + 4: RI32((int32_t)a > (int32_t)b); break;
        case X_RI + 5: RI32(a > b); break;
        case X_RI + 6: RI32((int32_t)a <= (int32_t)b); break;
        case X_RI + 7: RI32(a <= b); break;
        case X_RI + 8: RI32((int32_t)a >= (int32_t)b); break;
        case X_RI + 9: RI32(a >= b); break;
        case X_RI + 10: RI32(a + b); break;
        case X_RI + 11: RI32(a - b); break;
        case X_RI + 12: RI32(a * b); break;
        case X_RI + 13: DIV32((uint32_t)((int32_t)a / (int32_t)b), I32(3), 5, 1); break;
        case X_RI + 14: DIV32(a / b, I32(3), 5, 0); break;
        case X_RI + 15: DIV32(b == 0xffffffffu ? 0 : (uint32_t)((int32_t)a % (int32_t)b), I32(3), 5, 0); break;
        case X_RI + 16: DIV32(a % b, I32(3), 5, 0); break;
        case X_RI + 17: RI32(a & b); break;
        case X_RI + 18: RI32(a | b); break;
        case X_RI + 19: RI32(a ^ b); break;
        case X_RI + 20: RI32(a << (b & 31)); break;
        case X_RI + 21: RI32((int32_t)a >> (b & 31)); break;
        case X_RI + 22: RI32(a >> (b & 31)); break;
        case X_RI + 23: RI32(rotl32(a, b)); break;
        case X_RI + 24: RI32(rotl32(a, 32 - (b & 31))); break;
        case X_BCMP + 0: BCMP(a == b); break;
        case X_BCMP + 1: BCMP(a != b); break;
        case X_BCMP + 2: BCMP((int32_t)a < (int32_t)b); break;
        case X_BCMP + 3: BCMP(a < b); break;
        case X_BCMP + 4: BCMP((int32_t)a > (int32_t)b); break;
        case X_BCMP + 5: BCMP(a > b); break;
        case X_BCMP + 6: BCMP((int32_t)a <= (int32_t)b); break;
        case X_BCMP + 7: BCMP(a <= b); break;
        case X_BCMP + 8: BCMP((int32_t)a >= (int32_t)b); break;
        case X_BCMP + 9: BCMP(a >= b); break;
        case X_BCMPI + 0: BCMPI(a == b); break;
        case X_BCMPI + 1: BCMPI(a != b); break;
        case X_BCMPI + 2: BCMPI((int32_t)a < (int32_t)b); break;
        case X_BCMPI + 3: BCMPI(a < b); break;
        case X_BCMPI + 4: BCMPI((int32_t)a > (int32_t)b); break;
        case X_BCMPI + 5: BCMPI(a > b); break;
        case X_BCMPI + 6: BCMPI((int32_t)a <= (int32_t)b); break;
        case X_BCMPI + 7: BCMPI(a <= b); break;
        case X_BCMPI + 8: BCMPI((int32_t)a >= (int32_t)b); break;
        case X_BCMPI + 9: BCMPI(a >= b); break;
        case X_RSUB: { uint32_t b = U(2), a = I32(3); PUT32(&S(1), a - b); ip += 5; break; }
        case X_TRUNC_SAT + 0: case X_TRUNC_SAT + 1: case X_TRUNC_SAT + 2: case X_TRUNC_SAT + 3:
        case X_TRUNC_SAT + 4: case X_TRUNC_SAT + 5: case X_TRUNC_SAT + 6: case X_TRUNC_SAT + 7: {
            static const uint8_t kind[8] = {0, 1, 0, 1, 2, 3, 2, 3};
            uint32_t k = (uint8_t)*ip - X_TRUNC_SAT;
            double d = (k & 2) ? f64_of(S(2)) : (double)f32_of(S(2));
            wasm_slot out;
            (void)wasm_trunc(d, kind[k], 1, &out);
            S(1) = out;
            ip += 3;
            break;
        }
        UNUSED_OPS /* never produced by the translator */
            err = WASM_E_OPCODE;
            goto trap;
#if defined(__GNUC__)
        default: __builtin_unreachable(); /* every byte value has a case: no range check */
#else
        default: err = WASM_E_OPCODE; goto trap;
#endif
        }
        continue;

    do_call:
        if (callee->host) {
            uint32_t np = callee->type->nparams;
            owner->fuel = R.reserve + fuel;
            mask32(nfp, callee->type->params, np);
            err = callee->host(R.inst, callee->host_ctx, nfp);
            if (err) goto trap;
            if (R.inst->mem) { R.mb = R.inst->mem->data; R.msz = R.inst->mem->bytes; }
            continue;
        }
        if (R.nframes >= R.limit) { err = WASM_TRAP_STACK_OVERFLOW; goto trap; }
#if defined(WASM_JIT)
        if (callee->native) {
            if ((err = native(owner, callee, nfp, base + R.nframes, R.limit - R.nframes - 1, &fuel, &R.reserve)))
                goto trap;
            if (R.inst->mem) { R.mb = R.inst->mem->data; R.msz = R.inst->mem->bytes; }
            continue;
        }
#endif
        R.frames[R.nframes].ip = ip;
        R.frames[R.nframes].fp = fp;
        R.frames[R.nframes].fn = R.fn;
        R.nframes++;
    enter:
        R.fn = callee;
        LOAD_FN();
        if ((size_t)(owner->stack_end - nfp) < R.fd->frame_slots) {
            err = WASM_TRAP_STACK_OVERFLOW;
            goto trap;
        }
        /* nlocals < 65535 (the loader bounds a frame by X_NOSLOT) and fits the stack just checked */
        if (R.fd->nlocals) memset(nfp + R.fd->nparams, 0, R.fd->nlocals * sizeof *nfp);
        fp = nfp;
        ip = R.fd->code;
    }
done:
    owner->fuel = R.reserve + fuel;
    return WASM_OK;

trap:
    owner->fuel = R.reserve + fuel;
    return err;
}
