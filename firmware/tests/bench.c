/*
 * Interpreter vs native C on the host: recursive fib and bitwise CRC-32.
 * Usage: bench <dir with fib.wasm and crc32.wasm>
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../wasm/wasm.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint32_t native_fib(uint32_t n) { return n < 2 ? n : native_fib(n - 1) + native_fib(n - 2); }

static uint32_t native_crc(const volatile uint8_t *p, uint32_t n)
{
    uint32_t c = 0xffffffffu;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return ~c;
}

static uint8_t arena[1 << 20];

static wasm_instance *inst_of(const char *dir, const char *file, wasm_arena *a)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(1); }
    static uint8_t buf[2][4096];
    static int k;
    uint8_t *b = buf[k++];
    uint32_t len = (uint32_t)fread(b, 1, 4096, f);
    fclose(f);
    wasm_module *m;
    wasm_instance *inst;
    wasm_config cfg;
    memset(&cfg, 0, sizeof cfg);
    if (wasm_module_load(b, len, a, &m) || wasm_instantiate(m, &cfg, a, UINT64_MAX, &inst)) exit(1);
    return inst;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "build/wat";
    wasm_arena a;
    wasm_arena_init(&a, arena, sizeof arena);
    wasm_instance *fib = inst_of(dir, "fib.wasm", &a), *crc = inst_of(dir, "crc32.wasm", &a);
    const wasm_module *fm = wasm_instance_module(fib), *cm = wasm_instance_module(crc);
    uint32_t fi = (uint32_t)wasm_module_export(fm, "fib", 3, WASM_EXTERN_FUNC);
    uint32_t ci = (uint32_t)wasm_module_export(cm, "crc32", 5, WASM_EXTERN_FUNC);

    double t0 = now();
    volatile uint32_t nr = native_fib(30);
    double tn = now() - t0;
    wasm_slot s[2] = {30, 0};
    t0 = now();
    wasm_err e = wasm_call(fib, fi, s);
    double tw = now() - t0;
    printf("fib(30):   native %.4fs  wasm %.4fs  ratio %.1fx  (%s, %u == %u)\n", tn, tw, tw / tn,
           wasm_err_str(e), (unsigned)s[0], (unsigned)nr);

    uint32_t n = 60000;
    uint8_t *mem = wasm_mem_ptr(crc, 0, n);
    for (uint32_t i = 0; i < n; i++) mem[i] = (uint8_t)(i * 7 + 3);
    t0 = now();
    for (int r = 0; r < 10; r++) nr = native_crc(mem, n);
    tn = now() - t0;
    t0 = now();
    for (int r = 0; r < 10; r++) {
        s[0] = 0;
        s[1] = n;
        e = wasm_call(crc, ci, s);
    }
    tw = now() - t0;
    printf("crc32 x10: native %.4fs  wasm %.4fs  ratio %.1fx  (%s, %08x == %08x)\n", tn, tw, tw / tn,
           wasm_err_str(e), (unsigned)s[0], (unsigned)nr);
    return 0;
}
