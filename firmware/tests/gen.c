/*
 * Random valid WebAssembly modules for differential fuzzing (tests/fuzz.c -g):
 * two functions (i32 i32) -> i32 over one page of memory, two mutable globals
 * and a table holding both. Bodies are typed expression trees of the integer
 * instruction set, with edge constants and offsets, loads and stores near the
 * end of memory, blocks left by br_if, br_table, if/else, a counted loop,
 * direct and indirect calls (f1 may reach f0 and itself), memory.grow, and at
 * times a float conversion that keeps a function out of the native tier.
 */
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
