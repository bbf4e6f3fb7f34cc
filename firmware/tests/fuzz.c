/*
 * Mutation smoke test: flips bytes of real modules and feeds them to the
 * loader; every module that still validates is instantiated and each
 * exported function is called with zero arguments under a small fuel
 * budget. Under ASan/UBSan this checks that a validated module can never
 * make the interpreter read or write outside its own buffers.
 * Usage: fuzz <iterations> file.wasm...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../wasm/wasm.h"

static uint8_t arena[1 << 20];
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

static wasm_err no_imports(void *ctx, const wasm_import *im, wasm_extern *out)
{
    (void)ctx; (void)im; (void)out;
    return WASM_E_UNKNOWN_IMPORT;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 1000;
    int nfiles = argc - 2;
    uint8_t **bins = calloc((size_t)(nfiles > 0 ? nfiles : 1), sizeof *bins);
    uint32_t *lens = calloc((size_t)(nfiles > 0 ? nfiles : 1), sizeof *lens);
    unsigned long loaded = 0, ran = 0;
    for (int i = 0; i < nfiles; i++) {
        FILE *f = fopen(argv[i + 2], "rb");
        if (!f) continue;
        fseek(f, 0, SEEK_END);
        lens[i] = (uint32_t)ftell(f);
        fseek(f, 0, SEEK_SET);
        bins[i] = malloc(lens[i] + 1);
        if (fread(bins[i], 1, lens[i], f) != lens[i]) lens[i] = 0;
        fclose(f);
    }
    if (nfiles <= 0) return 0;
    for (long it = 0; it < iters; it++) {
        int k = (int)(next() % (uint32_t)nfiles);
        if (!lens[k]) continue;
        uint32_t len = lens[k];
        uint8_t *b = malloc(len);
        memcpy(b, bins[k], len);
        int flips = 1 + (int)(next() % 4);
        for (int j = 0; j < flips; j++) {
            uint32_t pos = 8 + next() % (len > 8 ? len - 8 : 1);
            if (pos < len) b[pos] = (uint8_t)next();
        }
        if (next() % 8 == 0) len -= next() % len; /* truncation */
        wasm_arena a;
        wasm_module *m;
        wasm_instance *inst;
        wasm_arena_init(&a, arena, sizeof arena);
        if (wasm_module_load(b, len, &a, &m) == WASM_OK) {
            wasm_config cfg;
            memset(&cfg, 0, sizeof cfg);
            cfg.resolve = no_imports;
            cfg.mem_cap = 2 * 65536; /* memories bigger than this are short-backed */
            loaded++;
            if (wasm_instantiate(m, &cfg, &a, 100000, &inst) == WASM_OK) {
                for (uint32_t f = 0; f < 64; f++) {
                    wasm_func *fn = wasm_instance_func(inst, f);
                    wasm_slot slots[300] = {0};
                    if (!fn || wasm_func_type(fn)->nparams > 200 || wasm_func_type(fn)->nresults > 1) continue;
                    wasm_set_fuel(inst, 100000);
                    (void)wasm_call_func(inst, fn, slots);
                    ran++;
                }
            }
        }
        free(b);
    }
    printf("fuzz: %ld mutations, %lu still valid, %lu calls run, no crash\n", iters, loaded, ran);
    for (int i = 0; i < nfiles; i++) free(bins[i]);
    free(bins);
    free(lens);
    return 0;
}
