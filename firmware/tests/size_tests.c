/*
 * No size arithmetic can wrap (issue 13, item 1): the checked helpers at their edges, the
 * interpreter refusing counts that would wrap a 32-bit size_t, and size-edge modules (a
 * 2^30-entry table, segments at the end of the address space, huge local counts...) with
 * the reason each must be refused for. Runs in the host build and in the 32-bit one
 * (make test32), where size_t is as narrow as on the boards.
 */
#include <stdio.h>
#include <string.h>

#include "../app/wasmbed_app.h"
#include "../common/size.h"
#include "../wasm/wasm.h"
#include "../wasm/wasm_int.h"
#include "gen.h"

static int *n_checks, *n_failures;
#define SCHECK(c, ...)                                                          \
    do {                                                                        \
        (*n_checks)++;                                                          \
        if (!(c)) {                                                             \
            (*n_failures)++;                                                    \
            printf("FAIL %s:%d (size_t of %u bits): ", __FILE__, __LINE__,      \
                   (unsigned)(8 * sizeof(size_t)));                             \
            printf(__VA_ARGS__);                                                \
            printf("\n");                                                       \
        }                                                                       \
    } while (0)

static uint8_t arena_buf[1 << 20];

static void helpers(void)
{
    SCHECK(wb_size_mul(0, SIZE_MAX) == 0 && wb_size_mul(SIZE_MAX, 0) == 0, "0 x max");
    SCHECK(wb_size_mul(SIZE_MAX, 1) == SIZE_MAX, "max x 1");
    SCHECK(wb_size_mul(SIZE_MAX / 2, 2) == SIZE_MAX - 1, "largest even product");
    SCHECK(wb_size_mul(SIZE_MAX / 2 + 1, 2) == SIZE_MAX, "one past: saturates");
    SCHECK(wb_size_mul((size_t)1 << 30, 4) == (sizeof(size_t) > 4 ? (size_t)1 << 32 : SIZE_MAX),
           "2^30 table entries of 4 bytes: %zu", wb_size_mul((size_t)1 << 30, 4));
    SCHECK(wb_size_add(SIZE_MAX - 1, 1) == SIZE_MAX && wb_size_add(SIZE_MAX - 1, 2) == SIZE_MAX, "add at the edge");
    SCHECK(wb_size_add(SIZE_MAX, 0) == SIZE_MAX && wb_size_add(0, SIZE_MAX) == SIZE_MAX, "saturation sticks");
    SCHECK(wb_size_add(wb_size_mul(SIZE_MAX / 8 + 1, 8), 1) == SIZE_MAX, "count x size + 1 never wraps to 0");

    wasm_arena a;
    wasm_arena_init(&a, arena_buf, sizeof arena_buf);
    SCHECK(wasm_arena_array(&a, SIZE_MAX / 4 + 2, 4) == NULL && a.used == 0, "array whose size wraps: refused");
    SCHECK(wasm_arena_array(&a, (size_t)1 << 30, sizeof(void *)) == NULL && a.used == 0, "2^30 pointers: refused");
    SCHECK(wasm_arena_array(&a, 0, 8) != NULL, "empty array: a valid pointer");
    uint8_t *p = wasm_arena_array(&a, 100, 8);
    SCHECK(p != NULL && a.used >= 800 && a.used <= sizeof arena_buf, "array within the arena");
}

/* wasm_config counts that a 32-bit size_t would wrap into a few bytes: refused as arena exhausted. */
static void config_counts(void)
{
    static const uint8_t empty[] = {0, 'a', 's', 'm', 1, 0, 0, 0};
    const struct {
        const char *what;
        uint32_t slots, depth;
    } cases[] = {
        /* 0x20000001 slots of 8 bytes = 2^32 + 8; frames of 3 pointers, as many as make 2^32 + 8 bytes on 32 bits */
        {"stack_slots 2^29 + 1", 0x20000001u, 0},
        {"call_depth for 2^32 + 8 bytes of frames", 0, (uint32_t)(0x100000000ull / (3 * sizeof(void *)) + 1)},
        {"both at the maximum", 0xffffffffu, 0xffffffffu},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        wasm_arena a;
        wasm_module *m;
        wasm_instance *inst = NULL;
        wasm_config cfg;
        wasm_arena_init(&a, arena_buf, sizeof arena_buf);
        SCHECK(wasm_module_load(empty, sizeof empty, &a, &m) == WASM_OK, "empty module");
        memset(&cfg, 0, sizeof cfg);
        cfg.stack_slots = cases[i].slots;
        cfg.call_depth = cases[i].depth;
        wasm_err e = wasm_instantiate(m, &cfg, &a, 0, &inst);
        SCHECK(e == WASM_E_NOMEM && inst == NULL, "%s: got '%s', want 'arena exhausted'", cases[i].what,
               wasm_err_str(e));
        SCHECK(a.used <= sizeof arena_buf, "%s: arena overrun", cases[i].what);
    }
}

/* Size-edge modules with the outcome each must have, stated here and checked against both the
 * generator's model (gen_edge_module) and the interpreter (gen_edge_check). */
static void edge_modules(void)
{
    enum { T = EDGE_TABLE, TI = EDGE_TABLE_IMPORT, EL = EDGE_ELEM, DA = EDGE_DATA, LO = EDGE_LOCALS,
           ME = EDGE_MEMORY, CO = EDGE_COUNT };
    const struct {
        gen_edge e;
        wasm_err load, inst, call;
    } cases[] = {
        /* the issue: 2^30 entries of 4 bytes came to a 1-byte table on 32 bits */
        {{T, 0, 0, 0, 1u << 30, 0, 0}, WASM_E_TABLE_LIMIT, 0, 0},
        {{T, 1, 0, 0, 1u << 30, 0xffffffffu, 0}, WASM_E_TABLE_LIMIT, 0, 0},
        {{T, 0, 1, 0, 1u << 30, 0, 0}, WASM_OK, WASM_E_NOMEM, 0}, /* limit lifted: the allocation still refuses */
        {{T, 0, 1, 0, 0xffffffffu, 0, 0}, WASM_OK, WASM_E_NOMEM, 0},
        {{T, 0, 0, 0, WASM_MAX_TABLE, 0, 0}, WASM_OK, WASM_OK, 0},
        {{T, 0, 0, 0, WASM_MAX_TABLE + 1, 0, 0}, WASM_E_TABLE_LIMIT, 0, 0},
        {{T, 1, 0, 0, 1, 0xffffffffu, 0}, WASM_OK, WASM_OK, 0}, /* the maximum is not bounded */
        {{T, 1, 0, 0, 1u << 30, 3, 0}, WASM_E_LIMITS_ORDER, 0, 0},
        {{TI, 0, 0, 0, 1u << 30, 0, 0}, WASM_E_TABLE_LIMIT, 0, 0},
        {{TI, 1, 0, 0, 4, 4, 0}, WASM_OK, WASM_OK, 0},
        {{TI, 0, 0, 0, 5, 0, 0}, WASM_OK, WASM_E_IMPORT_TYPE, 0},
        /* element segments: offset + count past the table, also where the sum wraps 32 bits */
        {{EL, 0, 0, 0, 16, 0xffffffffu, 1}, WASM_OK, WASM_TRAP_TABLE_OOB, 0},
        {{EL, 0, 0, 0, 16, 0xfffffffeu, 2}, WASM_OK, WASM_TRAP_TABLE_OOB, 0},
        {{EL, 0, 0, 0, 16, 15, 1}, WASM_OK, WASM_OK, 0},
        {{EL, 0, 0, 0, WASM_MAX_TABLE, WASM_MAX_TABLE - 1, 1}, WASM_OK, WASM_OK, 0},
        {{EL, 0, 0, 1, 16, 0, 0xffffffffu}, WASM_E_EOF, 0, 0},
        /* the module: a 2^30 table filled at its last entry (on 32 bits, 4 bytes before a 1-byte table) */
        {{EL, 0, 0, 0, 1u << 30, (1u << 30) - 1, 1}, WASM_E_TABLE_LIMIT, 0, 0},
        {{EL, 0, 1, 0, 1u << 30, (1u << 30) - 1, 1}, WASM_OK, WASM_E_NOMEM, 0},
        /* data segments: offsets at the end of the address space, lengths longer than the section */
        {{DA, 0, 0, 0, 1, 0xffffffffu, 2}, WASM_OK, WASM_TRAP_MEM_OOB, 0},
        {{DA, 0, 0, 0, 1, 0xffffff01u, 255}, WASM_OK, WASM_TRAP_MEM_OOB, 0},
        {{DA, 0, 0, 0, 1, 65535, 1}, WASM_OK, WASM_OK, 0},
        {{DA, 0, 0, 0, 0, 0, 0}, WASM_OK, WASM_OK, 0},
        {{DA, 0, 0, 1, 1, 0, 0xffffffffu}, WASM_E_EOF, 0, 0},
        /* locals: past 2^32 in all, past the frame's 65535 slots, at and past the value stack */
        {{LO, 0, 0, 0, 0xffffffffu, 1, 0}, WASM_E_TOO_MANY_LOCALS, 0, 0},
        {{LO, 0, 0, 0, 0x7fffffffu, 0x7fffffffu, 0}, WASM_E_IMPL_LIMIT, 0, 0},
        {{LO, 0, 0, 0, 65535, 0, 0}, WASM_E_IMPL_LIMIT, 0, 0},
        {{LO, 0, 0, 0, 65534, 0, 0}, WASM_OK, WASM_OK, WASM_TRAP_STACK_OVERFLOW},
        {{LO, 0, 0, 0, GEN_EDGE_STACK_SLOTS - 1, 0, 0}, WASM_OK, WASM_OK, WASM_OK},
        {{LO, 0, 0, 0, GEN_EDGE_STACK_SLOTS - 1, 1, 0}, WASM_OK, WASM_OK, WASM_TRAP_STACK_OVERFLOW},
        /* memories and vector counts */
        {{ME, 0, 0, 0, 65537, 0, 0}, WASM_E_MEM_LIMITS, 0, 0},
        {{ME, 1, 0, 0, 65536, 65536, 0}, WASM_OK, WASM_OK, 0},
        {{ME, 1, 0, 0, 2, 1, 0}, WASM_E_LIMITS_ORDER, 0, 0},
        {{CO, 0, 0, 0, 0xffffffffu, 1, 0}, WASM_E_EOF, 0, 0},
        {{CO, 0, 0, 0, 0xffffffffu, 9, 0}, WASM_E_EOF, 0, 0},
        {{CO, 0, 0, 0, 1, 10, 0}, WASM_E_FUNC_COUNT, 0, 0},
    };
    static uint8_t mod[4096];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gen_edge_want want;
        char name[96], why[160];
        gen_edge_name(&cases[i].e, name, sizeof name);
        uint32_t len = gen_edge_module(&cases[i].e, mod, sizeof mod, &want);
        SCHECK(len > 0, "%s: module does not fit", name);
        SCHECK(want.load == cases[i].load && (want.load || (want.inst == cases[i].inst && want.call == cases[i].call)),
               "%s: the generator wants '%s' / '%s' / '%s'", name, wasm_err_str(want.load), wasm_err_str(want.inst),
               wasm_err_str(want.call));
        int bad = gen_edge_check(&cases[i].e, mod, len, &want, arena_buf, sizeof arena_buf, why, sizeof why);
        SCHECK(!bad, "%s: %s", name, why);
    }
}

/* The limit is the caller's: wasm_module_load_limited, and the ABI layer with its board's WB_MAX_TABLE. */
static void table_limits(void)
{
    static uint8_t mod[256];
    gen_edge_want want;
    wasm_arena a;
    wasm_module *m;
    for (uint32_t n = 9; n <= 11; n++) {
        gen_edge e = {EDGE_TABLE, 0, 0, 0, n, 0, 0};
        uint32_t len = gen_edge_module(&e, mod, sizeof mod, &want);
        const wasm_load_limits ten = {.max_table = 10};
        wasm_arena_init(&a, arena_buf, sizeof arena_buf);
        wasm_err err = wasm_module_load_limited(mod, len, &ten, &a, &m);
        SCHECK(err == (n > 10 ? WASM_E_TABLE_LIMIT : WASM_OK), "table %u, limit 10: %s", (unsigned)n, wasm_err_str(err));
    }
    wb_app app;
    static const wb_board no_board;
    for (uint32_t n = WB_MAX_TABLE; n <= WB_MAX_TABLE + 1; n++) {
        gen_edge e = {EDGE_TABLE, 0, 0, 0, n, 0, 0};
        uint32_t len = gen_edge_module(&e, mod, sizeof mod, &want);
        wasm_err err = wb_app_start(&app, &no_board, mod, len, arena_buf, sizeof arena_buf, 0, 0);
        /* within the limit it loads, then has no `loop` */
        wasm_err expect = n > WB_MAX_TABLE ? WASM_E_TABLE_LIMIT : WASM_E_UNKNOWN_FUNC;
        SCHECK(err == expect && app.reason == expect && app.state == WB_STATE_FAILED, "app with a table of %u: %s",
               (unsigned)n, wasm_err_str(err));
    }
}

#if defined(__SANITIZE_ADDRESS__)
int __asan_address_is_poisoned(void const volatile *addr);
#define POISONED(p) __asan_address_is_poisoned(p)

/* ASan builds: what the arena hands out is addressable, the gap after it and the free space are not. */
static void arena_poisoning(void)
{
    wasm_arena a;
    wasm_arena_init(&a, arena_buf, 256);
    SCHECK(POISONED(a.base) && POISONED(a.base + 255), "free space poisoned at init");
    uint8_t *p = wasm_arena_alloc(&a, 13), *q = wasm_arena_alloc(&a, 8);
    SCHECK(p && !POISONED(p) && !POISONED(p + 12), "allocation addressable");
    SCHECK(POISONED(p + 13) && POISONED(p + 16) && POISONED(p + 23), "gap after an allocation poisoned");
    SCHECK(q && q >= p + 24 && !POISONED(q) && !POISONED(q + 7) && POISONED(q + 8), "next allocation after the gap");
    uint8_t *g = wasm_arena_grow(&a, 6);
    SCHECK(g && !POISONED(g + 5) && POISONED(g + 6), "grown bytes addressable");
    wasm_arena_trim(&a, a.used - 6);
    SCHECK(POISONED(g), "trimmed bytes poisoned again");
    size_t size = a.size;
    uint8_t *t = wasm_arena_top(&a, 16);
    SCHECK(t && !POISONED(t) && !POISONED(t + 15), "scratch addressable");
    wasm_arena_top_free(&a, size);
    SCHECK(POISONED(t) && a.size == size, "scratch given back poisoned");
    wasm_arena_release(arena_buf, 256);
    SCHECK(!POISONED(arena_buf) && !POISONED(arena_buf + 255), "released");
}
#endif

void run_size_tests(int *checks, int *failures)
{
    n_checks = checks;
    n_failures = failures;
    helpers();
    config_counts();
    edge_modules();
    table_limits();
#if defined(__SANITIZE_ADDRESS__)
    arena_poisoning();
#endif
}
