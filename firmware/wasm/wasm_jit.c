/*
 * Native tier (-DWASM_JIT, ARMv7-M only). At instantiation every function
 * whose register code (wasm_int.h) it has templates for is compiled to Thumb-2 in
 * the instance's arena. Each register instruction becomes a fixed template over
 * the same frame slots, so results, traps and fuel are the interpreter's:
 * fuel is charged at the same X_FUEL points, bounds are checked on every
 * access, and the value stack and call depth have the same limits. Bulk
 * memory, table and reference instructions (X_EXT) call the interpreter's
 * own implementation. f32 arithmetic, compares, sqrt, abs/neg/copysign and the
 * i32 <-> f32 conversions run on the FPU (VADD/VSUB/VMUL/VDIV/VSQRT/VCMP/VCVT, s0-s1
 * only, which C calls may clobber); they rely on FPSCR as at reset (round to
 * nearest, no flush-to-zero, no default NaN), as the interpreter's own float code
 * does: ARM then gives wasm's results, quieting a NaN operand (the first of two,
 * as the interpreter's f32 add and mul are pinned to), and VCVT to integer rounds
 * toward zero, saturates and maps NaN to 0, as trunc_sat does. The other float
 * operators (f64, min/max, rounding, trapping or i64 conversions) call a C helper
 * that computes them as the interpreter does. A function with a call_indirect
 * through a table other than 0, or more than 511 frame slots, stays interpreted;
 * compiled and interpreted functions call each other both ways.
 *
 * Registers while native code runs:
 *   r0-r3  scratch            r4  fp (the frame's slots)
 *   r5     linear memory base r6  accessible bytes
 *   r7     fuel (32-bit part) r8  wasm_jit_ctx
 *   r9     value stack end    r10 lowest sp allowed (call depth)
 *   r11    accessible bytes - 3 (0 below 3): 4-byte accesses are checked against it
 * An innermost loop without calls may push r9 and r10 and keep locals in them (see
 * "locals kept in registers through a loop"), popping them on every way out.
 * A compiled function is entered with its frame in r0, keeps {r4, lr} on
 * the machine stack and returns a wasm_err in r0 (its result in fp[0]), with
 * the Z flag set if it is 0 (compiled callers branch on it without a compare).
 * C code it calls preserves r4-r11 (AAPCS), so builds must not reserve r9
 * (-ffixed-r9, ROPI/RWPI position independence).
 */
#include <stddef.h>
#include <string.h>
#include "wasm_int.h"
#include "wasm_num.h"
#include "../common/size.h"

#if defined(WASM_JIT)
#if !defined(__thumb2__)
#error "WASM_JIT generates Thumb-2 code: build it for an ARMv7-M core"
#endif

enum { FP = 4, MSZ = 6, FUEL = 7, CTX = 8, MSZ4 = 11 };
enum { EQ = 0, NE = 1, CS = 2, CC = 3, HI = 8, LS = 9, GE = 10, LT = 11, GT = 12, LE = 13, AL = 14 };
enum { T_UNREACH, T_OOB, T_DIV, T_OVF, T_STACK, T_EXIT, T_OOB_SP, T_EXIT_SP, NSTUB }; /* _SP: with {r9, r10} pushed */
static const uint8_t stub_err[T_EXIT] = {WASM_TRAP_UNREACHABLE, WASM_TRAP_MEM_OOB, WASM_TRAP_DIV_ZERO,
                                         WASM_TRAP_INT_OVERFLOW, WASM_TRAP_STACK_OVERFLOW};
/* Condition that holds for i32 comparison k (0x46 + k: eq ne lt_s lt_u gt_s gt_u le_s le_u ge_s ge_u). */
static const uint8_t cmp_cc[10] = {EQ, NE, LT, CC, GT, HI, LE, LS, GE, CS};

_Static_assert(offsetof(wasm_jit_ctx, mb) == 0 && offsetof(wasm_jit_ctx, msz) == 4 &&
               offsetof(wasm_jit_ctx, fuel) == 8 && offsetof(wasm_jit_ctx, depth) == 12 &&
               offsetof(wasm_jit_ctx, stack_end) == 16 && offsetof(wasm_jit_ctx, floor) == 20 &&
               offsetof(wasm_jit_ctx, msz4) == 24,
               "the entry sequence below reads these offsets");
_Static_assert(_Alignof(wasm_func) >= 2, "lookup tells a wasm_func (even) from a Thumb entry (odd)");

typedef struct jit {
    uint16_t *out;        /* the function's code; NULL while sizing */
    uint32_t n;           /* halfwords so far */
    uint32_t *map;        /* code unit -> halfword of its template; NULL while sizing */
    uint32_t base;        /* the function's first halfword in the instance's code */
    uint32_t *ent;        /* per own function: WASM_NONE if interpreted, else size or start */
    wasm_instance *inst;
    uint32_t stub[NSTUB]; /* where the trap stubs are (known from the pass before) */
    int bound;            /* sizing for an upper bound: every X_CALL in its longer (helper) form */
    uint32_t *tgt;        /* bit per code unit of the function: a branch lands there (NULL: none kept) */
    uint32_t *tgt_all, *toff; /* every function's bitmap (NULL: none), and where each one's starts, in words */
    uint8_t *marked;      /* per function: its bitmap is filled in (once, for every pass) */
    uint32_t fi;          /* the function being emitted */
    int ret32;            /* it returns one i32 or f32 */
    int marking;          /* walking the function to set tgt */
    uint32_t r0;          /* the slot whose low word r0 holds at this point of the code, or WASM_NONE */
    uint32_t have;        /* that slot as the instruction being emitted began */
    const wasm_code *c, *end; /* the function's register code */
    uint32_t cs[16];      /* per register of the cache (pool below): the slot whose low word it holds */
    uint32_t age[16], clock; /* when each was last used */
    uint32_t dirty;       /* registers of the cache whose slot is not stored yet (a bit each) */
    const wasm_code *next; /* the instruction after the one being emitted (NULL: it branches) */
    wasm_arena *a;        /* the instance's arena (scratch for the liveness below) */
    uint32_t *live;       /* per place a branch lands: the slots live there, lw words each (NULL: all live) */
    uint32_t *rank;       /* per word of tgt: the places a branch lands before it */
    uint32_t lw;          /* words of a live set */
    uint32_t **lv;        /* per own function: its rank words then live sets (NULL: no liveness) */
    uint32_t pin, pinw;   /* registers a loop keeps locals in (below), those the loop writes */
    int pinsp, usedsp;    /* that loop uses r9 and r10 (pushed); some loop of the function did */
    uint32_t pin_head, pin_end; /* that loop's code units: [head, end) */
    uint32_t ni;          /* instructions so far (pin_trial's measure) */
    uint32_t s0;          /* the slot whose value s0 holds (an f32 template's operand or result), or WASM_NONE */
    uint32_t *pinc;       /* per place a branch lands: pin_enter's decision, 3 words (0: not made yet) */
    const uint32_t *entry; /* the slots live where the function starts */
    const uint32_t *src;  /* per place a branch lands: the first and last code unit a branch to it starts at */
} jit;

/*
 * Largest function and instance code, in halfwords, that the branches reach:
 * B<cond>.W spans +-1 MiB (trap stubs sit at the end of each function), BL +-16 MiB.
 */
#define MAX_FUNC_HW (1u << 19)
#define MAX_CODE_HW (1u << 23)

static void h16(jit *j, uint32_t v)
{
    if (j->out) j->out[j->n] = (uint16_t)v;
    j->n++;
    j->ni++;
}

static void h32(jit *j, uint32_t hw1, uint32_t hw2) { h16(j, hw1); h16(j, hw2); j->ni--; }

/* B<cond>.W (AL: B.W), or BL when link, to halfword `to` of the function (BL: of the instance). */
static void branch(jit *j, uint32_t cond, uint32_t to, int link)
{
    uint32_t u = (to - ((link ? j->base : 0) + j->n + 2)) * 2, s = u >> 31;
    if (cond == AL)
        h32(j, 0xf000 | s << 10 | ((u >> 12) & 0x3ff),
            (link ? 0xd000 : 0x9000) | ((~(u >> 23) ^ s) & 1) << 13 | ((~(u >> 22) ^ s) & 1) << 11 | ((u >> 1) & 0x7ff));
    else
        h32(j, 0xf000 | s << 10 | cond << 6 | ((u >> 12) & 0x3f),
            0x8000 | ((u >> 18) & 1) << 13 | ((u >> 19) & 1) << 11 | ((u >> 1) & 0x7ff));
}

/* A 16-bit forward B<cond> emitted as a placeholder at `at`, pointed here. */
static void land(jit *j, uint32_t at, uint32_t cond)
{
    if (j->out) j->out[at] = (uint16_t)(0xd000 | cond << 8 | (j->n - at - 2));
}

static void movw(jit *j, uint32_t op, uint32_t rd, uint32_t v)
{
    h32(j, op | ((v >> 11) & 1) << 10 | v >> 12, ((v >> 8) & 7) << 12 | rd << 8 | (v & 0xff));
}

/* rd (r0-r3) = v; the short forms set the flags. */
static void konst(jit *j, uint32_t rd, uint32_t v)
{
    if (v < 256) {
        h16(j, 0x2000 | rd << 8 | v);                         /* movs rd, #v */
    } else if (~v < 256) {
        h16(j, 0x2000 | rd << 8 | (~v & 0xff));               /* movs rd, #~v */
        h16(j, 0x43c0 | rd << 3 | rd);                        /* mvns rd, rd */
    } else {
        movw(j, 0xf240, rd, v & 0xffff);                      /* movw */
        if (v >> 16) movw(j, 0xf2c0, rd, v >> 16);            /* movt */
    }
}

/* ldr/str rt, [fp, #off] */
static void slot32(jit *j, int load, uint32_t rt, uint32_t off)
{
    if (off < 128 && !(off & 3))
        h16(j, (load ? 0x6800 : 0x6000) | (off >> 2) << 6 | FP << 3 | rt);
    else
        h32(j, (load ? 0xf8d0 : 0xf8c0) | FP, rt << 12 | off);
}
#define LD(r, s) slot32(j, 1, (r), (uint32_t)(s) * 8u)
#define ST(r, s) slot32(j, 0, (r), (uint32_t)(s) * 8u)

/*
 * r0 = fp[s]'s low word, unless r0 holds it already: a template that ends storing r0 to
 * a slot says so in j->r0, and the next instruction's first load of it is left out
 * (not where a branch lands: j->r0 is forgotten there).
 */
static void ld0(jit *j, uint32_t s)
{
    if (j->have != s) LD(0, s);
}

/* ldrd/strd lo, hi, [fp, #slot*8] */
static void slot64(jit *j, int load, uint32_t lo, uint32_t hi, uint32_t s)
{
    if (s * 8 <= 1020) {
        h32(j, (load ? 0xe9d0 : 0xe9c0) | FP, lo << 12 | hi << 8 | s * 2);
    } else {
        slot32(j, load, lo, s * 8);
        slot32(j, load, hi, s * 8 + 4);
    }
}

/* ldr.w/str.w rt, [ctx, #off] */
static void ctx32(jit *j, int load, uint32_t rt, uint32_t off) { h32(j, (load ? 0xf8d0 : 0xf8c0) | CTX, rt << 12 | off); }

/* addw rd, rn, #v (v < 4096) */
static void addw(jit *j, uint32_t rd, uint32_t rn, uint32_t v)
{
    h32(j, 0xf200 | ((v >> 11) & 1) << 10 | rn, ((v >> 8) & 7) << 12 | rd << 8 | (v & 0xff));
}

/* r0 = cond ? 1 : 0 from the flags (ite; movs r0, #1; movs r0, #0). */
static void setcc(jit *j, uint32_t cond)
{
    h16(j, 0xbf00 | cond << 4 | (~cond & 1) << 3 | 4);
    h16(j, 0x2001);
    h16(j, 0x2000);
}

static void fail(jit *j, uint32_t cond, uint32_t stub)
{
    if (j->pinsp) stub = stub == T_OOB ? T_OOB_SP : stub == T_EXIT ? T_EXIT_SP : stub; /* (only those occur there) */
    branch(j, cond, j->stub[stub], 0);
}

/* Calls helper ctx->fn(ctx, r1, r2, r3) with fuel saved; reloads memory; traps on a nonzero result. */
static void helper_call(jit *j, uint32_t fn_off)
{
    ctx32(j, 0, FUEL, offsetof(wasm_jit_ctx, fuel));
    h16(j, 0x4640);                                           /* mov r0, r8 */
    ctx32(j, 1, 12, fn_off);
    h16(j, 0x47e0);                                           /* blx ip */
    ctx32(j, 1, FUEL, offsetof(wasm_jit_ctx, fuel));
    ctx32(j, 1, 5, offsetof(wasm_jit_ctx, mb));
    ctx32(j, 1, MSZ, offsetof(wasm_jit_ctx, msz));
    ctx32(j, 1, MSZ4, offsetof(wasm_jit_ctx, msz4));
    h16(j, 0x2800);                                           /* cmp r0, #0 */
    fail(j, NE, T_EXIT);
}

/* Charge n fuel: subs from r7, and on a borrow ask the helper (the 64-bit reserve, or a trap). */
static void fuel(jit *j, uint32_t n)
{
    if (n < 256) h16(j, 0x3f00 | n);                          /* subs r7, #n */
    else { konst(j, 1, n); h16(j, 0x1a7f); }                  /* subs r7, r7, r1 */
    uint32_t at = j->n;
    h16(j, 0);
    if (n < 256) { h16(j, 0x3700 | n); h16(j, 0x2100 | n); }  /* adds r7, #n; movs r1, #n */
    else h16(j, 0x187f);                                      /* adds r7, r7, r1 */
    h16(j, 0x463a);                                           /* mov r2, r7 */
    helper_call(j, offsetof(wasm_jit_ctx, refuel));
    land(j, at, CS);
}

/*
 * Effective address of an N-byte access at [fp[as] + off] into r1, plus N - 1
 * (the access then uses offset -(N - 1)), with the bounds check.
 */
static void address(jit *j, uint32_t as, uint32_t off, uint32_t n)
{
    uint64_t k = (uint64_t)off + n - 1;
    ld0(j, as);
    if (k > 0xffffffffu) { fail(j, AL, T_OOB); return; }
    if (!k) {                                                 /* no carry to check */
        h16(j, 0x42b0);                                       /* cmp r0, r6 */
        fail(j, CS, T_OOB);
        h16(j, 0x1941);                                       /* adds r1, r0, r5 */
        return;
    }
    if (k < 8) {
        h16(j, 0x1c01 | (uint32_t)k << 6);                    /* adds r1, r0, #k */
    } else {
        konst(j, 1, (uint32_t)k);
        h16(j, 0x1841);                                       /* adds r1, r0, r1 */
    }
    fail(j, CS, T_OOB);
    h16(j, 0x42b1);                                           /* cmp r1, r6 */
    fail(j, CS, T_OOB);
    h16(j, 0x4429);                                           /* add r1, r5 */
}

/* A VFP data-processing instruction on single registers: first halfword base | D | Vn, second base2 | Vd | N | M | Vm. */
static void vfp(jit *j, uint32_t hw1, uint32_t hw2, uint32_t d, uint32_t n, uint32_t m)
{
    h32(j, hw1 | (d & 1) << 6 | n >> 1, hw2 | (d >> 1) << 12 | (n & 1) << 7 | (m & 1) << 5 | m >> 1);
}

/* Condition that holds after vcmp a, b; vmrs for f32 eq ne lt gt le ge (unordered: only ne). */
static const uint8_t fcmp_cc[6] = {EQ, NE, 4 /* MI */, GT, LS, GE};

/* A load or store of rt at [r1, #-d]; op is its T3/T4 first halfword with Rn = 0. */
static void mem_op(jit *j, uint32_t op, uint32_t rt, uint32_t d) { h32(j, op | 1, rt << 12 | 0xc00 | d); }

/* Loads 0x28..0x35: access size, instruction, how the high half is made (0 not, 1 zero, 2 sign, 3 loaded). */
static const struct { uint8_t n; uint16_t op; uint8_t hi; } loads[14] = {
    {4, 0xf850, 0}, {8, 0xf850, 3}, {4, 0xf850, 0}, {8, 0xf850, 3},
    {1, 0xf910, 0}, {1, 0xf810, 0}, {2, 0xf930, 0}, {2, 0xf830, 0},
    {1, 0xf910, 2}, {1, 0xf810, 1}, {2, 0xf930, 2}, {2, 0xf830, 1}, {4, 0xf850, 2}, {4, 0xf850, 1},
};
/* Stores 0x36..0x3e: access size and instruction. */
static const struct { uint8_t n; uint16_t op; } stores[9] = {
    {4, 0xf840}, {8, 0xf840}, {4, 0xf840}, {8, 0xf840}, {1, 0xf800}, {2, 0xf820}, {1, 0xf800}, {2, 0xf820}, {4, 0xf840},
};

/* v as a Thumb-2 modified immediate (i:imm3:imm8), or -1 if it has none. */
static int32_t modimm(uint32_t v)
{
    uint32_t b = v & 0xff;
    if (v < 256) return (int32_t)v;
    if (v == (b | b << 16)) return (int32_t)(0x100 | b);
    if (v == (b << 8 | b << 24)) return (int32_t)(0x200 | (v >> 8 & 0xff));
    if (v == b * 0x01010101u) return (int32_t)(0x300 | b);
    for (uint32_t rot = 8; rot < 32; rot++) {
        uint32_t u = v << rot | v >> (32 - rot); /* v = u ror rot */
        if (u >= 0x80 && u <= 0xff) return (int32_t)(rot << 7 | (u & 0x7f));
    }
    return -1;
}

/* <op>{s} rd, rn, #imm12 (a modified immediate): op is the data-processing opcode (AND 0, ORR 2, EOR 4, ADD 8, SUB 13). */
static void dp_imm(jit *j, uint32_t op, uint32_t s, uint32_t rd, uint32_t rn, uint32_t imm12)
{
    h32(j, 0xf000 | (imm12 >> 11 & 1) << 10 | op << 5 | s << 4 | rn, (imm12 >> 8 & 7) << 12 | rd << 8 | (imm12 & 0xff));
}

/* i32 r0 = r0 <op> r1 for division and remainder (0x6d..0x70), with their traps. */
static void div32(jit *j, uint32_t op)
{
    h16(j, 0x2900);                                           /* cmp r1, #0 */
    fail(j, EQ, T_DIV);
    if (op == 0x6d) {                                         /* INT_MIN / -1 */
        h16(j, 0x1c4a);                                       /* adds r2, r1, #1 */
        uint32_t at = j->n;
        h16(j, 0);
        h32(j, 0xf1b0, 0x4f00);                               /* cmp r0, #0x80000000 */
        fail(j, EQ, T_OVF);
        land(j, at, NE);
    }
    /* sdiv/udiv r2, r0, r1 */
    h32(j, (op == 0x6d || op == 0x6f) ? 0xfb90 : 0xfbb0, 0xf2f1);
    if (op <= 0x6e) h16(j, 0x4610);                           /* mov r0, r2 */
    else h32(j, 0xfb02, 0x0010 | 0x0001);                     /* mls r0, r2, r1, r0 */
}

/* i64 fp[a] <op> fp[b] into fp[d] for the operators with a template; 0 if none (nothing emitted). */
static int alu64(jit *j, uint32_t op, uint32_t d, uint32_t a, uint32_t b)
{
    if ((op >= 0x7f && op <= 0x82) || op >= 0x86) return 0; /* division, shifts, rotations */
    slot64(j, 1, 0, 1, a);
    slot64(j, 1, 2, 3, b);
    if (op == 0x51 || op == 0x52) {
        h16(j, 0x4299);                                       /* cmp r1, r3 */
        h16(j, 0xbf08);                                       /* it eq */
        h16(j, 0x4290);                                       /* cmpeq r0, r2 */
        setcc(j, op == 0x51 ? EQ : NE);
        ST(0, d);
        return 1;
    }
    if (op >= 0x53 && op <= 0x5a) {
        /* a < b and a >= b from a - b; a > b and a <= b from b - a */
        static const uint8_t cc[8] = {LT, CC, LT, CC, GE, CS, GE, CS};
        int swap = op == 0x55 || op == 0x56 || op == 0x57 || op == 0x58;
        if (swap) { h16(j, 0x1a12); h16(j, 0x418b); }         /* subs r2, r2, r0; sbcs r3, r1 */
        else { h16(j, 0x1a80); h16(j, 0x4199); }              /* subs r0, r0, r2; sbcs r1, r3 */
        setcc(j, cc[op - 0x53]);
        ST(0, d);
        return 1;
    }
    switch (op) {
    case 0x7c: h16(j, 0x1880); h16(j, 0x4159); break;         /* adds r0, r0, r2; adcs r1, r3 */
    case 0x7d: h16(j, 0x1a80); h16(j, 0x4199); break;         /* subs r0, r0, r2; sbcs r1, r3 */
    case 0x7e:
        h16(j, 0x4351);                                       /* muls r1, r2, r1: a.hi * b.lo */
        h32(j, 0xfb00, 0x1103);                               /* mla r1, r0, r3, r1: + a.lo * b.hi */
        h32(j, 0xfba0, 0x0202);                               /* umull r0, r2, r0, r2 */
        h16(j, 0x1889);                                       /* adds r1, r1, r2 */
        break;
    case 0x83: h16(j, 0x4010); h16(j, 0x4019); break;         /* ands */
    case 0x84: h16(j, 0x4310); h16(j, 0x4319); break;         /* orrs */
    default: h16(j, 0x4050); h16(j, 0x4059); break;           /* 0x85: eors */
    }
    slot64(j, 0, 0, 1, d);
    return 1;
}

/* fp[d] = op(fp[a], fp[b]) by arith64 in C: the integer operators without a template. */
static void arith(jit *j, uint32_t op, uint32_t d, uint32_t a, uint32_t b)
{
    addw(j, 1, FP, d * 8);
    addw(j, 2, FP, a * 8);
    addw(j, 3, FP, b * 8);
    konst(j, 0, op);
    ctx32(j, 1, 12, offsetof(wasm_jit_ctx, arith));
    h16(j, 0x47e0);                                           /* blx ip */
    h16(j, 0x2800);                                           /* cmp r0, #0 */
    fail(j, NE, T_EXIT);
}

static uint32_t imm(const wasm_code *p) { return p[0] | (uint32_t)p[1] << 16; }

/* Whether a branch lands on code unit u (always so without the bitmap). */
/* How far down the straight line the cache and the dead-store rule look, in instructions. */
#define LOOK 12

static int landing(const jit *j, uint32_t u) { return !j->tgt || ((j->tgt[u >> 5] >> (u & 31)) & 1); }

/*
 * How the instruction at q uses slot s: bit 0 it reads it, bit 1 it writes it; *len its
 * length, 0 for an instruction not listed here (a branch, call, return, X_EXT...: it may
 * read any slot, or leave the straight line).
 */
static uint32_t decode(const wasm_code *q, uint32_t *w, uint32_t *n);

static uint32_t uses(const wasm_code *q, uint32_t s, uint32_t *len)
{
    uint32_t w, n, r = 0;
    if (!(*len = decode(q, &w, &n))) return 3;
    for (uint32_t i = 0; i < n; i++) r |= q[1 + w + i] == s;
    return r | (w && q[1] == s) << 1;
}

/*
 * The slot operands of the instruction at q: *w 1 if unit 1 is a slot it writes, the n
 * units after that slots it reads. Its length, 0 for one not listed (see uses).
 */
static uint32_t decode(const wasm_code *q, uint32_t *w, uint32_t *n)
{
    uint32_t op = *q & 0xff;
    *w = 1;
    *n = 1;
    if ((op >= 0x46 && op <= 0x4f) || (op >= 0x51 && op <= 0x66) || (op >= 0x6a && op <= 0x78) ||
        (op >= 0x7c && op <= 0x8a) || (op >= 0x92 && op <= 0x98) || (op >= 0xa0 && op <= 0xa6)) {
        *n = 2;                                           /* dst a b */
        return 4;
    }
    if (op == 0x45 || op == 0x50 || (op >= 0x67 && op <= 0x69) || (op >= 0x79 && op <= 0x7b) ||
        (op >= 0x8b && op <= 0x91) || (op >= 0x99 && op <= 0x9f) || (op >= 0xa7 && op <= 0xc4) ||
        op >= X_TRUNC_SAT || op == X_COPY || op == X_MGROW) return 3; /* dst src */
    if ((op >= X_RI && op <= X_RSUB) || (op >= 0x28 && op <= 0x35)) return 5; /* dst a imm32 / dst addr off32 */
    if (op >= 0x36 && op <= 0x3e) { *w = 0; *n = 2; return 5; } /* addr val off32 */
    if (op == X_SELECT) { *n = 3; return 5; }
    if (op == X_GSET) { *w = 0; return 3; }
    *n = 0;
    if (op == X_CONST32 || op == X_CONST64 || op == X_GGET || op == X_MSIZE)
        return op == X_CONST32 ? 4 : op == X_CONST64 ? 6 : op == X_GGET ? 3 : 2;
    if (op == X_FUEL) { *w = 0; return 3; }
    return 0;
}

/*
 * Whether the instruction at q, which reads slot s in the template begun with s in r0
 * (j->have), takes every read of s from r0 (its first operand, or moved from r0).
 */
static int reads_r0(const wasm_code *q, uint32_t s)
{
    uint32_t op = *q & 0xff;
    if (op == 0x37 || op == 0x39) return q[2] != s;       /* 8-byte stores load their value pair */
    return (op >= 0x46 && op <= 0x4f) || (op >= 0x6a && op <= 0x78) || (op >= X_RI && op <= X_RSUB) ||
           (op >= 0x28 && op <= 0x3e) || op == 0x45 || op == 0x67 || op == 0x68 || op == 0xa7;
}

/*
 * After a template leaves slot d's new low word in r0: the store to d is left out when
 * no read of d from the frame can follow before d is written again, on the straight
 * line of code after q (no branch lands in it or leaves it; at most LOOK instructions):
 * the next instruction may read d, from r0.
 */
static uint32_t hot_len(const wasm_code *p);

static void st0(jit *j, const wasm_code *q, uint32_t d)
{
    for (uint32_t k = 0, len, f; k < LOOK && q < j->end && j->tgt && !j->marking; k++, q += len) {
        if (landing(j, (uint32_t)(q - j->c)) || !(len = 0, f = uses(q, d, &len), len)) break;
        if ((f & 1) && (k || !(hot_len(q) || reads_r0(q, d)))) break;
        if (f & 2) { j->r0 = d; return; }
    }
    ST(0, d);
    j->r0 = d;
}

/* The halfword where code unit u's template starts (0 while sizing); marks u a target while marking. */
static uint32_t target(jit *j, uint32_t u)
{
    if (j->marking) j->tgt[u >> 5] |= 1u << (u & 31);
    return j->map && !j->marking ? j->map[u] : 0;
}


/* ---------------------------------------------------------------- liveness
 *
 * Which slots are live (may be read before they are written) where each branch lands,
 * found by the usual backward dataflow over the function's register code, once per
 * pass over it. A register of the cache whose slot is dead at a branch or a label is
 * not written back there: the frame only has to be right for the slots read later.
 * Slots above a call's frame base are live before it (its arguments), everything is
 * live before an instruction this does not know (X_EXT, or the function's end).
 */
static void *scratch(wasm_arena *a, size_t n);


/* Which place a branch lands code unit u is, counted from the function's start. */
static uint32_t label_of(const jit *j, uint32_t u)
{
    uint32_t w = u >> 5;
    return j->rank[w] + (uint32_t)__builtin_popcount(j->tgt[w] & ((1u << (u & 31)) - 1u));
}

static const uint32_t *live_in(const jit *j, uint32_t u) { return j->live + (size_t)label_of(j, u) * j->lw; }

/* Whether slot s may be read after code unit u, a place a branch lands (1 without liveness). */
static int live_at(const jit *j, uint32_t u, uint32_t s)
{
    if (!j->live || s >= j->lw * 32u) return 1;
    return (live_in(j, u)[s >> 5] >> (s & 31)) & 1;
}

/*
 * The instruction at q that decode() does not list: its length (0 if unknown) and the
 * code units of its branch targets, relative to q (*nt of them, the first in *t0; a
 * branch table's are read by the caller).
 */
static uint32_t ctl_len(const wasm_code *q, uint32_t *nt)
{
    uint32_t op = *q & 0xff;
    *nt = 0;
    if (op == X_BR || op == X_BRL) { *nt = 1; return 3; }
    if (op == X_BRNZ || op == X_BRNZL || op == X_BRZ || op == X_BRZL) { *nt = 1; return 4; }
    if (op >= X_BCMP && op < X_BCMPI) { *nt = 1; return 5; }
    if (op >= X_BCMPI && op < X_BCMPI + 10) { *nt = 1; return 6; }
    if (op == X_BRTABLE) { *nt = imm(q + 2) + 1; return 4 + 2 * *nt; }
    if (op == X_RETURN) return 2;
    if (op == X_RETN) return 3;
    if (op == X_UNREACHABLE) return 1;
    if (op == X_CALL) return 4;
    if (op == X_CALLI) return 6;
    if (op == X_EXT) return X_EXT_LEN(*q);
    return 0;
}

/* The code unit branch target k (< nt) of the control instruction at unit u (q) goes to. */
static uint32_t ctl_target(const wasm_code *q, uint32_t u, uint32_t len, uint32_t k)
{
    uint32_t at = (*q & 0xff) == X_BRTABLE ? 4 + 2 * k : len - 2;
    return u + at + (uint32_t)(int32_t)imm(q + at);
}

/*
 * The liveness of the function c..end with nslots slots (j->tgt known), kept in scratch
 * memory from the arena for every pass (the per-instruction index it needs is given
 * back): j->rank, j->live and j->lw set, 0 if it does not fit or does not settle.
 */
static int live_find(jit *j, const wasm_code *c, const wasm_code *end, uint32_t nslots);

__attribute__((noinline)) static uint32_t *liveness(jit *j, const wasm_code *c, const wasm_code *end, uint32_t nslots)
{
    size_t before = j->a->size;
    int ok = live_find(j, c, end, nslots);
    if (!ok) { wasm_arena_top_free(j->a, before); j->live = NULL; return NULL; }
    return j->rank;
}

__attribute__((noinline)) static int live_find(jit *j, const wasm_code *c, const wasm_code *end, uint32_t nslots)
{
    uint32_t units = (uint32_t)(end - c), words = units / 32 + 1, lw = (nslots + 31u) / 32u, ni = 0, i, w, k, n, nt;
    uint32_t *rank, *starts, *cur, *live, last = nslots & 31;
    const wasm_code *q;
    size_t nlab = 0, keep;
    for (w = 0; w < words; w++) nlab += (size_t)__builtin_popcount(j->tgt[w]);
    /*
     * rank words, then lw words per label (its live set), then 3 per label (what pin_enter
     * decided there), then lw words: the slots live where the function starts, then 2 per
     * label: the first and the last code unit a branch to it starts at
     */
    if (!lw || !(rank = scratch(j->a, wb_size_mul(wb_size_add(words + lw, wb_size_mul(nlab, lw + 5)), 4)))) return 0;
    keep = j->a->size;
    if (!(starts = scratch(j->a, wb_size_mul((size_t)units + 1 + lw, 4)))) return 0;
    cur = starts + units + 1;
    live = rank + words;
    for (w = 0, n = 0; w < words; w++) { rank[w] = n; n += (uint32_t)__builtin_popcount(j->tgt[w]); }
    j->rank = rank;
    j->live = live;
    j->lw = lw;
    for (q = c; q < end; q += n) { /* where the instructions start */
        uint32_t x, y;
        if (!(n = decode(q, &x, &y)) && !(n = ctl_len(q, &nt))) return 0;
        starts[ni++] = (uint32_t)(q - c);
    }
    if (q != end) return 0;
    uint32_t *src = live + nlab * (lw + 3) + lw;
    for (k = 0; k < nlab; k++) src[2 * k] = WASM_NONE;
    for (i = 0; i < ni; i++) { /* where the branches to each label are */
        uint32_t u = starts[i], x, y, len;
        q = c + u;
        if (decode(q, &x, &y)) continue;
        len = ctl_len(q, &nt);
        for (k = 0; k < nt; k++) {
            uint32_t t = ctl_target(q, u, len, k), *b;
            if (t >= units || !landing(j, t)) return 0;
            b = src + 2 * label_of(j, t);
            if (u < b[0]) b[0] = u;
            if (u > b[1]) b[1] = u;
        }
    }
#define SETALL() do { for (w = 0; w < lw; w++) cur[w] = ~0u; if (last) cur[lw - 1] = (1u << last) - 1u; } while (0)
#define SET(s) do { if ((s) < nslots) cur[(s) >> 5] |= 1u << ((s) & 31); } while (0)
    for (uint32_t pass = 0, changed = 1; changed; pass++) {
        if (pass == 64) return 0;
        changed = 0;
        SETALL(); /* past the end */
        for (i = ni; i-- > 0;) {
            uint32_t u = starts[i], op, x, y, len;
            q = c + u;
            op = *q & 0xff;
            if ((len = decode(q, &x, &y))) {
                if (x && q[1] < nslots) cur[q[1] >> 5] &= ~(1u << (q[1] & 31));
                for (k = 0; k < y; k++) SET(q[1 + x + k]);
            } else {
                len = ctl_len(q, &nt);
                int cond = op != X_BR && op != X_BRL && op != X_BRTABLE;
                if (nt && !cond) for (w = 0; w < lw; w++) cur[w] = 0;
                for (k = 0; k < nt; k++) {
                    uint32_t t = ctl_target(q, u, len, k);
                    if (t >= units || !landing(j, t)) { SETALL(); break; }
                    const uint32_t *b = live_in(j, t);
                    for (w = 0; w < lw; w++) cur[w] |= b[w];
                }
                if (nt) {
                    if (op != X_BR && op != X_BRL) SET(q[1]);
                    if (op >= X_BCMP && op < X_BCMPI) SET(q[2]);
                } else if (op == X_RETURN || op == X_RETN || op == X_UNREACHABLE) {
                    for (w = 0; w < lw; w++) cur[w] = 0;
                    for (k = 0; op != X_UNREACHABLE && q[1] != X_NOSLOT && k < (op == X_RETN ? q[2] : 1u); k++) SET(q[1] + k);
                } else if (op == X_CALL || op == X_CALLI) {
                    for (k = q[1]; k < nslots; k++) SET(k); /* the callee's arguments (and what it may leave) */
                    if (op == X_CALLI) SET(q[2]);
                } else {
                    SETALL();
                }
            }
            if (landing(j, u)) {
                uint32_t *b = (uint32_t *)(uintptr_t)live_in(j, u);
                for (w = 0; w < lw; w++)
                    if (cur[w] & ~b[w]) { b[w] |= cur[w]; changed = 1; }
            }
        }
    }
#undef SET
#undef SETALL
    memcpy(live + nlab * (lw + 3), cur, lw * 4u);
    wasm_arena_top_free(j->a, keep);
    return 1;
}

/*
 * Whether slot d's value at q is dead for the liveness rule: on the straight line from q
 * it is written before any read, or the line reaches a place where it is not live (a
 * label, a branch's target it does not fall past, a return that does not give it back).
 */
static int dead_live(const jit *j, const wasm_code *q, uint32_t d)
{
    uint32_t len, w, n, nt, k;
    for (k = 0; k < 2 * LOOK && q < j->end && j->tgt; k++, q += len) {
        uint32_t u = (uint32_t)(q - j->c), op = *q & 0xff;
        if (landing(j, u)) return j->live && !live_at(j, u, d);
        if ((len = decode(q, &w, &n))) {
            for (uint32_t i = 0; i < n; i++)
                if (q[1 + w + i] == d) return 0;
            if (w && q[1] == d) return 1;
            continue;
        }
        if (!j->live || !(len = ctl_len(q, &nt))) return 0;
        if (op == X_RETURN || op == X_RETN) return q[1] == X_NOSLOT || d < q[1] || d >= q[1] + (op == X_RETN ? q[2] : 1u);
        if (op == X_UNREACHABLE) return 1;
        if (nt != 1) return 0; /* a call, X_EXT, a branch table */
        uint32_t t = ctl_target(q, u, len, 0);
        if (t >= (uint32_t)(j->end - j->c) || !landing(j, t) || live_at(j, t, d)) return 0;
        if (op == X_BR || op == X_BRL || op == X_BRTABLE) return 1;
        if (q[1] == d || (op >= X_BCMP && op < X_BCMPI && q[2] == d)) return 0;
    }
    return 0;
}

/* ---------------------------------------------------------------- the register cache
 *
 * The common i32 templates (hot_len: compares, add/sub/mul, logic, shifts and rotations,
 * with a slot or an immediate; compare-and-branch; 1- and 4-byte loads and stores; i32
 * constants, wrap, eqz/clz/ctz) take their operands from registers r0-r3 and r12 that
 * hold slots' low words (j->cs), load only what is not there, and compute into one of
 * them. A result stays in its register, unstored ("dirty"), until the register is taken
 * for something else, or the code reaches a point where the frame must be whole: before
 * another template (they use r0-r3 and r12 freely and read the frame), a branch, or a
 * place a branch lands, where the cache is forgotten. A result written again while
 * dirty is never stored; so is one that the straight line of code after the point
 * writes before any read, or that is not live where it leads (dead: see liveness).
 * Inside a loop keeping locals in registers (below) those registers are not forgotten.
 */
#define NPOOL 6
static const uint8_t pool[NPOOL] = {0, 1, 2, 3, 12, 14}; /* lr is free between calls: {r4, lr} are pushed */

static void forget(jit *j)
{
    j->s0 = WASM_NONE; /* (C code and the other templates may change s0) */
    for (uint32_t k = 0; k < NPOOL; k++)
        if (!((j->pin >> pool[k]) & 1)) j->cs[pool[k]] = WASM_NONE;
    j->dirty = 0;
}

static void slot_any(jit *j, int load, uint32_t rt, uint32_t s);

/* Stores every dirty register of the cache (but those dead from q, if q is not NULL). */
static void sync(jit *j, const wasm_code *q)
{
    for (uint32_t k = 0; k < NPOOL; k++) {
        uint32_t r = pool[k];
        if ((((j->dirty & ~j->pin) >> r) & 1) && !(q && !j->marking && dead_live(j, q, j->cs[r]))) slot_any(j, 0, r, j->cs[r]);
    }
    j->dirty = 0;
}

/*
 * Before a branch to code unit u (or a label there): stores the dirty registers whose
 * slot is live at u. keep: a conditional branch, whose other way goes on with the
 * cache: the registers not stored stay dirty; else they are dropped.
 */
static void sync_to(jit *j, uint32_t u, int keep)
{
    for (uint32_t k = 0; k < NPOOL; k++) {
        uint32_t r = pool[k];
        if ((((j->dirty & ~j->pin) >> r) & 1) && (j->marking || live_at(j, u, j->cs[r]))) {
            slot_any(j, 0, r, j->cs[r]);
            j->dirty &= ~(1u << r);
        }
    }
    if (!keep) j->dirty = 0;
}

/* The register of the cache holding slot s, as a mask (0: none). */
static uint32_t held(const jit *j, uint32_t s)
{
    for (uint32_t k = 0; k < NPOOL; k++)
        if (j->cs[pool[k]] == s) return 1u << pool[k];
    if (j->pin >> 9 & 1 && j->cs[9] == s) return 1u << 9;
    if (j->pin >> 10 & 1 && j->cs[10] == s) return 1u << 10;
    return 0;
}

/*
 * A register of the cache outside mask: a free one, else the one whose slot is needed
 * last on the straight line from the next instruction (Belady's choice, within LOOK
 * instructions; the least recently used of equals). Its slot is written back if dirty,
 * unless written there before any read (dead), and forgotten.
 */
static uint32_t victim(jit *j, uint32_t mask)
{
    uint32_t best = 16, far = 0, dist[16], pend = 0, k, r, i, len, w, n;
    const wasm_code *q = j->next;
    mask |= j->pin; /* never a register a loop keeps a local in */
    for (k = 0; k < NPOOL; k++) {
        r = pool[k];
        if ((mask >> r) & 1) continue;
        if (j->cs[r] == WASM_NONE) { best = r; goto take; }
        dist[r] = j->marking || !q ? 0 : LOOK; /* q NULL: the instruction branches, its other way is not looked at */
        pend |= 1u << r;
    }
    for (i = 0; q && !j->marking && pend && i < LOOK && q < j->end; i++, q += len) {
        if (landing(j, (uint32_t)(q - j->c)) || !(len = decode(q, &w, &n))) {
            for (; pend; pend &= pend - 1) dist[__builtin_ctz(pend)] = i;
            break;
        }
        for (uint32_t left = pend; left; left &= left - 1) {
            uint32_t x = 0, s = j->cs[r = (uint32_t)__builtin_ctz(left)];
            for (k = 0; k < n; k++) x |= q[1 + w + k] == s;
            if (x) dist[r] = i;
            else if (w && q[1] == s) dist[r] = 33;
            else continue;
            pend &= ~(1u << r);
        }
    }
    for (k = 0; k < NPOOL; k++) {
        r = pool[k];
        if ((mask >> r) & 1) continue;
        if (best == 16 || dist[r] > far || (dist[r] == far && j->age[r] < j->age[best])) { best = r; far = dist[r]; }
    }
    if (((j->dirty >> best) & 1) && far != 33 && !(j->next && !j->marking && j->live && dead_live(j, j->next, j->cs[best])))
        slot_any(j, 0, best, j->cs[best]); /* write it back */
take:
    j->dirty &= ~(1u << best);
    j->cs[best] = WASM_NONE;
    return best;
}

/* ldr/str rt (any of r0-r12), fp[s]'s low word */
static void slot_any(jit *j, int load, uint32_t rt, uint32_t s)
{
    if (rt < 8) slot32(j, load, rt, s * 8);
    else h32(j, (load ? 0xf8d0 : 0xf8c0) | FP, rt << 12 | s * 8);
}

/* The register holding slot s, loaded into one outside *mask if none does; added to *mask. */
static uint32_t get(jit *j, uint32_t s, uint32_t *mask)
{
    uint32_t m = held(j, s), r = m ? (uint32_t)__builtin_ctz(m) : victim(j, *mask);
    if (!m) { slot_any(j, 1, r, s); j->cs[r] = s; }
    j->age[r] = ++j->clock;
    *mask |= 1u << r;
    return r;
}

/* The register for a result to slot d: an operand's (in mask) that holds d itself, else a victim outside mask. */
static uint32_t dres(jit *j, uint32_t d, uint32_t mask)
{
    uint32_t m = held(j, d) & (mask | j->pin);
    return m ? (uint32_t)__builtin_ctz(m) : victim(j, mask);
}

/* rd (any of r0-r12) = v */
static void kon(jit *j, uint32_t rd, uint32_t v)
{
    if (rd < 4) konst(j, rd, v);
    else if (modimm(v) >= 0) dp_imm(j, 2, 0, rd, 15, (uint32_t)modimm(v)); /* mov.w rd, #v */
    else { movw(j, 0xf240, rd, v & 0xffff); if (v >> 16) movw(j, 0xf2c0, rd, v >> 16); }
}

/* A temporary register outside *mask holding v (added to *mask). */
static uint32_t tmp(jit *j, uint32_t v, uint32_t *mask)
{
    uint32_t t = victim(j, *mask);
    kon(j, t, v);
    *mask |= 1u << t;
    return t;
}

/* cmp rn, #v (or through a temporary) */
static void cmp_imm(jit *j, uint32_t rn, uint32_t v, uint32_t *mask)
{
    if (v < 256 && rn < 8) h16(j, 0x2800 | rn << 8 | v);
    else if (modimm(v) >= 0) dp_imm(j, 13, 1, 15, rn, (uint32_t)modimm(v));
    else h32(j, 0xebb0 | rn, 0x0f00 | tmp(j, v, mask));
}

/* rd = cond ? 1 : 0 from the flags */
static void setcc_r(jit *j, uint32_t cond, uint32_t rd)
{
    h16(j, 0xbf00 | cond << 4 | (~cond & 1) << 3 | 4);
    if (rd < 8) { h16(j, 0x2001 | rd << 8); h16(j, 0x2000 | rd << 8); }
    else { h32(j, 0xf04f, rd << 8 | 1); h32(j, 0xf04f, rd << 8); }
}

/* mov rd, rm (any registers; flags kept, so it may sit in an IT block) */
static void mov(jit *j, uint32_t rd, uint32_t rm) { h16(j, 0x4600 | (rd >> 3) << 7 | rm << 3 | (rd & 7)); }

/* <shift>.w rd, rm, #n (type: 0 lsl, 1 lsr, 2 asr, 3 ror; n 0: a move) */
static void shift_imm(jit *j, uint32_t type, uint32_t rd, uint32_t rm, uint32_t n)
{
    if (!n) type = 0;
    h32(j, 0xea4f, (n >> 2) << 12 | rd << 8 | (n & 3) << 6 | type << 4 | rm);
}

/* The result in register r is slot d's new value (unstored: dirty); copies of the old one are forgotten. */
static void result(jit *j, uint32_t d, uint32_t r)
{
    if (j->s0 == d) j->s0 = WASM_NONE;
    for (uint32_t k = 0; k < NPOOL; k++)
        if (j->cs[pool[k]] == d) { j->cs[pool[k]] = WASM_NONE; j->dirty &= ~(1u << pool[k]); }
    j->cs[r] = d;
    j->dirty |= 1u << r;
    j->age[r] = ++j->clock;
}

/* Length of the instruction at p if it has a cached template, else 0. */
static uint32_t hot_len(const wasm_code *p)
{
    uint32_t op = *p & 0xff;
    if ((op >= 0x46 && op <= 0x4f) || (op >= 0x6a && op <= 0x6c) || (op >= 0x71 && op <= 0x78)) return 4;
    if (op >= X_RI && op <= X_RSUB) {
        uint32_t k = op - X_RI, v = imm(p + 3);
        if (k >= 13 && k <= 16 && (!v || (v == 0xffffffffu && (k == 13 || k == 15)))) return 0;
        return 5;
    }
    if (op >= X_BCMP && op < X_BCMPI) return 5;
    if (op >= X_BCMPI && op < X_BCMPI + 10) return 6;
    if (op == X_BRNZ || op == X_BRNZL || op == X_BRZ || op == X_BRZL) return 4;
    if ((op == 0x28 || op == 0x2a || op == 0x2c || op == 0x2d || op == 0x36 || op == 0x38 || op == 0x3a ||
         op == 0x3c || op == 0x3e) && imm(p + 3) < 4096) return 5;
    if (op == X_CONST32 || (op >= 0x5b && op <= 0x60) || (op >= 0x92 && op <= 0x95) || op == 0x98) return 4;
    if (op == 0xa7 || op == 0x45 || op == 0x67 || op == 0x68 || op == 0x8b || op == 0x8c || op == 0x91 || op == 0xb2 ||
        op == 0xb3 || op == X_TRUNC_SAT || op == X_TRUNC_SAT + 1) return 3;
    return 0;
}

/* s<sd> (s0, s1) = slot s's low word: from its register of the cache, else from the frame. */
static void fin(jit *j, uint32_t sd, uint32_t s, uint32_t *mask)
{
    uint32_t m = held(j, s), r;
    if (j->s0 == s) {                                     /* the f32 result just made */
        if (sd) vfp(j, 0xeeb0, 0x0a40, 1, 0, 0);          /* vmov.f32 s1, s0 */
        return;
    }
    if (!sd) j->s0 = s;
    if (!m && s <= 127) {
        h32(j, 0xed90 | (sd & 1) << 6 | FP, (sd >> 1) << 12 | 0x0a00 | s * 2); /* vldr s<sd>, [fp, #s*8] */
        return;
    }
    r = get(j, s, mask);
    h32(j, 0xee00 | sd >> 1, r << 12 | 0x0a10 | (sd & 1) << 7); /* vmov s<sd>, r */
}

/* Slot d's new value from s0, in a register of the cache outside mask (s0 keeps it for the next f32 template). */
static void fout(jit *j, uint32_t d, uint32_t mask)
{
    uint32_t r = dres(j, d, mask);
    h32(j, 0xee10, r << 12 | 0x0a10);                    /* vmov r, s0 */
    result(j, d, r);
    j->s0 = d;
}

/* The effective address of a 1- or 4-byte access at [ra + off] (off < 4096), checked: its register. */
static uint32_t ea(jit *j, uint32_t ra, uint32_t off, uint32_t n, uint32_t *mask)
{
    uint32_t x = ra;
    if (off) {
        x = victim(j, *mask);
        *mask |= 1u << x;
        if (modimm(off) >= 0) dp_imm(j, 8, 1, x, ra, (uint32_t)modimm(off)); /* adds.w x, ra, #off */
        else { kon(j, x, off); h32(j, 0xeb10 | ra, x << 8 | x); }              /* adds.w x, ra, x */
        fail(j, CS, T_OOB);
    }
    h32(j, 0xebb0 | x, 0x0f00 | (n == 1 ? MSZ : MSZ4));                        /* cmp.w x, r6 / r11 */
    fail(j, CS, T_OOB);
    return x;
}

/* ---------------------------------------------------------------- locals kept in registers through a loop
 *
 * An innermost loop whose body is made of cached templates only (hot_len), fuel charges,
 * 32-bit copies and selects, and branches (branch tables included) keeps its most used locals (up to NPIN) in registers of the cache for
 * the whole loop: they are loaded where the loop is entered (before its header, which
 * the back edges skip), never written back inside it, and stored where the loop is left,
 * only those the loop writes and only where they are live: on the taken side of a
 * branch out of it, and where its code ends. Nothing else reads the frame in such a
 * loop: no call, no helper but the fuel's (around which they are saved on the stack),
 * and a trap leaves the frame unread. The loop's code is [head, end): from its header
 * to its last back edge; no branch from outside lands in it.
 */
#define NPIN 5
/*
 * r10 and r9 first (the call depth and value stack limits, which only calls read: a loop
 * using them pushes them where it is entered and pops them where it is left, its traps
 * included), then registers of the cache, never r0-r2 (the fuel's helper call uses them).
 */
static const uint8_t pin_reg[2][NPIN] = {{14, 12, 3}, {10, 9, 14, 12, 3}};
static const uint8_t pin_max[2] = {3, 5};
/*
 * r9 and r10 cost a push and a pop where the loop is entered and left: they must save
 * this many instructions in it, more unless it looks counted (no branch leaves it from
 * inside and its last back edge compares with a constant: a loop that may run a few
 * times only, as a search's or a partition's, would lose).
 */
#define SP_GAIN 2
#define SP_GAIN_EXITS 6
#define SP_REGS (1u << 9 | 1u << 10)
#define PIN_MAX_UNITS 1024u   /* a longer loop keeps nothing */

/* Length of an instruction a loop keeping locals in registers may have. */
static uint32_t rlen(const wasm_code *q)
{
    uint32_t nt, n = hot_len(q);
    return n ? n : (*q & 0xff) == X_BRTABLE ? ctl_len(q, &nt) : (*q & 0xff) == X_SELECT ? 5 : 3;
}

/* The target of the control instruction at q (unit u) if it has one target, else WASM_NONE. */
static uint32_t one_target(const wasm_code *q, uint32_t u)
{
    uint32_t nt, len = ctl_len(q, &nt);
    return len && nt == 1 && (*q & 0xff) != X_BRTABLE ? ctl_target(q, u, len, 0) : WASM_NONE;
}

/*
 * If a loop whose locals can stay in registers starts at code unit u (a place a branch
 * lands): its end (0 if none), with the locals chosen in slot[] (*n of them) and, in
 * *wr, a bit per chosen one the loop writes.
 */
static uint32_t pin_loop(const jit *j, uint32_t u, uint32_t nloc, uint32_t *slot, uint32_t *n, uint32_t *wr)
{
    const wasm_code *c = j->c, *q;
    uint32_t e = 0, len, x, y, k, t;
    *n = 0;
    *wr = 0;
    if (!j->live || j->marking) return 0;
    for (q = c + u; q < j->end && (uint32_t)(q - c) < u + PIN_MAX_UNITS; q += len) {
        uint32_t op = *q & 0xff, at = (uint32_t)(q - c);
        if ((len = hot_len(q))) {
            if (op == 0x98) break;                        /* copysign: it can take 4 registers */
        } else if (op == X_FUEL) {
            len = 3;
        } else if (op == X_BR || op == X_BRL || (op == X_COPY && (*q & X_32))) {
            len = 3;
        } else if (op == X_SELECT && (*q & X_32)) {
            len = 5;
        } else if (op == X_BRTABLE) {
            len = 4 + 2 * (imm(q + 2) + 1);
        } else {
            break;
        }
        t = one_target(q, at);
        if (t == WASM_NONE) continue;
        if (t == u) e = at + len;                          /* a back edge */
        else if (t > u && t <= at) break;                  /* another loop's (if inside, the check below fails) */
    }
    if (!e) return 0;
    for (t = u; t < e; t++) {                              /* nothing from outside lands inside */
        if (!landing(j, t)) continue;
        const uint32_t *b = j->src + 2 * label_of(j, t);
        if (b[0] != WASM_NONE && (b[0] < u || b[1] >= e)) return 0;
    }
    uint32_t ts[32], tc[32], tw[32], nts = 0, m;
    for (q = c + u; q < c + e; q += len) {                 /* how often each local is used, and whether written */
        uint32_t cand[4], nc = 0, op = *q & 0xff;
        len = rlen(q);
        if (decode(q, &x, &y)) for (k = 0; k < x + y && nc < 4; k++) cand[nc++] = q[1 + k];
        else {
            x = 0;                                         /* (decode leaves it 1) */
            if (op != X_FUEL && op != X_BR && op != X_BRL) { cand[nc++] = q[1]; if (op >= X_BCMP && op < X_BCMPI) cand[nc++] = q[2]; }
        }
        for (k = 0; k < nc; k++) {
            if (cand[k] >= nloc) continue;
            for (m = 0; m < nts && ts[m] != cand[k]; m++) {}
            if (m == nts) {
                if (nts == 32) continue;
                ts[nts] = cand[k]; tc[nts] = tw[nts] = 0; nts++;
            }
            tc[m]++;
            tw[m] |= k == 0 && x;
        }
    }
    for (k = 0; k < NPIN; k++) {                           /* the most used, used twice or more */
        uint32_t best = WASM_NONE, most = 1;
        for (m = 0; m < nts; m++)
            if (tc[m] > most) { most = tc[m]; best = m; }
        if (best == WASM_NONE) break;
        slot[k] = ts[best];
        if (tw[best]) *wr |= 1u << k;
        tc[best] = 0;
        (*n)++;
    }
    return *n ? e : 0;
}

/* Stores the pinned registers the loop writes whose slot is live at code unit u (a place a branch lands); pops r9, r10. */
static void pin_store(jit *j, uint32_t u)
{
    for (uint32_t m = j->pinw; m; m &= m - 1) {
        uint32_t r = (uint32_t)__builtin_ctz(m);
        if (live_at(j, u, j->cs[r])) slot_any(j, 0, r, j->cs[r]);
    }
    if (j->pinsp) h32(j, 0xe8bd, SP_REGS);              /* pop.w {r9, r10} */
}

/* Whether a branch to code unit u leaves the loop and has something to do first (stores, r9 and r10). */
static int pin_exit(const jit *j, uint32_t u)
{
    if (!j->pin || (u >= j->pin_head && u < j->pin_end)) return 0;
    if (j->pinsp) return 1;
    for (uint32_t m = j->pinw; m; m &= m - 1)
        if (live_at(j, u, j->cs[__builtin_ctz(m)])) return 1;
    return 0;
}

/* B<cond> to code unit u (halfword to), doing first what leaving the loop takes if it does. */
static void branch_out(jit *j, uint32_t cond, uint32_t u, uint32_t to)
{
    uint32_t at = j->n;
    if (!pin_exit(j, u)) { branch(j, cond, to, 0); return; }
    if (cond != AL) h16(j, 0);                           /* b<!cond> over */
    pin_store(j, u);
    branch(j, AL, to, 0);
    if (cond != AL) land(j, at, cond ^ 1);
}

/* Fuel as fuel() does, the pinned registers saved around the helper (r2 makes the count even). */
static void fuel_pinned(jit *j, uint32_t n)
{
    uint32_t regs = j->pin & ~SP_REGS, at; /* (C keeps r9 and r10) */
    if (regs && (__builtin_popcount(regs) & 1)) regs |= 1u << 2;
    if (n < 256) h16(j, 0x3f00 | n);                      /* subs r7, #n */
    else { konst(j, 1, n); h16(j, 0x1a7f); }              /* subs r7, r7, r1 */
    at = j->n;
    h16(j, 0);
    if (n < 256) { h16(j, 0x3700 | n); h16(j, 0x2100 | n); } /* adds r7, #n; movs r1, #n */
    else h16(j, 0x187f);                                  /* adds r7, r7, r1 */
    if (regs) h32(j, 0xe92d, regs);                       /* push.w {regs} */
    h16(j, 0x463a);                                       /* mov r2, r7 */
    ctx32(j, 0, FUEL, offsetof(wasm_jit_ctx, fuel));
    h16(j, 0x4640);                                       /* mov r0, r8 */
    ctx32(j, 1, 12, offsetof(wasm_jit_ctx, refuel));
    h16(j, 0x47e0);                                       /* blx ip */
    ctx32(j, 1, FUEL, offsetof(wasm_jit_ctx, fuel));
    if (regs) h32(j, 0xe8bd, regs);                       /* pop.w {regs} */
    h16(j, 0x2800);                                       /* cmp r0, #0 */
    fail(j, NE, T_EXIT);
    land(j, at, CS);
}

static uint32_t insn(jit *j, const wasm_code *c, const wasm_code *p);

/* Keeps the first n of the locals in slot[] in registers through the loop [u, e); wr: those it writes. */
static void pin_set(jit *j, uint32_t u, uint32_t e, const uint32_t *slot, uint32_t n, uint32_t wr, uint32_t sp)
{
    j->pin_head = u;
    j->pin_end = e;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t r = pin_reg[sp][k];
        j->cs[r] = slot[k];
        j->pin |= 1u << r;
        if (wr >> k & 1) j->pinw |= 1u << r;
    }
    j->pinsp = (j->pin & SP_REGS) != 0;
}

/* Instructions in the loop [u, e)'s code with the first n of slot[] kept in registers (nothing emitted). */
static uint32_t pin_trial(jit *j, uint32_t u, uint32_t e, const uint32_t *slot, uint32_t n, uint32_t wr, uint32_t sp)
{
    jit keep = *j;
    uint32_t len, size;
    j->out = NULL;
    j->n = 0;
    j->ni = 0;
    pin_set(j, u, e, slot, n, wr, sp);
    for (const wasm_code *p = j->c + u; p < j->c + e; p += len) {
        uint32_t at = (uint32_t)(p - j->c);
        if (at != u && landing(j, at)) { sync_to(j, at, 0); j->r0 = WASM_NONE; forget(j); }
        if (!(len = insn(j, j->c, p))) break;
    }
    size = j->ni;
    *j = keep;
    return size;
}

/*
 * At code unit u, where a branch lands: if a loop starts here, keeps as many of its most
 * used locals in registers as make its code fewest instructions (a register of the cache
 * kept is one fewer for its other values), and loads them.
 */
static void pin_enter(jit *j, uint32_t u, uint32_t nloc)
{
    uint32_t slot[NPIN], n, wr, e, best = 0, least, *d, sp = 0;
    if (!j->live || j->marking) return;
    d = j->pinc + 3 * label_of(j, u);
    if (!d[0]) { /* decided once, kept for every pass (the loop's code is the same in all) */
        e = pin_loop(j, u, nloc, slot, &n, &wr);
        if (e) {
            uint32_t gain = SP_GAIN, len;
            for (const wasm_code *q = j->c + u; q < j->c + e; q += len) {
                uint32_t t = one_target(q, (uint32_t)(q - j->c));
                len = rlen(q);
                if ((t != WASM_NONE && (t < u || t >= e)) || (*q & 0xff) == X_BRTABLE) gain = SP_GAIN_EXITS;
                if (q + len == j->c + e && !((*q & 0xff) >= X_BCMPI && (*q & 0xff) < X_BCMPI + 10)) gain = SP_GAIN_EXITS;
            }
            least = pin_trial(j, u, e, slot, 0, wr, 0);
            for (uint32_t k = 1; k <= n && k <= pin_max[0]; k++) { /* (each a trial emission: start-up time) */
                uint32_t size = pin_trial(j, u, e, slot, k, wr, 0);
                if (size < least) { least = size; best = k; }
            }
            for (uint32_t k = 1; k <= n; k++) {
                uint32_t size = pin_trial(j, u, e, slot, k, wr, 1);
                if (size + gain <= least) { least = size + gain; best = k; sp = 1; }
            }
        }
        for (uint32_t k = best; k < NPIN; k++) slot[k] = 0;
        d[0] = best ? e | best << 28 | sp << 27 : 0xffffffffu;
        d[1] = best ? (wr & 31) | slot[0] << 5 | slot[1] << 14 | slot[2] << 23 : 0;
        d[2] = best ? slot[3] | slot[4] << 9 : 0;
    }
    if (d[0] == 0xffffffffu) return;
    best = d[0] >> 28;
    sp = d[0] >> 27 & 1;
    e = d[0] & 0x07ffffffu;
    wr = d[1] & 31;
    slot[0] = d[1] >> 5 & 511;
    slot[1] = d[1] >> 14 & 511;
    slot[2] = d[1] >> 23 & 511;
    slot[3] = d[2] & 511;
    slot[4] = d[2] >> 9 & 511;
    pin_set(j, u, e, slot, best, wr, sp);
    if (sp) {
        j->usedsp = 1;
        h32(j, 0xe92d, SP_REGS);                          /* push.w {r9, r10} */
    }
    for (uint32_t k = 0; k < best; k++)
        if (live_at(j, u, slot[k])) slot_any(j, 1, pin_reg[sp][k], slot[k]);
}

/* Where the loop's code ends (q): its registers stored if written and live, then ordinary clean registers of the cache. */
static void pin_leave(jit *j, const wasm_code *q)
{
    for (uint32_t m = j->pinw; m; m &= m - 1) {
        uint32_t r = (uint32_t)__builtin_ctz(m);
        if (!dead_live(j, q, j->cs[r])) slot_any(j, 0, r, j->cs[r]);
    }
    if (j->pinsp) h32(j, 0xe8bd, SP_REGS);              /* pop.w {r9, r10} */
    j->dirty &= ~j->pin;
    j->cs[9] = j->cs[10] = WASM_NONE;
    j->pin = j->pinw = 0;
    j->pinsp = 0;
}

/* Emits the cached template of the instruction at p (hot_len(p) == len); returns len. */
static uint32_t hot(jit *j, const wasm_code *c, const wasm_code *p, uint32_t len)
{
    uint32_t op = *p & 0xff, mask, a, b, d, t, v;
    j->next = (op >= X_BCMP && op < X_BCMPI + 10) || op == X_BRNZ || op == X_BRNZL || op == X_BRZ || op == X_BRZL ? NULL : p + len;
#define TARGET(k) target(j, (uint32_t)(p - c) + (k) + (uint32_t)(int32_t)imm(p + (k)))
    if ((op >= 0x5b && op <= 0x60) || (op >= 0x92 && op <= 0x95)) { /* f32 compares and arithmetic: dst a b */
        static const uint16_t fop[4][2] = {{0xee30, 0x0a00}, {0xee30, 0x0a40}, {0xee20, 0x0a00}, {0xee80, 0x0a00}};
        mask = held(j, p[2]) | held(j, p[3]);
        fin(j, 0, p[2], &mask);
        fin(j, 1, p[3], &mask);
        if (op >= 0x92) { vfp(j, fop[op - 0x92][0], fop[op - 0x92][1], 0, 0, 1); j->s0 = WASM_NONE; fout(j, p[1], mask); return len; }
        vfp(j, 0xeeb4, 0x0a40, 0, 0, 1);                  /* vcmp.f32 s0, s1 */
        h32(j, 0xeef1, 0xfa10);                           /* vmrs APSR_nzcv, fpscr */
        d = dres(j, p[1], mask);
        setcc_r(j, fcmp_cc[op - 0x5b], d);
        result(j, p[1], d);
        return len;
    }
    if (op == 0x91 || op == 0xb2 || op == 0xb3 || op == X_TRUNC_SAT || op == X_TRUNC_SAT + 1) {
        /* f32 sqrt; i32 -> f32; f32 -> i32 saturating (vcvt rounds toward zero, saturates, NaN -> 0) */
        mask = held(j, p[2]);
        fin(j, 1, p[2], &mask);
        if (op == 0x91) vfp(j, 0xeeb1, 0x0ac0, 0, 0, 1);      /* vsqrt.f32 s0, s1 */
        else if (op == 0xb2) vfp(j, 0xeeb8, 0x0ac0, 0, 0, 1); /* vcvt.f32.s32 s0, s1 */
        else if (op == 0xb3) vfp(j, 0xeeb8, 0x0a40, 0, 0, 1); /* vcvt.f32.u32 s0, s1 */
        else vfp(j, op == X_TRUNC_SAT ? 0xeebd : 0xeebc, 0x0ac0, 0, 0, 1); /* vcvt.s32/u32.f32 s0, s1 */
        j->s0 = WASM_NONE;
        fout(j, p[1], mask);
        return len;
    }
    if (op == 0x8b || op == 0x8c || op == 0x98) {         /* f32 abs neg copysign: the sign bit */
        mask = held(j, p[2]) | (op == 0x98 ? held(j, p[3]) : 0);
        a = get(j, p[2], &mask);
        t = 16;
        if (op == 0x98) {
            b = get(j, p[3], &mask);
            t = victim(j, mask);
            mask |= 1u << t;
            dp_imm(j, 0, 0, t, b, 0x400);                 /* and.w t, b, #0x80000000 */
        }
        d = dres(j, p[1], mask);
        dp_imm(j, op == 0x8c ? 4 : 1, 0, d, a, 0x400);    /* eor.w / bic.w d, a, #0x80000000 */
        if (t < 16) h32(j, 0xea40 | d, d << 8 | t);       /* orr.w d, d, t */
        result(j, p[1], d);
        return len;
    }
    if ((op >= 0x46 && op <= 0x4f) || (op >= 0x6a && op <= 0x78)) { /* i32 binary: dst a b */
        mask = held(j, p[2]) | held(j, p[3]);
        a = get(j, p[2], &mask);
        b = get(j, p[3], &mask);
        if (op <= 0x4f) {
            h32(j, 0xebb0 | a, 0x0f00 | b);               /* cmp.w a, b */
            d = dres(j, p[1], mask);
            setcc_r(j, cmp_cc[op - 0x46], d);
        } else {
            static const uint16_t dp[] = {0xeb00, 0xeba0, 0, 0, 0, 0, 0, 0xea00, 0xea40, 0xea80}; /* add sub . and orr eor */
            static const uint16_t sh[] = {0xfa00, 0xfa40, 0xfa20, 0xfa60, 0xfa60}; /* lsl asr lsr ror ror */
            t = op >= 0x74 && op <= 0x77 ? victim(j, mask) : 16;
            if (t < 16) {                                 /* the count mod 32, or negated for rotl */
                if (op == 0x77) dp_imm(j, 14, 0, t, b, 0); /* rsb.w t, b, #0 */
                else dp_imm(j, 0, 0, t, b, 31);          /* and.w t, b, #31 */
                b = t;
            }
            d = dres(j, p[1], mask);
            if (op == 0x6c) h32(j, 0xfb00 | a, 0xf000 | d << 8 | b); /* mul */
            else if (op >= 0x74) h32(j, sh[op - 0x74] | a, 0xf000 | d << 8 | b);
            else h32(j, dp[op - 0x6a] | a, d << 8 | b);
        }
        result(j, p[1], d);
    } else if (op >= X_RI && op <= X_RSUB) {              /* i32 with an immediate: dst a imm32 */
        uint32_t k = op - X_RI;
        int32_t mi;
        v = imm(p + 3);
        mi = modimm(v);
        mask = held(j, p[2]);
        a = get(j, p[2], &mask);
        if (k < 10) {
            cmp_imm(j, a, v, &mask);
            d = dres(j, p[1], mask);
            setcc_r(j, cmp_cc[k], d);
        } else if (op == X_RSUB) {
            if (mi >= 0) { d = dres(j, p[1], mask); dp_imm(j, 14, 0, d, a, (uint32_t)mi); } /* rsb.w d, a, #v */
            else { t = tmp(j, v, &mask); d = dres(j, p[1], mask); h32(j, 0xeba0 | t, d << 8 | a); }
        } else if (k == 10 || k == 11) {                  /* add, sub */
            if (k == 11) v = -v;
            d = dres(j, p[1], mask);
            if (v < 4096) addw(j, d, a, v);
            else if (-v < 4096) h32(j, 0xf2a0 | ((-v) >> 11 & 1) << 10 | a, ((-v) >> 8 & 7) << 12 | d << 8 | ((-v) & 0xff)); /* subw */
            else { t = tmp(j, v, &mask); d = dres(j, p[1], mask); h32(j, 0xeb00 | a, d << 8 | t); }
        } else if (k >= 17 && k <= 19 && mi >= 0) {       /* and orr eor #imm */
            static const uint8_t dp[3] = {0, 2, 4};
            d = dres(j, p[1], mask);
            dp_imm(j, dp[k - 17], 0, d, a, (uint32_t)mi);
        } else if (k >= 20) {                              /* shifts and rotations by an immediate */
            static const uint8_t type[5] = {0, 2, 1, 3, 3};
            uint32_t n = (k == 23 ? 32 - (v & 31) : v) & 31;
            d = dres(j, p[1], mask);
            shift_imm(j, type[k - 20], d, a, n);
        } else if ((k == 14 || k == 16) && !(v & (v - 1)) && (k == 14 || modimm(v - 1) >= 0)) {
            d = dres(j, p[1], mask);                      /* unsigned by a power of two */
            if (k == 14) shift_imm(j, 1, d, a, (uint32_t)__builtin_ctz(v));
            else dp_imm(j, 0, 0, d, a, (uint32_t)modimm(v - 1));
        } else {                                          /* mul, logic, division: by a register */
            t = tmp(j, v, &mask);
            if (k >= 13 && k <= 16) {                     /* v is neither 0 nor (signed) -1 */
                uint32_t sdiv = k == 13 || k == 15 ? 0xfb90 : 0xfbb0, q = k >= 15 ? victim(j, mask) : 16;
                d = dres(j, p[1], mask);
                if (q == 16) h32(j, sdiv | a, 0xf0f0 | d << 8 | t);
                else { h32(j, sdiv | a, 0xf0f0 | q << 8 | t); h32(j, 0xfb00 | q, a << 12 | d << 8 | 0x10 | t); } /* mls */
            } else {
                static const uint16_t dp[] = {0xfb00, 0, 0, 0, 0, 0xea00, 0xea40, 0xea80}; /* mul . . . . and orr eor */
                d = dres(j, p[1], mask);
                h32(j, dp[k - 12] | a, (k == 12 ? 0xf000 : 0) | d << 8 | t);
            }
        }
        result(j, p[1], d);
    } else if (op >= X_BCMP && op < X_BCMPI + 10) {      /* compare and branch */
        int ri = op >= X_BCMPI;
        mask = held(j, p[1]) | (ri ? 0 : held(j, p[2]));
        a = get(j, p[1], &mask);
        if (ri) cmp_imm(j, a, imm(p + 2), &mask);
        else h32(j, 0xebb0 | a, 0x0f00 | get(j, p[2], &mask));
        sync_to(j, (uint32_t)(p - c) + (len - 2) + imm(p + len - 2), 1); /* (stores keep the flags) */
        branch_out(j, cmp_cc[op - (ri ? X_BCMPI : X_BCMP)], (uint32_t)(p - c) + (len - 2) + imm(p + len - 2), TARGET(len - 2));
    } else if (op == X_BRNZ || op == X_BRNZL || op == X_BRZ || op == X_BRZL) {
        mask = 0;
        a = get(j, p[1], &mask);
        cmp_imm(j, a, 0, &mask);
        sync_to(j, (uint32_t)(p - c) + 2 + imm(p + 2), 1);
        branch_out(j, (op == X_BRNZ || op == X_BRNZL) ? NE : EQ, (uint32_t)(p - c) + 2 + imm(p + 2), TARGET(2));
    } else if (op >= 0x28 && op <= 0x35) {                /* 1- and 4-byte loads: dst addr off32 */
        uint32_t k = op - 0x28, x;
        mask = held(j, p[2]);
        a = get(j, p[2], &mask);
        x = ea(j, a, imm(p + 3), loads[k].n, &mask);
        d = dres(j, p[1], mask);
        h32(j, loads[k].op | 5, d << 12 | x);             /* ldr<> d, [r5, x] */
        result(j, p[1], d);
    } else if (op >= 0x36 && op <= 0x3e) {                /* 1- and 4-byte stores: addr val off32 */
        uint32_t k = op - 0x36, x;
        mask = held(j, p[1]) | held(j, p[2]);
        a = get(j, p[1], &mask);
        b = get(j, p[2], &mask);
        x = ea(j, a, imm(p + 3), stores[k].n, &mask);
        h32(j, stores[k].op | 5, b << 12 | x);            /* str<> b, [r5, x] */
    } else if (op == X_SELECT) {                          /* dst a b cond, 32 bits */
        mask = held(j, p[2]) | held(j, p[3]) | held(j, p[4]);
        t = get(j, p[4], &mask);
        a = get(j, p[2], &mask);
        b = get(j, p[3], &mask);
        cmp_imm(j, t, 0, &mask);
        d = dres(j, p[1], t == a || t == b ? mask : mask & ~(1u << t)); /* (the condition's register is free now) */
        if (d == a) { if (a != b) { h16(j, 0xbf08); mov(j, d, b); } }        /* it eq; mov d, b */
        else if (d == b) { h16(j, 0xbf18); mov(j, d, a); }                  /* it ne; mov d, a */
        else { h16(j, 0xbf14); mov(j, d, a); mov(j, d, b); }                /* ite ne; mov d, a; mov d, b */
        result(j, p[1], d);
    } else if (op == X_CONST32) {
        d = dres(j, p[1], 0);
        kon(j, d, imm(p + 2));
        result(j, p[1], d);
    } else {                                              /* wrap, eqz, clz, ctz: dst src */
        mask = held(j, p[2]);
        a = get(j, p[2], &mask);
        d = dres(j, p[1], mask);
        if (op == 0xa7 || op == X_COPY) { if (d != a) h32(j, 0xea4f, d << 8 | a); } /* mov.w d, a */
        else {
            if (op == 0x68) { h32(j, 0xfa90 | a, 0xf0a0 | d << 8 | a); a = d; } /* rbit d, a */
            h32(j, 0xfab0 | a, 0xf080 | d << 8 | a);      /* clz d, a */
            if (op == 0x45) shift_imm(j, 1, d, d, 5);     /* lsr.w d, d, #5: 32 -> 1, else 0 */
        }
        result(j, p[1], d);
    }
    return len;
#undef TARGET
}

/*
 * Emits (or sizes) the template of the register instruction at p, in the function
 * whose code starts at c: its length in code units, 0 if it has none (the function
 * stays interpreted).
 */
static uint32_t insn(jit *j, const wasm_code *c, const wasm_code *p)
{
    const wasm_module *m = j->inst->mod;
    uint32_t op = *p & 0xff, len = hot_len(p);
    if (len) return hot(j, c, p, len);
    if (op == X_RETURN && (p[1] == X_NOSLOT || j->ret32)) { /* the frame is left: only the result is stored */
        if (p[1] != X_NOSLOT) {
            uint32_t mask = held(j, p[1]);
            slot_any(j, 0, get(j, p[1], &mask), 0);       /* str r, [fp] */
        }
        h16(j, 0x2000);                                   /* movs r0, #0 */
        h16(j, 0xbd10);                                   /* pop {r4, pc} */
        return 2;
    }
    if (j->pin && op == X_COPY && (*p & X_32)) return hot(j, c, p, 3); /* there a 32-bit copy is a move */
    if (j->pin && op == X_SELECT && (*p & X_32)) return hot(j, c, p, 5); /* and a select two */
    if (j->pin && (op == X_BR || op == X_BRL || op == X_FUEL)) { /* in a loop keeping locals in registers */
        uint32_t t = (uint32_t)(p - c) + 1 + imm(p + 1);
        if (op == X_FUEL) sync(j, p);
        else sync_to(j, t, 0);
        forget(j);
        j->r0 = WASM_NONE;
        if (op == X_FUEL) fuel_pinned(j, imm(p + 1));
        else branch_out(j, AL, t, target(j, t));
        return 3;
    }
    sync(j, p);
    j->have = j->cs[0]; /* the other templates use r0-r3 and r12 as they please: only r0 is known */
    forget(j);
    j->r0 = WASM_NONE;
#define TARGET(k) target(j, (uint32_t)(p - c) + (k) + (uint32_t)(int32_t)imm(p + (k)))
    if (op >= 0x28 && op <= 0x35) {                       /* loads */
        uint32_t k = op - 0x28, n = loads[k].n;
        address(j, p[2], imm(p + 3), n);
        if (loads[k].hi == 0) {
            mem_op(j, loads[k].op, 0, n - 1);
            st0(j, p + 5, p[1]);
        } else {
            mem_op(j, loads[k].op, 2, n - 1);
            if (loads[k].hi == 3) mem_op(j, loads[k].op, 3, 3);
            if (loads[k].hi == 1) h16(j, 0x2300);         /* movs r3, #0 */
            if (loads[k].hi == 2) h16(j, 0x17d3);         /* asrs r3, r2, #31 */
            slot64(j, 0, 2, 3, p[1]);
            if (p[1] != p[2]) j->r0 = p[2];
        }
        len = 5;
    } else if (op >= 0x36 && op <= 0x3e) {                /* stores */
        uint32_t k = op - 0x36, n = stores[k].n;
        if (n == 8) slot64(j, 1, 2, 3, p[2]);
        else if (j->have == p[2]) h16(j, 0x4602);         /* mov r2, r0 */
        else LD(2, p[2]);
        address(j, p[1], imm(p + 3), n);
        mem_op(j, stores[k].op, 2, n - 1);
        if (n == 8) mem_op(j, stores[k].op, 3, 3);
        j->r0 = p[1];
        len = 5;
    } else if (op >= X_RI && op <= X_RSUB) {              /* i32 division by 0 or -1 (the rest is hot) */
        ld0(j, p[2]);
        konst(j, 1, imm(p + 3));
        div32(j, 0x6a + op - X_RI - 10);
        st0(j, p + 5, p[1]);
        len = 5;
    } else if (op >= 0x6d && op <= 0x70) {                /* i32 division (the rest is hot) */
        if (j->have == p[3] && p[2] != p[3]) { h16(j, 0x4601); LD(0, p[2]); } /* mov r1, r0 */
        else { ld0(j, p[2]); if (p[3] == p[2]) h16(j, 0x4601); else LD(1, p[3]); }
        div32(j, op);
        st0(j, p + 4, p[1]);
        len = 4;
    } else if ((op >= 0x51 && op <= 0x5a) || (op >= 0x7c && op <= 0x8a)) { /* i64 binary */
        if (!alu64(j, op, p[1], p[2], p[3])) arith(j, op, p[1], p[2], p[3]);
        len = 4;
    } else if ((op >= 0x61 && op <= 0x66) || op == 0x96 || op == 0x97 || (op >= 0xa0 && op <= 0xa6)) { /* by the helper */
        arith(j, op, p[1], p[2], p[3]);
        len = 4;
    } else if ((op >= 0x8d && op <= 0xbb && op != 0xa7 && op != 0xac && op != 0xad) || op >= X_TRUNC_SAT) {
        arith(j, op, p[1], p[2], p[2]);                   /* rounding, f64, conversions: by the helper */
        len = 3;
    } else if (op == 0x69 || (op >= 0x79 && op <= 0x7b)) { /* popcnt, i64 clz ctz popcnt */
        arith(j, op, p[1], p[2], p[2]);
        len = 3;
    } else {
        switch (op) {
        case X_UNREACHABLE: fail(j, AL, T_UNREACH); len = 1; break;
        case X_FUEL: fuel(j, imm(p + 1)); len = 3; break;
        case X_BR: case X_BRL: branch(j, AL, TARGET(1), 0); len = 3; break;
        case X_BRTABLE: {
            uint32_t n = imm(p + 2), pm = held(j, p[1]) & j->pin;
            if (pm) mov(j, 0, (uint32_t)__builtin_ctz(pm)); /* (a loop keeps it in a register) */
            else LD(0, p[1]);
            konst(j, 1, n);
            h16(j, 0x4288);                               /* cmp r0, r1 */
            h16(j, 0xbf88);                               /* it hi */
            h16(j, 0x4608);                               /* movhi r0, r1 */
            h16(j, 0x0080);                               /* lsls r0, r0, #2 */
            h16(j, 0x4487);                               /* add pc, r0: into the table of b.w below */
            h16(j, 0xbf00);                               /* nop */
            if (!j->pin) {
                for (uint32_t k = 0; k <= n; k++) branch(j, AL, TARGET(4 + 2 * k), 0);
            } else { /* a target out of the loop goes through a stub after the table (stores, r9 and r10) */
                uint32_t at = j->n + 2 * (n + 1), t;
                for (uint32_t k = 0; k <= n; k++) {
                    t = (uint32_t)(p - c) + 4 + 2 * k + imm(p + 4 + 2 * k);
                    if (!pin_exit(j, t)) { branch(j, AL, TARGET(4 + 2 * k), 0); continue; }
                    branch(j, AL, at, 0);
                    uint16_t *o = j->out;
                    uint32_t n0 = j->n, i0 = j->ni;
                    j->out = NULL;
                    pin_store(j, t);
                    branch(j, AL, 0, 0);
                    at += j->n - n0;
                    j->n = n0;
                    j->ni = i0;
                    j->out = o;
                }
                for (uint32_t k = 0; k <= n; k++) {
                    t = (uint32_t)(p - c) + 4 + 2 * k + imm(p + 4 + 2 * k);
                    if (!pin_exit(j, t)) continue;
                    pin_store(j, t);
                    branch(j, AL, TARGET(4 + 2 * k), 0);
                }
            }
            len = 4 + 2 * (n + 1);
            break;
        }
        case X_RETURN: case X_RETN: {                     /* results to fp[0..n), ascending */
            uint32_t n = op == X_RETN ? p[2] : p[1] != X_NOSLOT;
            for (uint32_t k = 0; k < n && p[1]; k++) { slot64(j, 1, 0, 1, p[1] + k); slot64(j, 0, 0, 1, k); }
            h16(j, 0x2000);                               /* movs r0, #0 */
            h16(j, 0xbd10);                               /* pop {r4, pc} */
            len = op == X_RETN ? 3 : 2;
            break;
        }
        case X_EXT:                                       /* wasm_ext(inst, p, fp) through the helper */
            konst(j, 1, (uint32_t)(uintptr_t)p);
            h16(j, 0x4622);                               /* mov r2, r4 */
            helper_call(j, offsetof(wasm_jit_ctx, ext));
            len = X_EXT_LEN(*p);
            break;
        case X_CALL: {
            uint32_t f = imm(p + 2);
            wasm_func *callee = j->inst->funcs[f];
            if (!j->bound && f >= m->nfunc_imports && j->ent[f - m->nfunc_imports] != WASM_NONE) {
                addw(j, 0, FP, p[1] * 8u);
                branch(j, AL, j->ent[f - m->nfunc_imports], 1);
                fail(j, NE, T_EXIT);                      /* compiled code returns Z = (r0 == 0) */
            } else {                                      /* host, interpreted, another instance's */
                konst(j, 1, (uint32_t)(uintptr_t)callee);
                addw(j, 2, FP, p[1] * 8u);
                h32(j, 0xebad, 0x030a);                   /* sub r3, sp, r10: depth left, in bytes */
                helper_call(j, callee->host ? offsetof(wasm_jit_ctx, host) : offsetof(wasm_jit_ctx, call));
            }
            len = 4;
            break;
        }
        case X_CALLI: {                                   /* the callee from table 0, then as above */
            if (p[5]) return 0;                           /* another table: interpreted */
            LD(1, p[2]);
            konst(j, 2, imm(p + 3));
            h16(j, 0x4640);                               /* mov r0, r8 */
            ctx32(j, 1, 12, offsetof(wasm_jit_ctx, lookup));
            h16(j, 0x47e0);                               /* blx ip */
            h16(j, 0x28ff);                               /* cmp r0, #255: a trap code, not a function */
            fail(j, LS, T_EXIT);
            /*
             * An odd result is the Thumb entry of compiled code of this instance: call it
             * directly, as X_CALL does, so that the call costs the machine stack {r4, lr}
             * and not the C frames of call(), wasm_interp and enter.
             */
            h16(j, 0x07c1);                               /* lsls r1, r0, #31: Z if a wasm_func */
            uint32_t slow = j->n;
            h16(j, 0);
            h16(j, 0x4601);                               /* mov r1, r0 */
            addw(j, 0, FP, p[1] * 8u);
            h16(j, 0x4788);                               /* blx r1 */
            fail(j, NE, T_EXIT);                          /* Z = (r0 == 0), as after a direct call */
            uint32_t done = j->n;
            h16(j, 0);                                    /* (Z is set) */
            land(j, slow, EQ);
            h16(j, 0x4601);                               /* mov r1, r0 */
            addw(j, 2, FP, p[1] * 8u);
            h32(j, 0xebad, 0x030a);                       /* sub r3, sp, r10 */
            helper_call(j, offsetof(wasm_jit_ctx, call));
            land(j, done, EQ);
            len = 6;
            break;
        }
        case X_SELECT: {
            LD(2, p[4]);
            slot64(j, 1, 0, 1, p[2]);
            h16(j, 0x2a00);                               /* cmp r2, #0 */
            uint32_t at = j->n;
            h16(j, 0);
            slot64(j, 1, 0, 1, p[3]);
            land(j, at, NE);
            slot64(j, 0, 0, 1, p[1]);
            len = 5;
            break;
        }
        case X_COPY: case 0xbc: case 0xbd: case 0xbe: case 0xbf: /* reinterpretations copy the bits */
            slot64(j, 1, 0, 1, p[2]);
            slot64(j, 0, 0, 1, p[1]);
            j->r0 = p[1];
            len = 3;
            break;
        case X_GGET: case X_GSET: {
            wasm_global *g = j->inst->globals[p[2]];
            konst(j, 3, (uint32_t)(uintptr_t)&g->val);
            if (op == X_GGET) {
                h32(j, 0xe9d3, 0x0100);                   /* ldrd r0, r1, [r3] */
                slot64(j, 0, 0, 1, p[1]);
            } else {
                if (g->type == WASM_I32 || g->type == WASM_F32) { LD(0, p[1]); h16(j, 0x2100); } /* movs r1, #0 */
                else slot64(j, 1, 0, 1, p[1]);
                h32(j, 0xe9c3, 0x0100);                   /* strd r0, r1, [r3] */
            }
            len = 3;
            break;
        }
        case X_MSIZE:
            konst(j, 3, (uint32_t)(uintptr_t)&j->inst->mem->pages);
            h16(j, 0x6818);                               /* ldr r0, [r3] */
            ST(0, p[1]);
            len = 2;
            break;
        case X_MGROW:
            LD(1, p[2]);
            h16(j, 0x4640);                               /* mov r0, r8 */
            ctx32(j, 1, 3, offsetof(wasm_jit_ctx, grow));
            h16(j, 0x4798);                               /* blx r3 */
            ST(0, p[1]);
            ctx32(j, 1, 5, offsetof(wasm_jit_ctx, mb));
            ctx32(j, 1, MSZ, offsetof(wasm_jit_ctx, msz));
            ctx32(j, 1, MSZ4, offsetof(wasm_jit_ctx, msz4));
            len = 3;
            break;
        case X_CONST64:
            konst(j, 0, imm(p + 2));
            konst(j, 1, imm(p + 4));
            slot64(j, 0, 0, 1, p[1]);
            len = 6;
            break;
        case 0x50:                                        /* i64 eqz (i32 eqz, clz, ctz are hot) */
            slot64(j, 1, 0, 1, p[2]);
            h16(j, 0x4308);                               /* orrs r0, r1 */
            h32(j, 0xfab0, 0xf080);                       /* clz r0, r0 */
            h16(j, 0x0940);                               /* lsrs r0, r0, #5: 32 -> 1, else 0 */
            st0(j, p + 3, p[1]);
            len = 3;
            break;
        case 0xac: case 0xad: case 0xc4:                  /* extend_i32_s/u, extend32_s */
            LD(0, p[2]);
            h16(j, op == 0xad ? 0x2100 : 0x17c1);         /* movs r1, #0 / asrs r1, r0, #31 */
            slot64(j, 0, 0, 1, p[1]);
            len = 3;
            break;
        case 0xc0: case 0xc1: case 0xc2: case 0xc3:       /* extend8_s, extend16_s */
            LD(0, p[2]);
            h16(j, (op & 1) ? 0xb200 : 0xb240);           /* sxth / sxtb r0, r0 */
            if (op <= 0xc1) ST(0, p[1]);
            else { h16(j, 0x17c1); slot64(j, 0, 0, 1, p[1]); }
            len = 3;
            break;
        default:
            return 0; /* floats, call_indirect, conversions: interpreted */
        }
    }
    if (j->r0 != WASM_NONE) { j->cs[0] = j->r0; j->age[0] = ++j->clock; }
    return len;
#undef TARGET
}

/*
 * Emits (or sizes) one function: its size in halfwords, 0 if it stays
 * interpreted. `end` is the end of its register code.
 */
static uint32_t function(jit *j, const wasm_funcdef *fd, const wasm_code *end)
{
    const wasm_code *c = fd->code, *p;
    uint32_t len;
    int fresh = 0;
    j->n = 0;
    if (fd->frame_slots > 511) return 0; /* slots beyond ldr's 12-bit offset */
    j->tgt = j->tgt_all ? j->tgt_all + j->toff[j->fi] : NULL;
    if (j->tgt && !j->marked[j->fi]) { /* where branches land: found once, kept for every pass */
        fresh = 1;
        uint16_t *out = j->out;
        memset(j->tgt, 0, ((size_t)(end - c) / 32 + 1) * 4);
        j->marking = 1;
        j->out = NULL;
        for (p = c; p < end; p += len)
            if (!(len = insn(j, c, p))) break;
        j->marking = 0;
        j->out = out;
        j->n = 0;
        if (p < end) return 0;
        j->marked[j->fi] = 1;
    }
    /* what is live where branches land: found the first time, kept */
    j->live = NULL;
    if (j->tgt && j->lv) {
        if (fresh) j->lv[j->fi] = liveness(j, c, end, fd->frame_slots);
        if (j->lv[j->fi]) {
            j->lw = (fd->frame_slots + 31u) / 32u;
            j->rank = j->lv[j->fi];
            j->live = j->rank + (end - c) / 32 + 1;
            uint32_t words = (uint32_t)(end - c) / 32 + 1, nlab = j->rank[words - 1] + (uint32_t)__builtin_popcount(j->tgt[words - 1]);
            j->pinc = j->live + (size_t)nlab * j->lw;
            j->entry = j->pinc + 3 * (size_t)nlab;
            j->src = j->entry + j->lw;
        }
    }

    h16(j, 0xb510);                                           /* push {r4, lr} */
    h16(j, 0x45d5);                                           /* cmp sp, r10 */
    fail(j, CC, T_STACK);
    h16(j, 0x4604);                                           /* mov r4, r0 */
    addw(j, 1, FP, fd->frame_slots * 8);
    h16(j, 0x4549);                                           /* cmp r1, r9 */
    fail(j, HI, T_STACK);
    /* the locals are zeroed: those live where the function starts (all without liveness), one by one if few */
    uint32_t zero = 0, first = fd->nparams, last = fd->nparams + fd->nlocals;
    const uint32_t *entry = j->live ? j->entry : NULL;
    for (uint32_t k = first; k < last; k++) zero += !entry || ((entry[k >> 5] >> (k & 31)) & 1);
    if (zero) {
        h16(j, 0x2200);                                       /* movs r2, #0 */
        h16(j, 0x2300);                                       /* movs r3, #0 */
    }
    if (zero && zero <= 4) { /* (no longer than the loop below) */
        for (uint32_t k = first; k < last; k++)
            if (!entry || ((entry[k >> 5] >> (k & 31)) & 1)) slot64(j, 0, 2, 3, k); /* strd r2, r3, [fp, #k*8] */
    } else if (zero) {
        addw(j, 0, FP, fd->nparams * 8);
        addw(j, 1, FP, (fd->nparams + fd->nlocals) * 8);
        h32(j, 0xe8e0, 0x2302);                               /* 1: strd r2, r3, [r0], #8 */
        h16(j, 0x4288);                                       /* cmp r0, r1 */
        h16(j, 0xd1fb);                                       /* bne 1b */
    }

    j->r0 = WASM_NONE;
    j->pin = j->pinw = 0;
    j->pinsp = j->usedsp = 0;
    forget(j);
    {
        const wasm_module *m = j->inst->mod;
        const wasm_functype *ft = &m->types[m->func_type[m->nfunc_imports + j->fi]];
        j->ret32 = ft->nresults == 1 && (ft->results[0] == WASM_I32 || ft->results[0] == WASM_F32);
    }
    j->c = c;
    j->end = end;
    for (p = c; p < end; p += len) {
        uint32_t u = (uint32_t)(p - c);
        if (j->pin && u == j->pin_end) pin_leave(j, p);
        if (landing(j, u)) { /* (stored before the label) */
            sync_to(j, u, 0);
            j->r0 = WASM_NONE;
            forget(j);
            if (!j->pin) pin_enter(j, u, fd->nparams + fd->nlocals);
        }
        if (j->map) j->map[u] = j->n;
        if (!(len = insn(j, c, p))) return 0;
    }
    for (uint32_t k = 0; k < NSTUB; k++) {
        uint32_t e = k == T_OOB_SP ? T_OOB : k == T_EXIT_SP ? T_EXIT : k;
        j->stub[k] = j->n;
        if (k >= T_OOB_SP && !j->usedsp) continue;
        if (k >= T_OOB_SP) h16(j, 0xb002);                   /* add sp, #8: {r9, r10} */
        h16(j, e < T_EXIT ? 0x2000 | stub_err[e] : 0x2800);  /* movs r0, #err / cmp r0, #0: Z = (r0 == 0) */
        h16(j, 0xbd10);                                       /* pop {r4, pc} */
    }
    return j->n;
}


/* ---------------------------------------------------------------- runtime helpers */

static wasm_err refuel(wasm_jit_ctx *c, uint32_t n, uint32_t fuel_left)
{
    uint64_t total = c->reserve + fuel_left;
    if (total < n) { c->fuel = 0; c->reserve = 0; return WASM_TRAP_FUEL; }
    total -= n;
    c->fuel = total > WASM_FUEL_WORD ? WASM_FUEL_WORD : (uint32_t)total;
    c->reserve = total - c->fuel;
    return WASM_OK;
}

static void reload(wasm_jit_ctx *c)
{
    wasm_memory *mem = c->inst->mem;
    if (mem) { c->mb = mem->data; c->msz = mem->bytes; c->msz4 = c->msz >= 3 ? c->msz - 3 : 0; }
}

static wasm_err host(wasm_jit_ctx *c, wasm_func *f, wasm_slot *sp)
{
    c->owner->fuel = c->reserve + c->fuel;
    for (uint32_t i = 0; i < f->type->nparams; i++)
        if (f->type->params[i] == WASM_I32 || f->type->params[i] == WASM_F32) sp[i] &= 0xffffffffu;
    wasm_err e = f->host(c->inst, f->host_ctx, sp);
    reload(c);
    return e;
}

/* *d = op(*a, *b) for i32.popcnt and the i64 operators 0x79..0x8a without a template, with their traps. */
/*
 * The float operators without a template, as the interpreter computes them (wasm_exec.c):
 * f64 arithmetic and compares, f32 and f64 rounding, min and max, and the conversions
 * that involve i64 or f64 or trap.
 */
static wasm_err fnum(uint32_t op, wasm_slot *d, uint64_t a, uint64_t b)
{
    static const uint8_t kind[10] = {0, 1, 0, 1, 0, 0, 2, 3, 2, 3}, sat[8] = {0, 1, 0, 1, 2, 3, 2, 3};
    float x = f32_of(a);
    double dx = f64_of(a), dy = f64_of(b);
    wasm_slot out;
    int rc;
    switch (op) {
    case 0x61: *d = dx == dy; break;
    case 0x62: *d = dx != dy; break;
    case 0x63: *d = dx < dy; break;
    case 0x64: *d = dx > dy; break;
    case 0x65: *d = dx <= dy; break;
    case 0x66: *d = dx >= dy; break;
    case 0x8d: case 0x8e: case 0x8f: case 0x90: {
        static const uint8_t mode[4] = {WR_CEIL, WR_FLOOR, WR_TRUNC, WR_NEAREST};
        *d = wasm_f32_round((uint32_t)a, mode[op - 0x8d]);
        break;
    }
    case 0x96: case 0x97: *d = wasm_f32_minmax((uint32_t)a, (uint32_t)b, op == 0x97); break;
    case 0x99: *d = a & ~F64_SIGN; break;
    case 0x9a: *d = a ^ F64_SIGN; break;
    case 0x9b: case 0x9c: case 0x9d: case 0x9e: {
        static const uint8_t mode[4] = {WR_CEIL, WR_FLOOR, WR_TRUNC, WR_NEAREST};
        *d = wasm_f64_round(a, mode[op - 0x9b]);
        break;
    }
    case 0x9f: *d = wasm_f64_sqrt(a); break;
    case 0xa0: *d = slot_f64(dx + dy); break;
    case 0xa1: *d = slot_f64(dx - dy); break;
    case 0xa2: *d = slot_f64(dx * dy); break;
    case 0xa3: *d = slot_f64(dx / dy); break;
    case 0xa4: case 0xa5: *d = wasm_f64_minmax(a, b, op == 0xa5); break;
    case 0xa6: *d = (a & ~F64_SIGN) | (b & F64_SIGN); break;
    case 0xa8: case 0xa9: case 0xaa: case 0xab: case 0xae: case 0xaf: case 0xb0: case 0xb1: {
        uint32_t k = op - 0xa8;
        rc = wasm_trunc((k == 2 || k == 3 || k >= 8) ? dx : (double)x, kind[k], 0, &out);
        if (rc) return rc == 1 ? WASM_TRAP_INVALID_CONV : WASM_TRAP_INT_OVERFLOW;
        *d = out;
        break;
    }
    case 0xb4: *d = slot_f32((float)(int64_t)a); break;
    case 0xb5: *d = slot_f32((float)a); break;
    case 0xb6: *d = slot_f32((float)dx); break;
    case 0xb7: *d = slot_f64((double)(int32_t)a); break;
    case 0xb8: *d = slot_f64((double)(uint32_t)a); break;
    case 0xb9: *d = slot_f64((double)(int64_t)a); break;
    case 0xba: *d = slot_f64((double)a); break;
    case 0xbb: *d = slot_f64((double)x); break;
    default: { /* X_TRUNC_SAT + k */
        uint32_t k = op - X_TRUNC_SAT;
        (void)wasm_trunc((k & 2) ? dx : (double)x, sat[k], 1, &out);
        *d = out;
        break;
    }
    }
    return WASM_OK;
}

static wasm_err arith64(uint32_t op, wasm_slot *d, const wasm_slot *pa, const wasm_slot *pb)
{
    uint64_t a = *pa, b = *pb, k = b & 63;
    if ((op >= 0x61 && op <= 0x66) || (op >= 0x8d && op != 0xa7 && op != 0xac && op != 0xad)) return fnum(op, d, a, b);
    if (op >= 0x7f && op <= 0x82 && !b) return WASM_TRAP_DIV_ZERO;
    switch (op) {
    case 0x69: *d = wasm_popcnt64((uint32_t)a); break;
    case 0x79: *d = wasm_clz64(a); break;
    case 0x7a: *d = wasm_ctz64(a); break;
    case 0x7b: *d = wasm_popcnt64(a); break;
    case 0x7f:
        if (a == 0x8000000000000000ull && b == ~0ull) return WASM_TRAP_INT_OVERFLOW;
        *d = (uint64_t)((int64_t)a / (int64_t)b);
        break;
    case 0x80: *d = a / b; break;
    case 0x81: *d = b == ~0ull ? 0 : (uint64_t)((int64_t)a % (int64_t)b); break;
    case 0x82: *d = a % b; break;
    case 0x86: *d = a << k; break;
    case 0x87: *d = (uint64_t)((int64_t)a >> k); break;
    case 0x88: *d = a >> k; break;
    case 0x89: *d = wasm_rotl64(a, k); break;
    default: *d = wasm_rotl64(a, 64 - k); break; /* 0x8a */
    }
    return WASM_OK;
}

/*
 * Machine stack kept free below the floor native code may reach: a trip back into the
 * interpreter (this helper, wasm_interp, wasm_jit_call, the entry: ~270 B) and a host
 * function's frames, so that the machine_stack budget holds whatever the mix of calls.
 */
#define REENTRY 1024u

/*
 * A call the native code cannot make directly (an interpreted function, another
 * instance's, a host function reached through the table): run by the interpreter,
 * which also enters compiled code. room: bytes of machine stack left for native frames.
 */
static wasm_err call(wasm_jit_ctx *c, wasm_func *f, wasm_slot *sp, uint32_t room)
{
    wasm_err e;
    if (f->host) return host(c, f, sp);
    if (room < 8 || (uintptr_t)__builtin_frame_address(0) < c->floor) return WASM_TRAP_STACK_OVERFLOW;
    c->owner->fuel = c->reserve + c->fuel;
    e = wasm_interp(c->owner, f, sp, c->frames, room / 8 - 1);
    uint64_t left = c->owner->fuel;
    c->fuel = left > WASM_FUEL_WORD ? WASM_FUEL_WORD : (uint32_t)left;
    c->reserve = left - c->fuel;
    reload(c);
    return e;
}

/*
 * The table's element i for call_indirect with type index t: the Thumb entry (odd) of a
 * function of this instance that was compiled, which the code calls directly; any other
 * function (even: a wasm_func is word-aligned), which it calls through call(); or the
 * trap (a code below 256).
 */
static uintptr_t lookup(wasm_jit_ctx *c, uint32_t i, uint32_t t)
{
    const wasm_table *tab = c->inst->tables[0];
    const wasm_functype *want = &c->inst->mod->types[t];
    if (i >= tab->size) return WASM_TRAP_UNDEF_ELEMENT;
    wasm_func *f = tab->elems[i];
    if (!f) return WASM_TRAP_UNINIT_ELEMENT;
    if (f->type != want && !wasm_functype_eq(f->type, want)) return WASM_TRAP_INDIRECT_TYPE;
    if (f->native && f->inst == c->inst) return (uintptr_t)f->native;
    return (uintptr_t)f;
}

static wasm_err ext(wasm_jit_ctx *c, const wasm_code *ip, wasm_slot *fp) { return wasm_ext(c->inst, ip, fp); }

static uint32_t grow(wasm_jit_ctx *c, uint32_t delta)
{
    uint32_t r = wasm_memory_grow(c->inst->mem, delta);
    reload(c);
    return r;
}

/* Saves the caller's registers, loads the native registers from c and calls code(fp). */
__attribute__((naked, noinline)) static wasm_err enter(__attribute__((unused)) wasm_jit_ctx *c, __attribute__((unused)) const void *code,
                                                          __attribute__((unused)) wasm_slot *fp)
{
    __asm__ volatile(
        "push {r3-r11, lr}\n\t"
        "mov r8, r0\n\t"
        "ldr r5, [r0, #0]\n\t"
        "ldr r6, [r0, #4]\n\t"
        "ldr r7, [r0, #8]\n\t"
        "ldr r3, [r0, #12]\n\t"
        "ldr r9, [r0, #16]\n\t"
        "sub r10, sp, r3, lsl #3\n\t"
        "ldr r11, [r0, #24]\n\t"
        "ldr r3, [r0, #20]\n\t"        /* but not below the machine stack's floor */
        "cmp r10, r3\n\t"
        "it lo\n\t"
        "movlo r10, r3\n\t"
        "mov r0, r2\n\t"
        "blx r1\n\t"
        "str r7, [r8, #8]\n\t"
        "pop {r3-r11, pc}\n\t");
}

wasm_err wasm_jit_call(wasm_jit_ctx *c, wasm_instance *owner, wasm_func *f, wasm_slot *fp, uint32_t depth)
{
    wasm_memory *m = f->inst->mem;
    c->mb = m ? m->data : NULL;
    c->msz = m ? m->bytes : 0;
    c->msz4 = c->msz >= 3 ? c->msz - 3 : 0;
    c->depth = depth + 1;
    c->stack_end = owner->stack_end;
    c->floor = owner->stack_floor + REENTRY;
    c->inst = f->inst;
    c->owner = owner;
    c->refuel = (void *)refuel;
    c->host = (void *)host;
    c->grow = (void *)grow;
    c->arith = (void *)arith64;
    c->call = (void *)call;
    c->lookup = (void *)lookup;
    c->ext = (void *)ext;
    return enter(c, f->native, fp);
}

/* ---------------------------------------------------------------- compilation */

/* n rounded up to 8; SIZE_MAX (a size that does not fit) stays SIZE_MAX. */
static size_t up8(size_t n) { return n > SIZE_MAX - 7u ? SIZE_MAX : (n + 7u) & ~(size_t)7u; }

/* n zeroed bytes from the top of the arena's free space (scratch, given back by wasm_arena_top_free). */
static void *scratch(wasm_arena *a, size_t n)
{
    void *p = wasm_arena_top(a, n);
    return p ? memset(p, 0, up8(n)) : NULL;
}

static const wasm_code *end_of(const wasm_module *m, uint32_t i)
{
    return i + 1 < m->nfuncs - m->nfunc_imports ? m->funcs[i + 1].code : m->code + m->ncode;
}

/* Bytes of the branch map of own function i: one word per code unit, and one for its end. */
static size_t map_bytes(const wasm_module *m, uint32_t i)
{
    return wb_size_mul(wb_size_add((size_t)(end_of(m, i) - m->funcs[i].code), 1), 4);
}

/*
 * Arena bytes that `bytes` of code take at the arena's end, the guard's alignment gap
 * included (SIZE_MAX when that does not fit size_t); *at is where the code starts and
 * *len its block's length.
 */
static size_t code_span(const wasm_code_guard *g, const wasm_arena *a, size_t bytes, uint8_t **at, size_t *len)
{
    uintptr_t from = (uintptr_t)a->base + up8(a->used), start = from;
    *len = up8(bytes);
    if (g) start = g->place(g->ctx, from, bytes, len);
    *at = (uint8_t *)start;
    return start < from ? SIZE_MAX : wb_size_add((size_t)(start - from), *len);
}

uint32_t wasm_jit_compile(wasm_instance *inst, wasm_arena *a, const wasm_code_guard *g)
{
    const wasm_module *m = inst->mod;
    uint32_t nown = m->nfuncs - m->nfunc_imports, i, count = 0;
    size_t size = a->size, total, span, len; /* total: halfwords of native code */
    uint16_t *code;
    uint8_t *at;
    jit j;
    memset(&j, 0, sizeof j);
    j.inst = inst;
    j.a = a;
    if (!nown || !(j.ent = scratch(a, wb_size_mul(nown, 4)))) goto out;
    /* the branch-target bitmaps, a word-aligned one per function (without them: no cache, no store left out) */
    if ((j.toff = scratch(a, wb_size_mul(nown, 4))) && (j.marked = scratch(a, nown))) {
        for (i = 0, len = 0; i < nown && len < SIZE_MAX / 8; i++) {
            j.toff[i] = (uint32_t)len;
            len += (size_t)(end_of(m, i) - m->funcs[i].code) / 32 + 1;
        }
        if (i == nown) j.tgt_all = scratch(a, wb_size_mul(len, 4));
    }
    size_t lvtop = a->size; /* the liveness goes below this */
    if (j.tgt_all) j.lv = scratch(a, wb_size_mul(nown, sizeof *j.lv));

    /*
     * Which functions compile: those whose instructions all have templates and whose code
     * the branches span (sized here with every call in its longer form, which the sizes
     * below cannot exceed).
     */
    j.bound = 1;
    for (i = 0; i < nown; i++) {
        j.fi = i;
        uint32_t n = function(&j, &m->funcs[i], end_of(m, i));
        j.ent[i] = n && n < MAX_FUNC_HW ? 0 : WASM_NONE;
    }
    j.bound = 0;
    /*
     * Their sizes (a call's depends on whether its callee is compiled). If the code and
     * the largest branch map do not fit the arena, or the code is beyond BL's reach, the
     * largest functions stay interpreted, as many as cover the shortfall, and the rest
     * is sized again (a few rounds, not one per function).
     */
    for (;;) {
        size_t map = 0, room = up8(a->used) <= a->size ? a->size - up8(a->used) : 0;
        uint64_t over;
        total = 0;
        for (i = 0; i < nown; i++) {
            if (j.ent[i] == WASM_NONE) continue;
            j.fi = i;
            if (!(j.ent[i] = function(&j, &m->funcs[i], end_of(m, i)))) goto out; /* compiled in the pass before: not expected */
            total = wb_size_add(total, j.ent[i]);
            if (map_bytes(m, i) > map) map = map_bytes(m, i);
        }
        if (!total) goto out;
        size_t need = wb_size_add(code_span(g, a, wb_size_mul(total, 2), &at, &len), up8(map));
        over = need > room ? need - room : 0;
        if (total >= MAX_CODE_HW && (uint64_t)(total - MAX_CODE_HW + 1) * 2 > over) over = (uint64_t)(total - MAX_CODE_HW + 1) * 2;
        if (!over) break;
        if (a->size < lvtop) { /* the liveness is given back before any function stays interpreted */
            wasm_arena_top_free(a, lvtop);
            j.lv = NULL;
            continue;
        }
        while (over) { /* drop the largest until their code covers the shortfall */
            uint32_t big = WASM_NONE;
            for (i = 0; i < nown; i++)
                if (j.ent[i] != WASM_NONE && (big == WASM_NONE || j.ent[i] > j.ent[big])) big = i;
            if (big == WASM_NONE) goto out;
            over = (uint64_t)j.ent[big] * 2 >= over ? 0 : over - (uint64_t)j.ent[big] * 2;
            j.ent[big] = WASM_NONE;
        }
    }
    for (i = 0, total = 0; i < nown; i++) { /* total < MAX_CODE_HW from here on */
        if (j.ent[i] == WASM_NONE) continue;
        uint32_t n = j.ent[i];
        j.ent[i] = (uint32_t)total;
        total += n;
    }
    span = code_span(g, a, total * 2, &at, &len);
    if (!(code = wasm_arena_alloc(a, span))) goto out; /* below the scratch */
    code = (uint16_t *)(void *)at;                      /* past the guard's gap */
    for (i = 0; i < nown; i++) {
        size_t keep = a->size;
        if (j.ent[i] == WASM_NONE) continue;
        if (!(j.map = scratch(a, map_bytes(m, i)))) goto undo; /* sized above: not expected */
        j.base = j.ent[i];
        j.fi = i;
        j.out = NULL;
        if (!function(&j, &m->funcs[i], end_of(m, i))) goto undo; /* lays out: branch targets and trap stubs */
        j.out = code + j.base;
        if (!function(&j, &m->funcs[i], end_of(m, i))) goto undo;
        j.map = NULL;
        wasm_arena_top_free(a, keep);
        inst->own[i].native = (const uint8_t *)(code + j.base) + 1; /* Thumb */
        count++;
    }
    /* W^X: once sealed the code is no longer writable, and not executable before */
    if (g && g->seal(g->ctx, code, len)) goto undo;
    inst->native_bytes = (uint32_t)total * 2;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
out:
    wasm_arena_top_free(a, size);
    return count;
undo: /* every function interpreted, the code's arena bytes given back */
    for (i = 0; i < nown; i++) inst->own[i].native = NULL;
    count = 0;
    wasm_arena_trim(a, (size_t)(at - a->base) + len - span); /* where the span began */
    goto out;
}

#endif /* WASM_JIT */
