/*
 * Mutation smoke test: flips bytes of real modules and feeds them to the
 * loader; every module that still validates is instantiated and each
 * exported function is called with zero arguments under a small fuel
 * budget. Under ASan/UBSan this checks that a validated module can never
 * make the interpreter read or write outside its own buffers.
 *
 * Built with -DWASM_JIT (make fuzz-m4, on the emulated Cortex-M4F) it is a
 * differential test of the native tier: every surviving mutant is
 * instantiated by both engines and each function is called with zeros and
 * with random arguments; the trap, result, fuel left, globals and a hash of
 * linear memory must be the same.
 * Usage: fuzz <iterations> file.wasm... (or @list: a file of paths, one a line)
 *        fuzz -g <modules>: random valid modules from tests/gen.c instead of mutants
 *        fuzz -e <modules>: size-edge modules from tests/gen.c, each with the outcome it must
 *                           have (load error, instantiation, table, memory, call)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../wasm/wasm.h"
#include "gen.h"
#include "paths.h"

#if defined(WASM_JIT)
#define ARENA_BYTES (2u << 20)
/* both engines' arenas, in the PSRAM of the emulated board (tests/m4/spec_m4.ld) */
static uint8_t arenas[2][ARENA_BYTES] __attribute__((aligned(8), section(".bss.spec_arena")));
#else
static uint8_t arena[1 << 20];
#endif
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

#if defined(WASM_JIT)
typedef struct {
    wasm_err err;
    wasm_slot res;
    uint64_t fuel, globals;
    uint32_t mem;
} outcome;

/* A value as both instances can compare it: a funcref to one of inst's functions is its
 * index (+1; 0 is null), not the address of that instance's wasm_func. */
static uint64_t comparable(wasm_instance *inst, uint8_t type, wasm_slot v)
{
    const wasm_func *f;
    if (type != WASM_FUNCREF || !v) return v;
    for (uint32_t i = 0; (f = wasm_instance_func(inst, i)) != NULL; i++)
        if ((uintptr_t)f == v) return (uint64_t)i + 1;
    return v;
}

/* What a call of fn left behind: trap, result, fuel, a sum of the globals, a hash of memory. */
static void observe(wasm_instance *inst, const wasm_func *fn, wasm_err err, const wasm_slot *res, outcome *o)
{
    wasm_memory *mem = wasm_instance_memory(inst);
    const wasm_functype *ft = wasm_func_type(fn);
    wasm_global *g;
    memset(o, 0, sizeof *o);
    o->err = err;
    o->res = err || !ft->nresults ? 0 : comparable(inst, ft->results[0], res[0]);
    o->fuel = wasm_get_fuel(inst);
    for (uint32_t i = 0; (g = wasm_instance_global(inst, i)) != NULL; i++)
        o->globals = o->globals * 31 + comparable(inst, g->type, g->val);
    o->mem = 2166136261u;
    if (mem)
        for (uint32_t i = 0; i + 4 <= mem->bytes; i += 4) { /* FNV-1a over words: a whole page per call */
            uint32_t w;
            memcpy(&w, mem->data + i, 4);
            o->mem = (o->mem ^ w) * 16777619u;
        }
}

/* Both engines on one module; returns the number of differences (printed). */
static unsigned differ(const uint8_t *b, uint32_t len, unsigned long *ran)
{
    wasm_instance *inst[2] = {NULL, NULL};
    wasm_err ierr[2];
    unsigned diffs = 0;
    uint32_t nat = 0;
    for (int e = 0; e < 2; e++) {
        wasm_arena a;
        wasm_module *m;
        wasm_config cfg;
        wasm_arena_init(&a, arenas[e], ARENA_BYTES);
        if (wasm_module_load(b, len, &a, &m) != WASM_OK) return 0;
        memset(&cfg, 0, sizeof cfg);
        cfg.resolve = no_imports;
        cfg.mem_cap = 2 * 65536;
        cfg.interpret_only = (uint8_t)(e == 0);
        ierr[e] = wasm_instantiate(m, &cfg, &a, 20000, &inst[e]);
    }
    if (ierr[0] != ierr[1]) {
        printf("DIFF instantiate: interpreter %d, native tier %d\n", ierr[0], ierr[1]);
        return 1;
    }
    if (ierr[0]) return 0;
    nat = wasm_instance_native_funcs(inst[1], NULL, NULL);
    for (uint32_t f = 0; f < 64; f++) {
        for (int round = 0; round < 2; round++) {
            outcome o[2];
            wasm_slot args[16];
            for (int i = 0; i < 16; i++) args[i] = round ? ((uint64_t)next() << 32 | next()) : 0;
            for (int e = 0; e < 2; e++) {
                wasm_func *fn = wasm_instance_func(inst[e], f);
                wasm_slot slots[16];
                if (!fn || wasm_func_type(fn)->nparams > 16 || wasm_func_type(fn)->nresults > 1) goto next_func;
                memcpy(slots, args, sizeof slots);
                for (uint32_t i = 0; i < wasm_func_type(fn)->nparams; i++) /* a reference the caller passes is valid: null */
                    if (wasm_func_type(fn)->params[i] == WASM_FUNCREF || wasm_func_type(fn)->params[i] == WASM_EXTERNREF) slots[i] = 0;
                wasm_set_fuel(inst[e], 20000);
                observe(inst[e], fn, wasm_call_func(inst[e], fn, slots), slots, &o[e]);
            }
            (*ran)++;
            if (o[0].err != o[1].err || o[0].res != o[1].res || o[0].fuel != o[1].fuel ||
                o[0].globals != o[1].globals || o[0].mem != o[1].mem) {
                printf("DIFF function %u round %d (%u compiled): interpreter err %d res %llx fuel %llu mem %08x; "
                       "native tier err %d res %llx fuel %llu mem %08x\n", (unsigned)f, round, (unsigned)nat,
                       o[0].err, (unsigned long long)o[0].res, (unsigned long long)o[0].fuel, (unsigned)o[0].mem,
                       o[1].err, (unsigned long long)o[1].res, (unsigned long long)o[1].fuel, (unsigned)o[1].mem);
                diffs++;
            }
        }
    next_func:;
    }
    return diffs;
}
#endif

/* The modules to mutate: every file named on the command line (paths.h). */
typedef struct {
    uint8_t **bins;
    uint32_t *lens;
    int n, cap;
} inputs;

static void add_input(const char *path, void *ctx)
{
    inputs *in = ctx;
    FILE *f = fopen(path, "rb");
    if (!f) return;
    if (in->n == in->cap) {
        in->cap = in->cap ? 2 * in->cap : 64;
        in->bins = realloc(in->bins, (size_t)in->cap * sizeof *in->bins);
        in->lens = realloc(in->lens, (size_t)in->cap * sizeof *in->lens);
    }
    fseek(f, 0, SEEK_END);
    uint32_t len = (uint32_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(len + 1);
    if (fread(b, 1, len, f) == len && len) {
        in->bins[in->n] = b;
        in->lens[in->n++] = len;
    } else {
        free(b);
    }
    fclose(f);
}

#if defined(WASM_JIT)
static unsigned long differences;

static void run_module(const uint8_t *b, uint32_t len, unsigned long *loaded, unsigned long *ran)
{
    wasm_module *m;
    wasm_arena a;
    wasm_arena_init(&a, arenas[0], ARENA_BYTES);
    if (wasm_module_load(b, len, &a, &m) != WASM_OK) return;
    (*loaded)++;
    differences += differ(b, len, ran);
}
#else
static void run_module(const uint8_t *b, uint32_t len, unsigned long *loaded, unsigned long *ran)
{
    wasm_arena a;
    wasm_module *m;
    wasm_instance *inst;
    wasm_arena_init(&a, arena, sizeof arena);
    if (wasm_module_load(b, len, &a, &m) != WASM_OK) return;
    wasm_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.resolve = no_imports;
    cfg.mem_cap = 2 * 65536; /* memories bigger than this are short-backed */
    (*loaded)++;
    if (wasm_instantiate(m, &cfg, &a, 100000, &inst) != WASM_OK) return;
    for (uint32_t f = 0; f < 64; f++) {
        wasm_func *fn = wasm_instance_func(inst, f);
        wasm_slot slots[300] = {0};
        if (!fn || wasm_func_type(fn)->nparams > 200 || wasm_func_type(fn)->nresults > 1) continue;
        wasm_set_fuel(inst, 100000);
        (void)wasm_call_func(inst, fn, slots);
        (*ran)++;
    }
}
#endif

/* Size-edge modules (gen.h): every one must load, instantiate and run as its generator says. */
static int run_edges(long n)
{
#if defined(WASM_JIT)
    uint8_t *buf = arenas[0];
    size_t size = ARENA_BYTES;
#else
    uint8_t *buf = arena;
    size_t size = sizeof arena;
#endif
    unsigned long failed = 0, loaded = 0;
    for (long it = 0; it < n; it++) {
        static uint8_t mod[4096];
        gen_edge e;
        gen_edge_want want;
        char why[160], name[96];
        gen_edge_pick(&e, next);
        uint32_t len = gen_edge_module(&e, mod, sizeof mod, &want);
        loaded += want.load == WASM_OK;
        if (!len || gen_edge_check(&e, mod, len, &want, buf, size, why, sizeof why)) {
            gen_edge_name(&e, name, sizeof name);
            printf("size-edge module %ld (%s): %s\n", it, name, len ? why : "does not fit the buffer");
            if (++failed == 20) break;
        }
    }
    printf("fuzz: %ld size-edge modules, %lu load, %lu not as expected\n", n, loaded, failed);
    return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc > 2 && !strcmp(argv[1], "-e")) return run_edges(atol(argv[2]));
    int generate = argc > 2 && !strcmp(argv[1], "-g");
    long iters = argc > 1 + generate ? atol(argv[1 + generate]) : 1000;
    inputs in = {NULL, NULL, 0, 0};
    for (int i = 2 + generate; i < argc; i++)
        if (each_path(argv[i], add_input, &in)) {
            printf("%s: cannot open\n", argv[i] + 1);
            return 1;
        }
    if (!generate && !in.n) {
        printf("fuzz: no module to mutate\n");
        return 1;
    }
    unsigned long loaded = 0, ran = 0;
    for (long it = 0; generate && it < iters; it++) {
        static uint8_t mod[16384];
        uint32_t len = gen_module(mod, sizeof mod, next);
        unsigned long before = loaded;
#if defined(WASM_JIT)
        unsigned long seen = differences;
#endif
        run_module(mod, len, &loaded, &ran);
        if (loaded == before) {
            printf("generated module %ld does not validate\n", it);
            return 1;
        }
#if defined(WASM_JIT)
        if (differences != seen) { /* kept for wasm2wat and a regression test */
            char name[64];
            snprintf(name, sizeof name, "build/arm/fuzz_diff_%ld.wasm", it);
            FILE *f = fopen(name, "wb");
            if (f) { fwrite(mod, 1, len, f); fclose(f); printf("module kept as %s\n", name); }
        }
#endif
    }
    for (long it = 0; !generate && it < iters; it++) {
        int k = (int)(next() % (uint32_t)in.n);
        uint32_t len = in.lens[k];
        uint8_t *b = malloc(len);
        memcpy(b, in.bins[k], len);
        int flips = 1 + (int)(next() % 4);
        for (int j = 0; j < flips; j++) {
            uint32_t pos = 8 + next() % (len > 8 ? len - 8 : 1);
            if (pos < len) b[pos] = (uint8_t)next();
        }
        if (next() % 8 == 0) len -= next() % len; /* truncation */
        run_module(b, len, &loaded, &ran);
        free(b);
    }
    for (int i = 0; i < in.n; i++) free(in.bins[i]);
    free(in.bins);
    free(in.lens);
#if defined(WASM_JIT)
    printf("fuzz (native tier vs interpreter): %ld %s, %lu valid, %lu calls compared, %lu differences\n",
           iters, generate ? "generated modules" : "mutations", loaded, ran, differences);
    return differences ? 1 : 0;
#else
    printf("fuzz: %ld %s, %lu valid, %lu calls run, no crash\n", iters, generate ? "generated modules" : "mutations",
           loaded, ran);
    return 0;
#endif
}
