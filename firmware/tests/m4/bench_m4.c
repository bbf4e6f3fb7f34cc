/*
 * Interpreter vs native C on an emulated Cortex-M4F (QEMU mps2-an386 with
 * -icount: SysTick then counts executed instructions, 40 per tick at the
 * model's 25 MHz, so ratios are instruction-count ratios). Also proves the
 * -Os thumb build runs: results are checked against the native code.
 */
#include <stdint.h>
#include <string.h>

#include "../../wasm/wasm.h"
#include "bench_mods.h" /* fib_wasm[], crc32_wasm[] (xxd -i) */

#include "m4.h"

__attribute__((noipa)) static uint32_t native_fib(uint32_t n)
{
    return n < 2 ? n : native_fib(n - 1) + native_fib(n - 2);
}

__attribute__((noipa)) static uint32_t native_crc(const uint8_t *p, uint32_t n)
{
    uint32_t c = 0xffffffffu;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return ~c;
}

static uint8_t arena_buf[32768];
static uint8_t wasm_mem[8192]; /* backs the crc module's 64 KiB page */

static wasm_instance *instance(const uint8_t *bin, uint32_t len, wasm_arena *a, uint8_t *mem, uint32_t cap,
                               int interpret_only)
{
    wasm_module *m;
    wasm_instance *inst;
    wasm_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.mem_buf = mem;
    cfg.mem_cap = cap;
    cfg.interpret_only = (uint8_t)interpret_only;
    cfg.code_guard = M4_CODE_GUARD;
    if (wasm_module_load(bin, len, a, &m) || wasm_instantiate(m, &cfg, a, 1000, &inst)) return NULL;
    return inst;
}

/* The speed target: wasm at most 8x native C (docs/performance.md), held by the native tier. */
#define TARGET_X10 80

/* Prints a ratio; with a target (x10, 0: none) a ratio above it is a failure. */
static int ratio(uint32_t wasm_ticks, uint32_t native_ticks, uint32_t target)
{
    uint32_t r = native_ticks ? wasm_ticks * 10 / native_ticks : 0;
    m4_put_u(", ratio x10 ", r);
    if (target && r > target) {
        m4_put_u(": over the target of x10 ", target);
        return 1;
    }
    return 0;
}

/* One engine (interpreter, or native tier where built) on both benchmarks; returns the failures. */
static int run(const char *engine, int interpret_only, uint32_t fib_native, uint32_t fib_ticks,
               uint32_t crc_native, uint32_t crc_ticks, uint32_t n)
{
    wasm_arena a;
    int fails = 0;
    m4_release(arena_buf, sizeof arena_buf);
    wasm_arena_init(&a, arena_buf, sizeof arena_buf);
    uint32_t t_load = m4_now();
    wasm_instance *fib = instance(fib_wasm, fib_wasm_len, &a, NULL, 0, interpret_only);
    size_t after_fib = a.used;
    wasm_instance *crc = instance(crc32_wasm, crc32_wasm_len, &a, wasm_mem, sizeof wasm_mem, interpret_only);
    t_load = (m4_now() - t_load) & 0xffffff; /* load, validate, translate, instantiate (and compile) both */
    if (!fib || !crc) { m4_puts("instantiate failed\n"); return 1; }
    for (uint32_t i = 0; i < n; i++) wasm_mem[i] = (uint8_t)(i * 7 + 3); /* after the data segment */
    m4_puts("\n== ");
    m4_puts(engine);
    m4_put_u(": functions compiled ", wasm_instance_native_funcs(fib, NULL, NULL) + wasm_instance_native_funcs(crc, NULL, NULL));
    m4_put_u(", arena bytes, fib module+instance ", (uint32_t)after_fib);
    m4_put_u(", crc module+instance ", (uint32_t)(a.used - after_fib));
    m4_put_u("\nload and instantiate both modules: ticks ", t_load);

    uint32_t fi = (uint32_t)wasm_module_export(wasm_instance_module(fib), "fib", 3, WASM_EXTERN_FUNC);
    uint32_t ci = (uint32_t)wasm_module_export(wasm_instance_module(crc), "crc32", 5, WASM_EXTERN_FUNC);
    wasm_slot s[2] = {20, 0};
    wasm_set_fuel(fib, 100000000);
    uint32_t t0 = m4_now();
    wasm_err e = wasm_call(fib, fi, s);
    uint32_t tw = (m4_now() - t0) & 0xffffff;
    fails += e != WASM_OK || (uint32_t)s[0] != fib_native;
    m4_put_u("\nfib(20): native ticks ", fib_ticks);
    m4_put_u(", wasm ticks ", tw);
    fails += ratio(tw, fib_ticks, interpret_only ? 0 : TARGET_X10);

    s[0] = 0;
    s[1] = n;
    wasm_set_fuel(crc, 100000000);
    t0 = m4_now();
    e = wasm_call(crc, ci, s);
    tw = (m4_now() - t0) & 0xffffff;
    fails += e != WASM_OK || (uint32_t)s[0] != crc_native;
    m4_put_u("\ncrc32(4 KiB): native ticks ", crc_ticks);
    m4_put_u(", wasm ticks ", tw);
    fails += ratio(tw, crc_ticks, interpret_only ? 0 : TARGET_X10);
    m4_puts(fails ? "\nFAILED (results or target)\n" : "\nresults match native\n");
    return fails;
}

int main(void)
{
    int fails = 0;
    SYST_RVR = 0xffffff;
    SYST_CVR = 0;
    SYST_CSR = 5; /* enable, processor clock */
    {
        uint32_t t = m4_now(), n = 1000000;
        __asm__ volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(n));
        m4_put_u("calibration: 2,000,000 instructions = ticks ", (m4_now() - t) & 0xffffff);
        m4_puts("\n");
    }

    volatile uint32_t arg = 20;
    uint32_t t0 = m4_now();
    volatile uint32_t nf = native_fib(arg);
    uint32_t fib_ticks = (m4_now() - t0) & 0xffffff;

    volatile uint32_t vn = 4096;
    uint32_t n = vn;
    for (uint32_t i = 0; i < n; i++) wasm_mem[i] = (uint8_t)(i * 7 + 3);
    t0 = m4_now();
    volatile uint32_t nc = native_crc(wasm_mem, n);
    uint32_t crc_ticks = (m4_now() - t0) & 0xffffff;

    fails += run("interpreter", 1, nf, fib_ticks, nc, crc_ticks, n);
#if defined(WASM_JIT)
    fails += run("native tier (WASM_JIT)", 0, nf, fib_ticks, nc, crc_ticks, n);
#endif
    return fails;
}
