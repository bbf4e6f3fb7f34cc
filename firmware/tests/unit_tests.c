/*
 * Unit tests on real modules (the .wat files in tests/wat, built by wat2wasm) and on
 * hand-assembled binaries. Usage: unit_tests <dir with the .wasm files>
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../wasm/wasm.h"

/* tests/app_tests.c */
void run_app_tests(const char *wasm_dir, int *checks, int *failures);
/* tests/size_tests.c */
void run_size_tests(int *checks, int *failures);

static const char *wasm_dir;
#include "check.h"

static uint8_t *load_file(const char *name, uint32_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", wasm_dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n);
    if (fread(b, 1, (size_t)n, f) != (size_t)n) n = 0;
    fclose(f);
    *len = (uint32_t)n;
    return b;
}

/* ------------------------------------------------------------------ calls on real modules */

typedef struct call_case {
    const char *file, *func;
    int nargs;
    uint64_t args[3];
    wasm_err want_err;
    int has_result;
    uint64_t want;
    uint64_t fuel;       /* 0: plenty */
    uint32_t mem_cap;    /* 0: full declared pages */
    uint32_t depth;      /* call depth, 0: default */
    uint32_t slots;      /* value stack slots, 0: default */
} call_case;

static const call_case calls[] = {
    {"fib.wasm", "fib", 1, {10}, WASM_OK, 1, 55, 0, 0, 0, 0},
    {"fib.wasm", "fib", 1, {20}, WASM_OK, 1, 6765, 0, 0, 0, 0},
    {"fib.wasm", "fib_iter", 1, {90}, WASM_OK, 1, 2880067194370816120ull, 0, 0, 0, 0},
    {"fib.wasm", "fib", 1, {25}, WASM_TRAP_FUEL, 0, 0, 1000, 0, 0, 0},
    {"crc32.wasm", "crc32", 2, {0, 9}, WASM_OK, 1, 0xcbf43926u, 0, 0, 0, 0},
    /* translator rewrites (tests/wat/translate.wat) */
    {"translate.wasm", "defer_block", 2, {5, 1}, WASM_OK, 1, 10, 0, 0, 0, 0},
    {"translate.wasm", "defer_block", 2, {5, 0}, WASM_OK, 1, 105, 0, 0, 0, 0},
    {"translate.wasm", "defer_set", 1, {5}, WASM_OK, 1, 0xffffffffu, 0, 0, 0, 0},
    {"translate.wasm", "retarget", 1, {4}, WASM_OK, 1, 38, 0, 0, 0, 0},
    {"translate.wasm", "drop_then_set", 1, {4}, WASM_OK, 1, 7, 0, 0, 0, 0},
    {"translate.wasm", "br_if_value", 2, {3, 1}, WASM_OK, 1, 1003, 0, 0, 0, 0},
    {"translate.wasm", "br_if_value", 2, {3, 0}, WASM_OK, 1, 1005, 0, 0, 0, 0},
    {"translate.wasm", "br_table_value", 1, {0}, WASM_OK, 1, 10007, 0, 0, 0, 0},
    {"translate.wasm", "br_table_value", 1, {1}, WASM_OK, 1, 10107, 0, 0, 0, 0},
    {"translate.wasm", "br_table_value", 1, {2}, WASM_OK, 1, 10007, 0, 0, 0, 0},
    {"translate.wasm", "br_table_value", 1, {9}, WASM_OK, 1, 10007, 0, 0, 0, 0},
    {"translate.wasm", "if_eqz", 1, {0}, WASM_OK, 1, 11, 0, 0, 0, 0},
    {"translate.wasm", "if_eqz", 1, {6}, WASM_OK, 1, 6, 0, 0, 0, 0},
    {"translate.wasm", "const_left", 1, {4}, WASM_OK, 1, 601, 0, 0, 0, 0},
    {"translate.wasm", "const_left", 1, {0xfffffffeu}, WASM_OK, 1, 1203, 0, 0, 0, 0},
    {"translate.wasm", "select_mem", 1, {0}, WASM_OK, 1, 42, 0, 0, 0, 0},
    {"translate.wasm", "select_mem", 1, {8}, WASM_OK, 1, 8, 0, 0, 0, 0},
    {"translate.wasm", "count", 1, {100}, WASM_OK, 1, 5050, 0, 0, 0, 0},
    {"translate.wasm", "cmp_branch", 2, {1, 2}, WASM_OK, 1, 7105, 0, 0, 0, 0},
    {"translate.wasm", "cmp_branch", 2, {2, 1}, WASM_OK, 1, 8105, 0, 0, 0, 0},
    {"translate.wasm", "cmp_branch", 2, {0xffffffffu, 1}, WASM_OK, 1, 8105, 0, 0, 0, 0},
    {"translate.wasm", "count", 1, {100000}, WASM_TRAP_FUEL, 0, 0, 1000, 0, 0, 0},
    {"crc32.wasm", "crc32", 2, {65530, 10}, WASM_TRAP_MEM_OOB, 0, 0, 0, 0, 0, 0},
    {"traps.wasm", "unreachable", 0, {0}, WASM_TRAP_UNREACHABLE, 0, 0, 0, 0, 0, 0},
    {"traps.wasm", "div0", 1, {0}, WASM_TRAP_DIV_ZERO, 0, 0, 0, 0, 0, 0},
    {"traps.wasm", "div0", 1, {1}, WASM_OK, 1, 1, 0, 0, 0, 0},
    {"traps.wasm", "overflow", 0, {0}, WASM_TRAP_INT_OVERFLOW, 0, 0, 0, 0, 0, 0},
    {"traps.wasm", "oob", 1, {65532}, WASM_OK, 1, 0, 0, 0, 0, 0},
    {"traps.wasm", "oob", 1, {65533}, WASM_TRAP_MEM_OOB, 0, 0, 0, 0, 0, 0},
    {"traps.wasm", "oob", 1, {0xffffffffu}, WASM_TRAP_MEM_OOB, 0, 0, 0, 0, 0, 0},
    {"traps.wasm", "bad_conv", 0, {0}, WASM_TRAP_INVALID_CONV, 0, 0, 0, 0, 0, 0},
    {"traps.wasm", "indirect", 1, {0}, WASM_OK, 1, 1, 0, 0, 0, 0},
    {"traps.wasm", "indirect", 1, {1}, WASM_TRAP_UNINIT_ELEMENT, 0, 0, 0, 0, 0, 0},
    {"traps.wasm", "indirect", 1, {2}, WASM_TRAP_UNDEF_ELEMENT, 0, 0, 0, 0, 0, 0},
    {"traps.wasm", "spin", 0, {0}, WASM_TRAP_FUEL, 0, 0, 100000, 0, 0, 0},
    {"traps.wasm", "deep", 1, {0}, WASM_TRAP_STACK_OVERFLOW, 0, 0, 0, 0, 64, 0},
    /* value stack runs out before the call depth does */
    {"traps.wasm", "deep", 1, {0}, WASM_TRAP_STACK_OVERFLOW, 0, 0, 0, 0, 10000, 300},
    {"fib.wasm", "fib", 1, {20}, WASM_OK, 1, 6765, 0, 0, 30, 200},
    {"traps.wasm", "count", 1, {1000}, WASM_OK, 1, 0, 0, 0, 0, 0},
    {"traps.wasm", "count", 1, {1000}, WASM_TRAP_FUEL, 0, 0, 500, 0, 0, 0},
    /* small memory: one declared page backed by 4 KiB */
    {"smallmem.wasm", "load", 1, {100}, WASM_OK, 1, 'w', 0, 4096, 0, 0},
    {"smallmem.wasm", "load", 1, {4095}, WASM_OK, 1, 0, 0, 4096, 0, 0},
    {"smallmem.wasm", "load", 1, {4096}, WASM_TRAP_MEM_OOB, 0, 0, 0, 4096, 0, 0},
    {"smallmem.wasm", "size", 0, {0}, WASM_OK, 1, 1, 0, 4096, 0, 0},
    {"smallmem.wasm", "grow", 1, {1}, WASM_OK, 1, 0xffffffffu, 0, 4096, 0, 0},
    {"smallmem.wasm", "grow", 1, {0}, WASM_OK, 1, 1, 0, 4096, 0, 0},
    {"smallmem.wasm", "grow", 1, {1}, WASM_OK, 1, 1, 0, 2 * 65536, 0, 0},
    {"smallmem.wasm", "grow", 1, {2}, WASM_OK, 1, 0xffffffffu, 0, 4 * 65536, 0, 0},
};

static uint8_t arena_buf[1 << 20];

static void run_calls(void)
{
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        const call_case *c = &calls[i];
        uint32_t len;
        uint8_t *bin = load_file(c->file, &len);
        wasm_arena a;
        wasm_module *m;
        wasm_instance *inst;
        wasm_config cfg;
        CHECK(bin != NULL, "%s: missing", c->file);
        if (!bin) continue;
        wasm_arena_init(&a, arena_buf, sizeof arena_buf);
        wasm_err err = wasm_module_load(bin, len, &a, &m);
        CHECK(err == WASM_OK, "%s: load: %s", c->file, wasm_err_str(err));
        if (err) { free(bin); continue; }
        memset(&cfg, 0, sizeof cfg);
        cfg.mem_cap = c->mem_cap;
        cfg.call_depth = c->depth;
        cfg.stack_slots = c->slots;
        err = wasm_instantiate(m, &cfg, &a, UINT64_MAX, &inst);
        CHECK(err == WASM_OK, "%s: instantiate: %s", c->file, wasm_err_str(err));
        if (err) { free(bin); continue; }
        int32_t fi = wasm_module_export(m, c->func, (uint32_t)strlen(c->func), WASM_EXTERN_FUNC);
        CHECK(fi >= 0, "%s: no export %s", c->file, c->func);
        wasm_slot slots[4] = {c->args[0], c->args[1], c->args[2], 0};
        wasm_set_fuel(inst, c->fuel ? c->fuel : UINT64_MAX);
        err = wasm_call(inst, (uint32_t)fi, slots);
        CHECK(err == c->want_err, "%s %s(%llu): got '%s', want '%s'", c->file, c->func,
              (unsigned long long)c->args[0], wasm_err_str(err), wasm_err_str(c->want_err));
        if (!err && c->has_result) {
            const wasm_functype *ft = wasm_func_type(wasm_instance_func(inst, (uint32_t)fi));
            uint64_t got = ft->results[0] == WASM_I32 ? (uint32_t)slots[0] : slots[0];
            CHECK(got == c->want, "%s %s: got %llu want %llu", c->file, c->func, (unsigned long long)got,
                  (unsigned long long)c->want);
        }
        if (c->fuel && err == WASM_TRAP_FUEL) CHECK(wasm_get_fuel(inst) == 0, "fuel left after exhaustion");
        free(bin);
    }
}

/* ------------------------------------------------------------------ host functions */

static wasm_global counter = {0, WASM_I32, 1};

static wasm_err sum_bytes(wasm_instance *inst, void *ctx, wasm_slot *sp)
{
    uint32_t p = (uint32_t)sp[0], n = (uint32_t)sp[1], s = 0;
    uint8_t *b = wasm_mem_ptr(inst, p, n);
    (void)ctx;
    if (!b) return WASM_TRAP_MEM_OOB;
    for (uint32_t i = 0; i < n; i++) s += b[i];
    sp[0] = s;
    return WASM_OK;
}

static const uint8_t ii_i[] = {WASM_I32, WASM_I32, WASM_I32};
static const wasm_functype sum_type = {ii_i, ii_i + 2, 2, 1};
static const wasm_functype wrong_type = {ii_i, NULL, 1, 0};
static wasm_func sum_func = {.type = &sum_type, .host = sum_bytes};
static wasm_func wrong_func = {.type = &wrong_type, .host = sum_bytes};

static int resolve_mode; /* 0 good, 1 wrong function type, 2 immutable global */

static wasm_err resolve(void *ctx, const wasm_import *im, wasm_extern *out)
{
    (void)ctx;
    if (im->module_len != 3 || memcmp(im->module, "env", 3)) return WASM_E_UNKNOWN_IMPORT;
    if (im->name_len == 9 && !memcmp(im->name, "sum_bytes", 9)) {
        out->kind = WASM_EXTERN_FUNC;
        out->func = resolve_mode == 1 ? &wrong_func : &sum_func;
        return WASM_OK;
    }
    if (im->name_len == 7 && !memcmp(im->name, "counter", 7)) {
        static wasm_global immut = {0, WASM_I32, 0};
        out->kind = WASM_EXTERN_GLOBAL;
        out->global = resolve_mode == 2 ? &immut : &counter;
        return WASM_OK;
    }
    return WASM_E_UNKNOWN_IMPORT;
}

static void run_host(void)
{
    uint32_t len;
    uint8_t *bin = load_file("host.wasm", &len);
    wasm_arena a;
    wasm_module *m;
    wasm_instance *inst;
    wasm_config cfg;
    CHECK(bin != NULL, "host.wasm missing");
    if (!bin) return;
    for (int mode = 0; mode < 4; mode++) {
        wasm_arena_init(&a, arena_buf, sizeof arena_buf);
        CHECK(wasm_module_load(bin, len, &a, &m) == WASM_OK, "host.wasm load");
        memset(&cfg, 0, sizeof cfg);
        cfg.resolve = mode == 3 ? NULL : resolve;
        resolve_mode = mode;
        wasm_err err = wasm_instantiate(m, &cfg, &a, UINT64_MAX, &inst);
        if (mode == 1 || mode == 2) { CHECK(err == WASM_E_IMPORT_TYPE, "mode %d: %s", mode, wasm_err_str(err)); continue; }
        if (mode == 3) { CHECK(err == WASM_E_UNKNOWN_IMPORT, "no resolver: %s", wasm_err_str(err)); continue; }
        CHECK(err == WASM_OK, "host instantiate: %s", wasm_err_str(err));
        int32_t fi = wasm_module_export(m, "run", 3, WASM_EXTERN_FUNC);
        for (int k = 1; k <= 2; k++) {
            wasm_slot s[1];
            err = wasm_call(inst, (uint32_t)fi, s);
            CHECK(err == WASM_OK && (uint32_t)s[0] == 15, "run: %s %u", wasm_err_str(err), (unsigned)s[0]);
            CHECK(counter.val == (uint64_t)k, "counter %llu", (unsigned long long)counter.val);
        }
    }
    free(bin);
}

/* ------------------------------------------------------------------ hand-assembled modules */

#define HDR 0, 'a', 's', 'm', 1, 0, 0, 0
typedef struct bin_case {
    const char *name;
    uint8_t bytes[64];
    uint32_t len;
    wasm_err want;
} bin_case;

static const bin_case bins[] = {
    {"empty module", {HDR}, 8, WASM_OK},
    {"bad magic", {0, 'a', 's', 'n', 1, 0, 0, 0}, 8, WASM_E_MAGIC},
    {"bad version", {0, 'a', 's', 'm', 2, 0, 0, 0}, 8, WASM_E_VERSION},
    {"truncated header", {0, 'a', 's', 'm', 1}, 5, WASM_E_EOF},
    {"section too long", {HDR, 1, 5, 0}, 11, WASM_E_EOF},
    {"LEB too long", {HDR, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0}, 15, WASM_E_LEB_LONG},
    {"section order", {HDR, 3, 1, 0, 1, 1, 0}, 14, WASM_E_SECTION_ORDER},
    {"bad section id", {HDR, 13, 0}, 10, WASM_E_SECTION_ID},
    /* (func (result i32) i64.const 0) */
    {"type mismatch", {HDR, 1, 5, 1, 0x60, 0, 1, 0x7f, 3, 2, 1, 0, 10, 6, 1, 4, 0, 0x42, 0, 0x0b}, 27,
     WASM_E_TYPE_MISMATCH},
    /* (func local.get 0) with no locals */
    {"unknown local", {HDR, 1, 4, 1, 0x60, 0, 0, 3, 2, 1, 0, 10, 6, 1, 4, 0, 0x20, 0, 0x0b}, 26, WASM_E_UNKNOWN_LOCAL},
    /* (func br 1) */
    {"unknown label", {HDR, 1, 4, 1, 0x60, 0, 0, 3, 2, 1, 0, 10, 6, 1, 4, 0, 0x0c, 1, 0x0b}, 26, WASM_E_UNKNOWN_LABEL},
    /* function section without code section */
    {"missing code", {HDR, 1, 4, 1, 0x60, 0, 0, 3, 2, 1, 0}, 18, WASM_E_FUNC_COUNT},
    /* (memory 2 1) */
    {"limits order", {HDR, 5, 4, 1, 1, 2, 1}, 14, WASM_E_LIMITS_ORDER},
    /* (memory 1) (func i32.const 0 i32.load align=2^k drop): natural, over natural, 2^31 (invalid),
     * 2^32 and 2^64 (malformed memop flags: the exponent does not fit 32 bits) */
#define LOAD_ALIGN(k) {HDR, 1, 4, 1, 0x60, 0, 0, 3, 2, 1, 0, 5, 3, 1, 0, 1, 10, 10, 1, 8, 0, 0x41, 0, 0x28, k, 0, 0x1a, 0x0b}, 35
    {"load align 4", LOAD_ALIGN(2), WASM_OK},
    {"load align 8", LOAD_ALIGN(3), WASM_E_ALIGNMENT},
    {"load align 2^31", LOAD_ALIGN(31), WASM_E_ALIGNMENT},
    {"load align 2^32", LOAD_ALIGN(32), WASM_E_MEMOP_FLAGS},
    {"load align 2^64", LOAD_ALIGN(0x40), WASM_E_MEMOP_FLAGS},
    /* (type (func (result i32 i32))): multi-value loads */
    {"multi-value", {HDR, 1, 6, 1, 0x60, 0, 2, 0x7f, 0x7f}, 16, WASM_OK},
    /* (type (func (param v128))): SIMD is the one 2.0 feature refused, by name */
    {"v128", {HDR, 1, 5, 1, 0x60, 1, 0x7b, 0}, 15, WASM_E_UNSUP_SIMD},
    /* (table 1 externref) (global funcref (ref.func 0)): a global declares the function for ref.func */
    {"reference types", {HDR, 1, 4, 1, 0x60, 0, 0, 3, 2, 1, 0, 4, 4, 1, 0x6f, 0, 1, 6, 6, 1, 0x70, 0, 0xd2, 0, 0x0b,
                         10, 4, 1, 2, 0, 0x0b}, 38, WASM_OK},
    /* (func ref.func 0 drop): a function no segment, export or global names */
    {"undeclared ref.func", {HDR, 1, 4, 1, 0x60, 0, 0, 3, 2, 1, 0, 10, 7, 1, 5, 0, 0xd2, 0, 0x1a, 0x0b}, 27,
     WASM_E_UNDECLARED_REF},
    /* (memory 1) (func i32.const 0 i32.const 0 i32.const 0 memory.init 0) (data "") without a data count section */
    {"memory.init, no data count", {HDR, 1, 4, 1, 0x60, 0, 0, 3, 2, 1, 0, 5, 3, 1, 0, 1, 10, 14, 1, 12, 0, 0x41, 0,
                                    0x41, 0, 0x41, 0, 0xfc, 8, 0, 0, 0x0b, 11, 3, 1, 1, 0}, 44, WASM_E_DATA_COUNT_REQ},
};

static void run_bins(void)
{
    for (size_t i = 0; i < sizeof bins / sizeof bins[0]; i++) {
        wasm_arena a;
        wasm_module *m;
        wasm_arena_init(&a, arena_buf, sizeof arena_buf);
        wasm_err err = wasm_module_load(bins[i].bytes, bins[i].len, &a, &m);
        CHECK(err == bins[i].want, "%s: got '%s' want '%s'", bins[i].name, wasm_err_str(err),
              wasm_err_str(bins[i].want));
    }
    /* an arena too small is a clean error, never an overrun */
    uint32_t len;
    uint8_t *bin = load_file("fib.wasm", &len);
    for (size_t sz = 0; bin && sz < 512; sz += 8) {
        wasm_arena a;
        wasm_module *m;
        wasm_arena_init(&a, arena_buf, sz);
        wasm_err err = wasm_module_load(bin, len, &a, &m);
        CHECK(err == WASM_OK || err == WASM_E_NOMEM || err == WASM_E_IMPL_LIMIT, "arena %zu: %s", sz,
              wasm_err_str(err));
        CHECK(a.used <= sz, "arena overrun");
    }
    free(bin);

    /* bytes the data segments need: lets a host size a short memory before instantiating */
    bin = load_file("smallmem.wasm", &len);
    if (bin) {
        wasm_arena a;
        wasm_module *m;
        wasm_arena_init(&a, arena_buf, sizeof arena_buf);
        CHECK(wasm_module_load(bin, len, &a, &m) == WASM_OK, "smallmem load");
        CHECK(wasm_module_data_end(m) == 104, "data end %u", (unsigned)wasm_module_data_end(m));
        /* a backing smaller than the data is refused at instantiation */
        wasm_config cfg;
        wasm_instance *inst;
        memset(&cfg, 0, sizeof cfg);
        cfg.mem_cap = 100;
        wasm_err err = wasm_instantiate(m, &cfg, &a, 1000, &inst);
        CHECK(err == WASM_TRAP_MEM_OOB, "short data: %s", wasm_err_str(err));
        free(bin);
    }
}

/* wasm_err_str: every code has its message (the spec's wording where it has one). */
static const struct { wasm_err e; const char *msg; } err_msgs_want[] = {
    {WASM_OK, "ok"},
    {WASM_E_EOF, "unexpected end"},
    {WASM_E_MAGIC, "magic header not detected"},
    {WASM_E_VERSION, "unknown binary version"},
    {WASM_E_LEB_LONG, "integer representation too long"},
    {WASM_E_LEB_RANGE, "integer too large"},
    {WASM_E_SECTION_ID, "malformed section id"},
    {WASM_E_SECTION_ORDER, "unexpected content after last section"},
    {WASM_E_SECTION_SIZE, "section size mismatch"},
    {WASM_E_UTF8, "malformed UTF-8 encoding"},
    {WASM_E_OPCODE, "illegal opcode"},
    {WASM_E_VALTYPE, "malformed value type"},
    {WASM_E_FUNC_COUNT, "function and code section have inconsistent lengths"},
    {WASM_E_DATA_COUNT, "data count and data section have inconsistent lengths"},
    {WASM_E_TOO_MANY_LOCALS, "too many locals"},
    {WASM_E_ZERO_BYTE, "zero byte expected"},
    {WASM_E_MUTABILITY, "malformed mutability"},
    {WASM_E_IMPORT_KIND, "malformed import kind"},
    {WASM_E_LIMITS_FLAG, "malformed limits flags"},
    {WASM_E_END_EXPECTED, "END opcode expected"},
    {WASM_E_FORM, "malformed type form"},
    {WASM_E_MEMOP_FLAGS, "malformed memop flags"},
    {WASM_E_DATA_COUNT_REQ, "data count section required"},
    {WASM_E_REFTYPE, "malformed reference type"},
    {WASM_E_UNSUPPORTED, "unsupported feature"},
    {WASM_E_UNSUP_SIMD, "unsupported feature: SIMD"},
    {WASM_E_UNSUP_LAST, "unsupported feature"},
    {WASM_E_TYPE_MISMATCH, "type mismatch"},
    {WASM_E_UNKNOWN_TYPE, "unknown type"},
    {WASM_E_UNKNOWN_FUNC, "unknown function"},
    {WASM_E_UNKNOWN_GLOBAL, "unknown global"},
    {WASM_E_UNKNOWN_LOCAL, "unknown local"},
    {WASM_E_UNKNOWN_LABEL, "unknown label"},
    {WASM_E_UNKNOWN_MEMORY, "unknown memory"},
    {WASM_E_UNKNOWN_TABLE, "unknown table"},
    {WASM_E_ALIGNMENT, "alignment must not be larger than natural"},
    {WASM_E_IMMUTABLE, "global is immutable"},
    {WASM_E_CONST_EXPR, "constant expression required"},
    {WASM_E_MEM_LIMITS, "memory size must be at most 65536 pages (4GiB)"},
    {WASM_E_LIMITS_ORDER, "size minimum must not be greater than maximum"},
    {WASM_E_DUP_EXPORT, "duplicate export name"},
    {WASM_E_MULTI_MEMORY, "multiple memories"},
    {WASM_E_START_TYPE, "start function must have type [] -> []"},
    {WASM_E_UNKNOWN_DATA, "unknown data segment"},
    {WASM_E_UNKNOWN_ELEM, "unknown elem segment"},
    {WASM_E_UNDECLARED_REF, "undeclared function reference"},
    {WASM_E_RESULT_ARITY, "invalid result arity"},
    {WASM_E_MULTI_TABLE, "multiple tables"},
    {WASM_E_NOMEM, "arena exhausted"},
    {WASM_E_IMPL_LIMIT, "implementation limit exceeded"},
    {WASM_E_ARG, "bad argument"},
    {WASM_E_TABLE_LIMIT, "table size exceeds the device limit"},
    {WASM_E_UNKNOWN_IMPORT, "unknown import"},
    {WASM_E_IMPORT_TYPE, "incompatible import type"},
    {WASM_E_MEMORY_BUDGET, "memory does not fit the buffer"},
    {WASM_E_ELEM_FIT, "elements segment does not fit"},
    {WASM_E_DATA_FIT, "data segment does not fit"},
    {WASM_TRAP_UNREACHABLE, "unreachable"},
    {WASM_TRAP_MEM_OOB, "out of bounds memory access"},
    {WASM_TRAP_DIV_ZERO, "integer divide by zero"},
    {WASM_TRAP_INT_OVERFLOW, "integer overflow"},
    {WASM_TRAP_INVALID_CONV, "invalid conversion to integer"},
    {WASM_TRAP_INDIRECT_TYPE, "indirect call type mismatch"},
    {WASM_TRAP_UNDEF_ELEMENT, "undefined element"},
    {WASM_TRAP_UNINIT_ELEMENT, "uninitialized element"},
    {WASM_TRAP_TABLE_OOB, "out of bounds table access"},
    {WASM_TRAP_STACK_OVERFLOW, "call stack exhausted"},
    {WASM_TRAP_FUEL, "fuel exhausted"},
    {WASM_TRAP_HOST, "host function failed"},
};

static void run_err_strings(void)
{
    for (size_t i = 0; i < sizeof err_msgs_want / sizeof err_msgs_want[0]; i++)
        CHECK(!strcmp(wasm_err_str(err_msgs_want[i].e), err_msgs_want[i].msg), "wasm_err_str(%d) = %s, want %s",
              (int)err_msgs_want[i].e, wasm_err_str(err_msgs_want[i].e), err_msgs_want[i].msg);
    CHECK(!strcmp(wasm_err_str((wasm_err)(WASM_E_REFTYPE + 1)), "unknown error"), "code %d: %s", WASM_E_REFTYPE + 1,
          wasm_err_str((wasm_err)(WASM_E_REFTYPE + 1)));
    CHECK(!strcmp(wasm_err_str((wasm_err)200), "unknown error"), "code 200: %s", wasm_err_str((wasm_err)200));
}

int main(int argc, char **argv)
{
    wasm_dir = argc > 1 ? argv[1] : "build/wat";
    run_calls();
    run_host();
    run_bins();
    run_err_strings();
    run_app_tests(wasm_dir, &checks, &failures);
    run_size_tests(&checks, &failures);
    printf("unit tests: %d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
