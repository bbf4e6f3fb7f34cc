/*
 * Random WebAssembly modules for fuzzing (tests/fuzz.c).
 *
 * Valid modules for differential fuzzing (fuzz -g):
 * two functions (i32 i32) -> i32 over one page of memory, two mutable globals
 * and a table holding both. Bodies are typed expression trees of the integer
 * instruction set, with edge constants and offsets, loads and stores near the
 * end of memory, blocks left by br_if, br_table, if/else, a counted loop,
 * direct and indirect calls (f1 may reach f0 and itself), memory.grow, and at
 * times a float conversion that keeps a function out of the native tier.
 *
 * Size-edge modules (fuzz -e, tests/size_tests.c): one count at or past a limit where
 * it becomes a size, with the outcome the interpreter must give (see gen.h).
 */
#include <stdio.h>
#include <string.h>

#include "gen.h"

typedef struct {
    uint8_t *p, *end;
    uint32_t (*rnd)(void);
    int fn, in_loop, depth;
} gen;

static void b(gen *g, uint32_t v)
{
    if (g->p < g->end) *g->p++ = (uint8_t)v;
}

static void uleb(gen *g, uint32_t v)
{
    do { b(g, (v & 0x7f) | (v > 0x7f ? 0x80 : 0)); v >>= 7; } while (v);
}

static void sleb(gen *g, int64_t v)
{
    for (;;) {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        if ((v == 0 && !(byte & 0x40)) || (v == -1 && (byte & 0x40))) { b(g, byte); return; }
        b(g, byte | 0x80);
    }
}

static uint32_t pick(gen *g, uint32_t n) { return g->rnd() % n; }

static const uint32_t edges[] = {0, 1, 2, 3, 7, 8, 31, 32, 33, 63, 64, 255, 256, 0x7fff, 0x8000, 0xffff,
                                 0x10000, 65532, 65533, 65535, 0x7fffffff, 0x80000000u, 0xfffffffe, 0xffffffff};

static uint32_t value32(gen *g)
{
    return pick(g, 3) ? edges[pick(g, sizeof edges / sizeof edges[0])] : g->rnd();
}

static void i32e(gen *g);
static void i64e(gen *g);
static void stmt(gen *g);

/* An address: in bounds half of the time (masked to the page), anything otherwise. */
static void addr(gen *g)
{
    i32e(g);
    if (pick(g, 2)) { b(g, 0x41); sleb(g, 0xffff); b(g, 0x71); }
}

static void memarg(gen *g, uint32_t align)
{
    static const uint32_t offs[] = {0, 0, 1, 4, 8, 100, 65528, 65532, 65535, 65536, 0x7fffffff, 0xfffffff0u};
    uleb(g, align);
    uleb(g, offs[pick(g, sizeof offs / sizeof offs[0])]);
}

static void i32e(gen *g)
{
    static const uint8_t un[] = {0x45, 0x67, 0x68, 0x69, 0xc0, 0xc1};
    if (g->depth > 6 || pick(g, 6) == 0) {
        if (pick(g, 2)) { b(g, 0x41); sleb(g, (int32_t)value32(g)); }
        else { b(g, 0x20); uleb(g, pick(g, 4)); } /* params 0-1, i32 locals 2-3 */
        return;
    }
    g->depth++;
    switch (pick(g, 16)) {
    case 0: case 1: case 2:                               /* binary: compares and arithmetic */
        i32e(g); i32e(g);
        b(g, pick(g, 3) ? 0x6a + pick(g, 15) : 0x46 + pick(g, 10));
        break;
    case 3: i32e(g); b(g, un[pick(g, sizeof un)]); break;
    case 4: i64e(g); i64e(g); b(g, 0x51 + pick(g, 10)); break;  /* i64 compares */
    case 5: i64e(g); b(g, pick(g, 2) ? 0x50 : 0xa7); break;     /* i64.eqz, wrap */
    case 6: {                                             /* loads */
        static const uint8_t op[] = {0x28, 0x2c, 0x2d, 0x2e, 0x2f}, al[] = {2, 0, 0, 1, 1};
        uint32_t k = pick(g, 5);
        addr(g); b(g, op[k]); memarg(g, al[k]);
        break;
    }
    case 7: i32e(g); i32e(g); i32e(g); b(g, 0x1b); break;       /* select */
    case 8: b(g, 0x23); uleb(g, 0); break;                     /* global.get */
    case 9:                                               /* (block (result i32) v c br_if 0) */
        b(g, 0x02); b(g, 0x7f); i32e(g); i32e(g); b(g, 0x0d); uleb(g, 0); b(g, 0x0b);
        break;
    case 10: i32e(g); b(g, 0x22); uleb(g, 2 + pick(g, 2)); break; /* local.tee */
    case 11:                                              /* call f0 */
        if (g->fn == 1) { i32e(g); i32e(g); b(g, 0x10); uleb(g, 0); }
        else { b(g, 0x41); sleb(g, 5); }
        break;
    case 12:                                              /* call_indirect: f0, f1, or a trap */
        if (g->fn == 1) { i32e(g); i32e(g); i32e(g); b(g, 0x41); sleb(g, 3); b(g, 0x71); b(g, 0x11); uleb(g, 0); b(g, 0); }
        else { b(g, 0x3f); b(g, 0); }
        break;
    case 13: i32e(g); b(g, 0x41); sleb(g, 3); b(g, 0x71); b(g, 0x40); b(g, 0); break; /* memory.grow (0..3) */
    case 14:                                              /* a float round trip: interpreted */
        i32e(g); b(g, 0xb2); b(g, 0xfc); uleb(g, 0);
        break;
    default:                                              /* (if (result i32) c (then a) (else b)) */
        i32e(g); b(g, 0x04); b(g, 0x7f); i32e(g); b(g, 0x05); i32e(g); b(g, 0x0b);
        break;
    }
    g->depth--;
}

static void i64e(gen *g)
{
    if (g->depth > 6 || pick(g, 5) == 0) {
        if (pick(g, 2)) { b(g, 0x42); sleb(g, (int64_t)((uint64_t)value32(g) << (pick(g, 2) ? 32 : 0) | value32(g))); }
        else { b(g, 0x20); uleb(g, 4 + pick(g, 2)); }     /* i64 locals 4-5 */
        return;
    }
    g->depth++;
    switch (pick(g, 6)) {
    case 0: case 1: i64e(g); i64e(g); b(g, 0x7c + pick(g, 15)); break; /* add..rotr */
    case 2: i64e(g); b(g, 0x79 + pick(g, 3)); break;                   /* clz ctz popcnt */
    case 3: i32e(g); b(g, pick(g, 2) ? 0xac : 0xad); break;            /* extend_i32_s/u */
    case 4: {
        static const uint8_t op[] = {0x29, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35}, al[] = {3, 0, 0, 1, 1, 2, 2};
        uint32_t k = pick(g, 7);
        addr(g); b(g, op[k]); memarg(g, al[k]);
        break;
    }
    default: i64e(g); b(g, 0xc2 + pick(g, 3)); break;                  /* extend8/16/32_s */
    }
    g->depth--;
}

static void stmt(gen *g)
{
    g->depth++;
    switch (pick(g, 9)) {
    case 0: i32e(g); b(g, 0x21); uleb(g, 2); break;                    /* local.set */
    case 1: i64e(g); b(g, 0x21); uleb(g, 4 + pick(g, 2)); break;
    case 2: {                                                          /* i32 stores */
        static const uint8_t op[] = {0x36, 0x3a, 0x3b}, al[] = {2, 0, 1};
        uint32_t k = pick(g, 3);
        addr(g); i32e(g); b(g, op[k]); memarg(g, al[k]);
        break;
    }
    case 3: {                                                          /* i64 stores */
        static const uint8_t op[] = {0x37, 0x3c, 0x3d, 0x3e}, al[] = {3, 0, 1, 2};
        uint32_t k = pick(g, 4);
        addr(g); i64e(g); b(g, op[k]); memarg(g, al[k]);
        break;
    }
    case 4: i32e(g); b(g, 0x24); uleb(g, 0); break;                    /* global.set */
    case 5: i64e(g); b(g, 0x24); uleb(g, 1); break;
    case 6:                                                            /* if/else */
        i32e(g); b(g, 0x04); b(g, 0x40); stmt(g); b(g, 0x05); stmt(g); b(g, 0x0b);
        break;
    case 7:                                                            /* br_table over 3 blocks */
        b(g, 0x02); b(g, 0x40); b(g, 0x02); b(g, 0x40); b(g, 0x02); b(g, 0x40);
        i32e(g); b(g, 0x0e); uleb(g, 2); uleb(g, 0); uleb(g, 1); uleb(g, 2);
        b(g, 0x0b); stmt(g); b(g, 0x0b); stmt(g); b(g, 0x0b);
        break;
    default:                                                           /* a counted loop (local 3) */
        if (g->in_loop) { i32e(g); b(g, 0x1a); break; }                /* drop */
        g->in_loop = 1;
        b(g, 0x41); sleb(g, 0); b(g, 0x21); uleb(g, 3);
        b(g, 0x03); b(g, 0x40);
        stmt(g); stmt(g);
        b(g, 0x20); uleb(g, 3); b(g, 0x41); sleb(g, 1); b(g, 0x6a); b(g, 0x22); uleb(g, 3);
        b(g, 0x41); sleb(g, 1 + pick(g, 40)); b(g, 0x49); b(g, 0x0d); uleb(g, 0);
        b(g, 0x0b);
        g->in_loop = 0;
        break;
    }
    g->depth--;
}

static void body(gen *g, int fn)
{
    uint8_t buf[4096], *keep_p = g->p, *keep_end = g->end;
    gen inner = *g;
    inner.p = buf;
    inner.end = buf + sizeof buf;
    inner.fn = fn;
    inner.depth = 0;
    inner.in_loop = 0;
    b(&inner, 2); b(&inner, 2); b(&inner, 0x7f); b(&inner, 2); b(&inner, 0x7e); /* locals: 2 i32, 2 i64 */
    for (uint32_t n = 1 + pick(g, 4); n; n--) stmt(&inner);
    i32e(&inner);
    b(&inner, 0x0b);
    g->p = keep_p;
    g->end = keep_end;
    if (inner.p >= inner.end) { /* too big: a body that returns its first parameter */
        static const uint8_t small[] = {0, 0x20, 0, 0x0b};
        uleb(g, sizeof small);
        for (uint32_t i = 0; i < sizeof small; i++) b(g, small[i]);
        return;
    }
    uleb(g, (uint32_t)(inner.p - buf));
    for (uint8_t *q = buf; q < inner.p; q++) b(g, *q);
}

uint32_t gen_module(uint8_t *out, uint32_t cap, uint32_t (*rnd)(void))
{
    static const uint8_t head[] = {
        0, 'a', 's', 'm', 1, 0, 0, 0,
        1, 7, 1, 0x60, 2, 0x7f, 0x7f, 1, 0x7f,                    /* type 0: (i32 i32) -> i32 */
        3, 3, 2, 0, 0,                                           /* two functions */
        4, 4, 1, 0x70, 0, 2,                                     /* table of 2 */
        5, 3, 1, 0, 1,                                           /* memory 1 */
        6, 11, 2, 0x7f, 1, 0x41, 0, 0x0b, 0x7e, 1, 0x42, 0, 0x0b, /* mutable i32 and i64 globals */
        7, 11, 2, 2, 'f', '0', 0, 0, 2, 'f', '1', 0, 1,          /* exports f0, f1 */
        9, 8, 1, 0, 0x41, 0, 0x0b, 2, 0, 1,                      /* table = [f0, f1] */
    };
    uint8_t code[8192];
    gen g = {code, code + sizeof code, rnd, 0, 0, 0};
    b(&g, 2);
    body(&g, 0);
    body(&g, 1);
    uint32_t n = (uint32_t)(g.p - code), len = sizeof head;
    if (cap < len + 6 + n) return 0;
    memcpy(out, head, sizeof head);
    gen o = {out + len, out + cap, rnd, 0, 0, 0};
    b(&o, 10);
    uleb(&o, n);
    for (uint32_t i = 0; i < n; i++) b(&o, code[i]);
    return (uint32_t)(o.p - out);
}

/* ---------------------------------------------------------------- size-edge modules */

static uint32_t pick_of(uint32_t (*rnd)(void), const uint32_t *v, uint32_t n) { return v[rnd() % n]; }
#define PICK(rnd, arr) pick_of(rnd, arr, sizeof arr / sizeof arr[0])

void gen_edge_pick(gen_edge *e, uint32_t (*rnd)(void))
{
    static const uint32_t tables[] = {0, 1, 2, WASM_MAX_TABLE - 1, WASM_MAX_TABLE, WASM_MAX_TABLE + 1, 0x10000000u,
                                      0x3fffffffu, 0x40000000u, 0x40000001u, 0x7fffffffu, 0x80000000u, 0xfffffffeu,
                                      0xffffffffu};
    static const uint32_t elem_tables[] = {1, 2, 16, WASM_MAX_TABLE};
    static const uint32_t counts[] = {0, 1, 2, 64}, short_counts[] = {2, 65536, 0x40000000u, 0x7fffffffu, 0xffffffffu};
    static const uint32_t locals[] = {0, 1, 1000, 1022, 1023, 65533, 65534, 65535, 0x7fffffffu, 0x80000000u,
                                      0xfffffffeu, 0xffffffffu};
    static const uint32_t pages[] = {0, 1, 2, 65535, 65536, 65537, 0x7fffffffu, 0xffffffffu};
    static const uint32_t sections[] = {1, 2, 3, 4, 5, 6, 7, 9, 10, 11};
    static const uint32_t vec_counts[] = {0, 1, 0x10000, 0x40000000u, 0xffffffffu};
    memset(e, 0, sizeof *e);
    e->kind = (uint8_t)(rnd() % EDGE_KINDS);
    e->has_max = (uint8_t)(rnd() % 2);
    switch (e->kind) {
    case EDGE_TABLE:
    case EDGE_TABLE_IMPORT:
        e->a = rnd() % 4 ? PICK(rnd, tables) : rnd();
        e->b = rnd() % 4 ? PICK(rnd, tables) : rnd();
        e->lift = (uint8_t)(e->kind == EDGE_TABLE && rnd() % 3 == 0);
        if (e->lift && e->a > WASM_MAX_TABLE && e->a < 0x10000000u) e->a |= 0x10000000u; /* fits or never fits */
        break;
    case EDGE_ELEM:
    case EDGE_DATA: {
        static const uint32_t huge_tables[] = {0x10000000u, 0x40000000u, 0x80000000u, 0xffffffffu};
        e->lift = (uint8_t)(e->kind == EDGE_ELEM && rnd() % 4 == 0); /* a table that never fits the arena */
        uint32_t n = e->lift ? PICK(rnd, huge_tables) : e->kind == EDGE_ELEM ? PICK(rnd, elem_tables) : rnd() % 3;
        uint32_t end = e->kind == EDGE_ELEM ? n : n * 65536u;
        e->a = n;
        e->short_ = (uint8_t)(rnd() % 4 == 0);
        e->c = e->short_ ? PICK(rnd, short_counts) : e->kind == EDGE_DATA && rnd() % 2 ? 255 : PICK(rnd, counts);
        const uint32_t offs[] = {0, 1, end - 1, end, end + 1, end - e->c, 0x7fffffffu, 0x80000000u, 0xfffffff0u,
                                 0xffffffffu, 0u - e->c, 0u - e->c + 1};
        e->b = rnd() % 8 ? PICK(rnd, offs) : rnd();
        break;
    }
    case EDGE_LOCALS:
        e->a = PICK(rnd, locals);
        e->b = rnd() % 2 ? PICK(rnd, locals) : 0;
        break;
    case EDGE_MEMORY:
        e->a = PICK(rnd, pages);
        e->b = PICK(rnd, pages);
        break;
    default:
        e->a = PICK(rnd, vec_counts);
        e->b = PICK(rnd, sections);
        break;
    }
}

void gen_edge_name(const gen_edge *e, char *buf, size_t size)
{
    static const char *const kinds[EDGE_KINDS] = {"table", "imported table", "element segment", "data segment",
                                                  "locals", "memory", "vector count"};
    snprintf(buf, size, "%s a=%lu b=%lu c=%lu%s%s%s", kinds[e->kind], (unsigned long)e->a, (unsigned long)e->b,
             (unsigned long)e->c, e->has_max ? " max" : "", e->lift ? " lifted" : "", e->short_ ? " short" : "");
}

/* A section of n bytes of content (written to a scratch buffer first: its size leads it). */
static void section(gen *o, uint8_t id, const uint8_t *c, uint32_t n)
{
    b(o, id);
    uleb(o, n);
    for (uint32_t i = 0; i < n; i++) b(o, c[i]);
}

static void limits(gen *g, int has_max, uint32_t min, uint32_t max)
{
    b(g, has_max ? 1 : 0);
    uleb(g, min);
    if (has_max) uleb(g, max);
}

/* The i32 constant expression of a segment offset: offsets at 2^31 and above are negative i32s. */
static void offset_expr(gen *g, uint32_t off)
{
    b(g, 0x41);
    sleb(g, (int32_t)off);
    b(g, 0x0b);
}

static wasm_err table_load_want(const gen_edge *e, int has_max)
{
    if (has_max && e->a > e->b) return WASM_E_LIMITS_ORDER;
    if (e->a > (e->lift ? 0xffffffffu : WASM_MAX_TABLE)) return WASM_E_TABLE_LIMIT;
    return WASM_OK;
}

/* A table of n elements in GEN_EDGE_ARENA: whole with room to spare, or not at all (gen_edge_pick). */
static wasm_err table_inst_want(uint32_t n)
{
    return (uint64_t)n * sizeof(void *) + 65536u <= GEN_EDGE_ARENA ? WASM_OK : WASM_E_NOMEM;
}

/* Content of the one section an edge case is about, into c; returns its id. */
static uint8_t edge_section(const gen_edge *e, gen *c, gen_edge_want *w)
{
    uint32_t k;
    switch (e->kind) {
    case EDGE_TABLE:
        uleb(c, 1); b(c, 0x70); limits(c, e->has_max, e->a, e->b);
        w->load = table_load_want(e, e->has_max);
        w->inst = table_inst_want(e->a);
        return 4;
    case EDGE_TABLE_IMPORT: /* gen_edge_check offers a table of 4 with maximum 4 */
        uleb(c, 1); uleb(c, 1); b(c, 'e'); uleb(c, 1); b(c, 't'); b(c, 1); b(c, 0x70); limits(c, e->has_max, e->a, e->b);
        w->load = table_load_want(e, e->has_max);
        w->inst = e->a <= 4 && (!e->has_max || e->b >= 4) ? WASM_OK : WASM_E_IMPORT_TYPE;
        return 2;
    case EDGE_ELEM:
        uleb(c, 1); uleb(c, 0); offset_expr(c, e->b); uleb(c, e->c);
        for (k = 0; k < (e->short_ ? 1 : e->c); k++) uleb(c, 0);
        w->load = table_load_want(e, 0) ? table_load_want(e, 0) : e->short_ ? WASM_E_EOF : WASM_OK;
        w->inst = table_inst_want(e->a) ? table_inst_want(e->a) /* the table comes before the segments */
                : (uint64_t)e->b + e->c > e->a ? WASM_TRAP_TABLE_OOB : WASM_OK;
        return 9;
    case EDGE_DATA:
        uleb(c, 1); uleb(c, 0); offset_expr(c, e->b); uleb(c, e->c);
        for (k = 0; k < (e->short_ ? 1 : e->c); k++) b(c, k * 7 + 1);
        w->load = e->short_ ? WASM_E_EOF : WASM_OK;
        w->inst = (uint64_t)e->b + e->c > (uint64_t)e->a * 65536u ? WASM_TRAP_MEM_OOB : WASM_OK;
        return 11;
    case EDGE_MEMORY:
        uleb(c, 1); limits(c, e->has_max, e->a, e->b);
        w->load = e->a > 65536 || (e->has_max && e->b > 65536) ? WASM_E_MEM_LIMITS
                : e->has_max && e->a > e->b ? WASM_E_LIMITS_ORDER : WASM_OK;
        return 5;
    default: /* EDGE_COUNT: a vector count, then nothing */
        uleb(c, e->a);
        w->load = !e->a ? WASM_OK : e->b == 10 ? WASM_E_FUNC_COUNT : WASM_E_EOF;
        return (uint8_t)e->b;
    }
}

uint32_t gen_edge_module(const gen_edge *e, uint8_t *out, uint32_t cap, gen_edge_want *w)
{
    static const uint8_t type[] = {1, 0x60, 0, 1, 0x7f}, func[] = {1, 0}, export_f[] = {1, 1, 'f', 0, 0};
    uint8_t buf[512];
    gen o = {out, out + cap, NULL, 0, 0, 0}, c = {buf, buf + sizeof buf, NULL, 0, 0, 0};
    w->load = w->inst = w->call = WASM_OK;
    static const uint8_t head[] = {0, 'a', 's', 'm', 1, 0, 0, 0};
    for (uint32_t i = 0; i < sizeof head; i++) b(&o, head[i]);
    if (e->kind == EDGE_LOCALS) {
        uint64_t total = (uint64_t)e->a + e->b;
        section(&o, 1, type, sizeof type);
        section(&o, 3, func, sizeof func);
        section(&o, 7, export_f, sizeof export_f);
        uleb(&c, 1);                                  /* one body */
        uint8_t body[32];
        gen bd = {body, body + sizeof body, NULL, 0, 0, 0};
        uleb(&bd, (e->a != 0) + (e->b != 0));         /* groups */
        if (e->a) { uleb(&bd, e->a); b(&bd, 0x7f); }
        if (e->b) { uleb(&bd, e->b); b(&bd, 0x7e); }
        if (e->a) { b(&bd, 0x20); uleb(&bd, 0); } else { b(&bd, 0x41); sleb(&bd, 7); } /* local.get 0, or 7 */
        b(&bd, 0x0b);
        uleb(&c, (uint32_t)(bd.p - body));
        for (uint8_t *q = body; q < bd.p; q++) b(&c, *q);
        section(&o, 10, buf, (uint32_t)(c.p - buf));
        w->load = total > 0xffffffffu ? WASM_E_TOO_MANY_LOCALS : total >= 0xffffu ? WASM_E_IMPL_LIMIT : WASM_OK;
        w->call = total + 1 > GEN_EDGE_STACK_SLOTS ? WASM_TRAP_STACK_OVERFLOW : WASM_OK; /* frame: locals + 1 */
        return o.p < o.end ? (uint32_t)(o.p - out) : 0;
    }
    if (e->kind == EDGE_ELEM) { /* a function to put in the table, and the table */
        section(&o, 1, type, sizeof type);
        section(&o, 3, func, sizeof func);
        gen t = {buf, buf + sizeof buf, NULL, 0, 0, 0};
        uleb(&t, 1); b(&t, 0x70); limits(&t, 0, e->a, 0);
        section(&o, 4, buf, (uint32_t)(t.p - buf));
    }
    if (e->kind == EDGE_DATA) {
        gen t = {buf, buf + sizeof buf, NULL, 0, 0, 0};
        uleb(&t, 1); limits(&t, 0, e->a, 0);
        section(&o, 5, buf, (uint32_t)(t.p - buf));
    }
    c.p = buf;
    uint8_t id = edge_section(e, &c, w);
    section(&o, id, buf, (uint32_t)(c.p - buf));
    if (e->kind == EDGE_ELEM) { /* the function's body: i32.const 7 */
        static const uint8_t code[] = {1, 4, 0, 0x41, 7, 0x0b};
        section(&o, 10, code, sizeof code);
    }
    if (w->load) w->inst = WASM_OK;
    return o.p < o.end ? (uint32_t)(o.p - out) : 0;
}

static wasm_ref edge_elems[4];
static wasm_table edge_table = {.elems = edge_elems, .size = 4, .max = 4, .cap = 4, .has_max = 1, .type = WASM_FUNCREF};

static wasm_err edge_resolve(void *ctx, const wasm_import *im, wasm_extern *out)
{
    (void)ctx;
    if (im->kind != WASM_EXTERN_TABLE) return WASM_E_UNKNOWN_IMPORT;
    out->kind = WASM_EXTERN_TABLE;
    out->table = &edge_table;
    return WASM_OK;
}

#define EDGE_FAIL(...) do { snprintf(why, why_size, __VA_ARGS__); return 1; } while (0)

/* What a module that instantiated left: the table's and memory's sizes, the segments' contents. */
static int edge_after(const gen_edge *e, wasm_instance *inst, const wasm_module *m, char *why, size_t why_size)
{
    wasm_table *t = wasm_instance_table(inst);
    wasm_memory *mem = wasm_instance_memory(inst);
    switch (e->kind) {
    case EDGE_TABLE:
        if (!t || t->size != e->a) EDGE_FAIL("table size %lu", t ? (unsigned long)t->size : 0ul);
        if (e->a && t->elems[e->a - 1]) EDGE_FAIL("last element set"); /* read at the end: a short table faults */
        break;
    case EDGE_ELEM:
        if (e->c && (t->elems[e->b] != wasm_instance_func(inst, 0) || t->elems[e->b + e->c - 1] != wasm_instance_func(inst, 0)))
            EDGE_FAIL("segment not in the table");
        break;
    case EDGE_DATA: {
        uint64_t end = (uint64_t)e->b + e->c;
        if (wasm_module_data_end(m) != (end > 0xffffffffu ? 0xffffffffu : end))
            EDGE_FAIL("data end %lu", (unsigned long)wasm_module_data_end(m));
        if (!mem || mem->bytes != e->a * 65536u) EDGE_FAIL("memory bytes %lu", mem ? (unsigned long)mem->bytes : 0ul);
        for (uint32_t k = 0; k < e->c; k++)
            if (mem->data[e->b + k] != (uint8_t)(k * 7 + 1)) EDGE_FAIL("data byte %lu", (unsigned long)k);
        break;
    }
    case EDGE_MEMORY: {
        uint64_t want = (uint64_t)e->a * 65536u;
        if (want > GEN_EDGE_MEM_CAP) want = GEN_EDGE_MEM_CAP;
        if (!mem || mem->pages != e->a || mem->bytes != want)
            EDGE_FAIL("memory pages %lu bytes %lu", mem ? (unsigned long)mem->pages : 0ul, mem ? (unsigned long)mem->bytes : 0ul);
        break;
    }
    }
    return 0;
}

int gen_edge_check(const gen_edge *e, const uint8_t *bin, uint32_t len, const gen_edge_want *want,
                   uint8_t *arena, size_t arena_size, char *why, size_t why_size)
{
    wasm_arena a;
    wasm_module *m;
    wasm_instance *inst = NULL;
    wasm_config cfg;
    wasm_load_limits lim = {.max_table = e->lift ? 0xffffffffu : 0};
    if (arena_size < GEN_EDGE_ARENA) EDGE_FAIL("arena of %lu bytes, %lu needed", (unsigned long)arena_size, (unsigned long)GEN_EDGE_ARENA);
    wasm_arena_init(&a, arena, GEN_EDGE_ARENA);
    wasm_err err = wasm_module_load_limited(bin, len, &lim, &a, &m);
    if (err != want->load) EDGE_FAIL("load: got '%s', want '%s'", wasm_err_str(err), wasm_err_str(want->load));
    if (err) return 0;
    memset(&cfg, 0, sizeof cfg);
    cfg.resolve = edge_resolve;
    cfg.mem_cap = GEN_EDGE_MEM_CAP;
    cfg.stack_slots = GEN_EDGE_STACK_SLOTS;
    err = wasm_instantiate(m, &cfg, &a, 1000, &inst);
    if (err != want->inst) EDGE_FAIL("instantiate: got '%s', want '%s'", wasm_err_str(err), wasm_err_str(want->inst));
    if (a.used > GEN_EDGE_ARENA) EDGE_FAIL("arena overrun");
    if (err) return 0;
    if (edge_after(e, inst, m, why, why_size)) return 1;
    int32_t f = wasm_module_export(m, "f", 1, WASM_EXTERN_FUNC);
    if (f < 0) return 0;
    wasm_slot r[1] = {0xdead};
    wasm_set_fuel(inst, 1000);
    err = wasm_call(inst, (uint32_t)f, r);
    if (err != want->call) EDGE_FAIL("call: got '%s', want '%s'", wasm_err_str(err), wasm_err_str(want->call));
    if (!err && r[0] != (e->a ? 0u : 7u)) EDGE_FAIL("call result %llu", (unsigned long long)r[0]);
    return 0;
}
