/*
 * The kernel suite (tests/m4/kernels.c) natively and through both engines on an emulated
 * Cortex-M4F: QEMU mps2-an386 with -icount, where SysTick counts executed instructions
 * (40 per tick at the model's 25 MHz), so ratios are instruction-count ratios. With
 * -DBENCH_DWT (real boards: Cortex-M3/M4 with a DWT; QEMU has none) the counts are core
 * cycles from DWT->CYCCNT instead. Each kernel runs as C built at -Os and at -O2 and as
 * the wasm module clang-19 made of the same source; every engine's result must equal the
 * native one. The native tier's geomean ratio to -O2 is held to TARGET_X100.
 */
#include <stdint.h>
#include <string.h>

#include "../../wasm/wasm.h"
#include "kernels_wasm.h" /* kernels_wasm[] (xxd -i) */

#include "m4.h"

/* The speed target the run fails above: the native tier's geomean over the suite against -O2, x100. */
#ifndef TARGET_X100
#define TARGET_X100 800
#endif

#define KERNELS(X) X(init) X(crc32) X(matmul_i32) X(matmul_f32) X(sort) X(state) X(sha256) X(fib) X(search)
#define DECL(k) uint32_t Os_##k(uint32_t); uint32_t O2_##k(uint32_t);
KERNELS(DECL)

typedef uint32_t (*kfn)(uint32_t);
static const struct {
    const char *name;
    uint32_t arg;
    kfn os, o2;
} kernels[] = {
    {"crc32", 4096, Os_crc32, O2_crc32},       {"matmul_i32", 8, Os_matmul_i32, O2_matmul_i32},
    {"matmul_f32", 8, Os_matmul_f32, O2_matmul_f32}, {"sort", 512, Os_sort, O2_sort},
    {"state", 8, Os_state, O2_state},          {"sha256", 4096, Os_sha256, O2_sha256},
    {"fib", 22, Os_fib, O2_fib},               {"search", 1024, Os_search, O2_search},
};
#define NK (sizeof kernels / sizeof kernels[0])
#define SEED 12345u

#ifdef BENCH_DWT
/* Core cycles: DWT->CYCCNT, enabled by DEMCR.TRCENA and DWT_CTRL.CYCCNTENA (ARMv7-M). */
#define DEMCR (*(volatile uint32_t *)0xe000edfc)
#define DWT_CTRL (*(volatile uint32_t *)0xe0001000)
#define DWT_CYCCNT (*(volatile uint32_t *)0xe0001004)
static void counter_start(void)
{
    DEMCR |= 1u << 24;
    DWT_CYCCNT = 0;
    DWT_CTRL |= 1u;
}
static uint32_t now(void) { return DWT_CYCCNT; }
static uint32_t elapsed(uint32_t t0) { return now() - t0; }
#define UNIT "cycles"
#else
static void counter_start(void)
{
    SYST_RVR = 0xffffff;
    SYST_CVR = 0;
    SYST_CSR = 5; /* enable, processor clock */
}
static uint32_t now(void) { return m4_now(); }
/* Instructions (40 per SysTick tick under -icount shift=0; checked by the calibration below). */
static uint32_t elapsed(uint32_t t0) { return ((m4_now() - t0) & 0xffffff) * 40u; }
#define UNIT "instructions"
#endif

static uint8_t arena_buf[49152];
static uint8_t wasm_mem[32768]; /* backs the module's 64 KiB page: 8 KiB of stack, then the data */

/* v / 100 with two decimals. */
static void put_x100(const char *label, uint32_t v)
{
    char frac[4] = {(char)('.'), (char)('0' + v / 10 % 10), (char)('0' + v % 10), 0};
    m4_put_u(label, v / 100);
    m4_puts(frac);
}

/* a / b x 100, rounded. */
static uint32_t x100(uint32_t a, uint32_t b) { return b ? (uint32_t)(((uint64_t)a * 200 / b + 1) / 2) : 0; }

/* The geometric mean of n ratios (x100), by bisection on the product (no libm). */
static uint32_t geomean(const uint32_t *r, uint32_t n)
{
    double lo = 0, hi = 100000;
    for (int it = 0; it < 60; it++) {
        double mid = (lo + hi) / 2, p = 1;
        for (uint32_t i = 0; i < n; i++) p *= mid / (double)r[i]; /* (mid^n) / prod(r) */
        if (p < 1) lo = mid;
        else hi = mid;
    }
    return (uint32_t)(lo + 0.5);
}

typedef struct {
    const char *name;
    int interpret_only;
    uint32_t count[NK];
    uint32_t start; /* load, validate, translate, instantiate (and compile) */
    uint32_t arena, code, compiled, defined;
    uint32_t code_of[NK]; /* bytes of native code of each kernel's functions */
} engine;

static int run(engine *e, const uint32_t *want)
{
    wasm_arena a;
    wasm_module *m;
    wasm_instance *inst;
    wasm_config cfg;
    int fails = 0;
    m4_release(arena_buf, sizeof arena_buf);
    wasm_arena_init(&a, arena_buf, sizeof arena_buf);
    memset(&cfg, 0, sizeof cfg);
    cfg.mem_buf = wasm_mem;
    cfg.mem_cap = sizeof wasm_mem;
    cfg.interpret_only = (uint8_t)e->interpret_only;
    cfg.code_guard = M4_CODE_GUARD;
    memset(wasm_mem, 0, sizeof wasm_mem);
    uint32_t t0 = now();
    if (wasm_module_load(kernels_wasm, kernels_wasm_len, &a, &m) || wasm_instantiate(m, &cfg, &a, 1000, &inst)) {
        m4_puts("kernels module: load or instantiate failed\n");
        return 1;
    }
    e->start = elapsed(t0);
    e->arena = (uint32_t)a.used;
    e->compiled = wasm_instance_native_funcs(inst, &e->defined, &e->code);

    /* Code bytes per function: compiled functions lie in index order, each up to the next. */
    uint32_t nf = e->defined, first = 0;
    const uint8_t *lo = NULL;
    for (uint32_t f = 0; f < nf; f++) {
        const uint8_t *p = wasm_instance_func(inst, f)->native;
        if (p && (!lo || p < lo)) lo = p;
    }
    int32_t owner = -1; /* an export's helpers (quicksort) follow it: counted with it */
    for (uint32_t f = 0; f < nf; f++) {
        const uint8_t *p = wasm_instance_func(inst, f)->native, *q = NULL;
        for (uint32_t k = 0; k < NK; k++)
            if ((int32_t)wasm_module_export(m, kernels[k].name, (uint32_t)strlen(kernels[k].name), WASM_EXTERN_FUNC) ==
                (int32_t)f) owner = (int32_t)k;
        if (!p) continue;
        for (uint32_t g = f + 1; g < nf && !q; g++) q = wasm_instance_func(inst, g)->native;
        uint32_t bytes = q ? (uint32_t)(q - p) : (uint32_t)(lo + e->code - (p - 1) - 1);
        if (owner >= 0) e->code_of[owner] += bytes;
#ifdef BENCH_DUMP
        /* the code of every compiled function in hex, for objdump -b binary -m arm -M force-thumb */
        if (!e->interpret_only) {
            m4_put_u("code of function ", f);
            m4_puts(": ");
            for (uint32_t b = 0; b < bytes; b++) {
                char hx[3] = {"0123456789abcdef"[(p - 1)[b] >> 4], "0123456789abcdef"[(p - 1)[b] & 15], 0};
                m4_puts(hx);
            }
            m4_puts("\n");
        }
#endif
        else first += bytes;
    }
    (void)first;

    uint32_t init = (uint32_t)wasm_module_export(m, "init", 4, WASM_EXTERN_FUNC);
    for (uint32_t k = 0; k < NK; k++) {
        uint32_t f = (uint32_t)wasm_module_export(m, kernels[k].name, (uint32_t)strlen(kernels[k].name), WASM_EXTERN_FUNC);
        wasm_slot s[1] = {SEED};
        wasm_set_fuel(inst, 4000000000u);
        wasm_err err = wasm_call(inst, init, s);
        s[0] = kernels[k].arg;
        t0 = now();
        if (!err) err = wasm_call(inst, f, s);
        e->count[k] = elapsed(t0);
        if (err || (uint32_t)s[0] != want[k]) {
            m4_puts(e->name);
            m4_puts(": ");
            m4_puts(kernels[k].name);
            m4_put_u(" returned ", (uint32_t)s[0]);
            m4_put_u(" (error ", (uint32_t)err);
            m4_put_u("), native C: ", want[k]);
            m4_puts("\n");
            fails++;
        }
    }
    return fails;
}

/* v right-aligned in w columns. */
static void put_num(uint32_t v, int w)
{
    char num[12];
    int n = 11;
    num[n] = 0;
    do { num[--n] = (char)('0' + v % 10); v /= 10; } while (v && n > 0);
    for (int sp = 11 - n; sp < w; sp++) m4_puts(" ");
    m4_puts(num + n);
}

/* v / 100 with two decimals, right-aligned in 7 columns. */
static void put_ratio(uint32_t v)
{
    m4_puts(v < 1000 ? "   " : v < 10000 ? "  " : " ");
    put_x100("", v);
}

static void pad(const char *s, uint32_t w)
{
    uint32_t n = (uint32_t)strlen(s);
    m4_puts(s);
    while (n++ < w) m4_puts(" ");
}

int main(void)
{
    int fails = 0;
    uint32_t os[NK], o2[NK], want[NK];
    counter_start();
    {
        uint32_t t = now(), n = 1000000;
        __asm__ volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(n));
        m4_put_u("calibration: a loop of 2,000,000 instructions counts ", elapsed(t));
        m4_puts(" " UNIT "\n");
    }
    for (uint32_t k = 0; k < NK; k++) {
        uint32_t t0;
        Os_init(SEED);
        t0 = now();
        want[k] = kernels[k].os(kernels[k].arg);
        os[k] = elapsed(t0);
        O2_init(SEED);
        t0 = now();
        uint32_t r = kernels[k].o2(kernels[k].arg);
        o2[k] = elapsed(t0);
        if (r != want[k]) {
            m4_puts(kernels[k].name);
            m4_puts(": -O2 and -Os disagree\n");
            fails++;
        }
    }

    static engine engines[2] = {{.name = "interpreter", .interpret_only = 1}, {.name = "native tier", .interpret_only = 0}};
#if defined(WASM_JIT)
    const uint32_t ne = 2;
#else
    const uint32_t ne = 1;
#endif
    for (uint32_t i = 0; i < ne; i++) fails += run(&engines[i], want);

    m4_puts("\nkernel       native -Os  native -O2");
    for (uint32_t i = 0; i < ne; i++) {
        m4_puts(" | ");
        pad(engines[i].name, 12);
        m4_puts("   x-Os   x-O2");
    }
    m4_puts(" | code B\n");
    uint32_t r_os[2][NK], r_o2[2][NK];
    for (uint32_t k = 0; k < NK; k++) {
        pad(kernels[k].name, 12);
        put_num(os[k], 11);
        put_num(o2[k], 12);
        for (uint32_t i = 0; i < ne; i++) {
            r_os[i][k] = x100(engines[i].count[k], os[k]);
            r_o2[i][k] = x100(engines[i].count[k], o2[k]);
            m4_puts(" |");
            put_num(engines[i].count[k], 12);
            put_ratio(r_os[i][k]);
            put_ratio(r_o2[i][k]);
        }
        m4_puts(" |");
        put_num(engines[ne - 1].code_of[k], 7);
        m4_puts("\n");
    }
    for (uint32_t i = 0; i < ne; i++) {
        uint32_t g_os = geomean(r_os[i], NK), g_o2 = geomean(r_o2[i], NK);
        m4_puts("geomean, ");
        m4_puts(engines[i].name);
        put_x100(": x-Os ", g_os);
        put_x100(", x-O2 ", g_o2);
        m4_puts("; start (load, validate, translate, instantiate");
        m4_puts(i ? ", compile): " : "): ");
        m4_put_u("", engines[i].start);
        m4_puts(" " UNIT);
        m4_put_u("; arena ", engines[i].arena);
        m4_put_u(" B; functions compiled ", engines[i].compiled);
        m4_put_u(" of ", engines[i].defined);
        m4_put_u(", code ", engines[i].code);
        m4_puts(" B\n");
        if (i == 1 && g_o2 > TARGET_X100) {
            put_x100("FAILED: the native tier's geomean against -O2 is over the target of x", TARGET_X100);
            m4_puts("\n");
            fails++;
        }
    }
    m4_puts(fails ? "FAILED (results or target)\n" : "results match native C\n");
    return fails;
}
