/*
 * No size arithmetic can wrap (issue 13, item 1): the checked helpers at their edges, and
 * the interpreter refusing counts that would wrap a 32-bit size_t. Runs in the host build
 * and in the 32-bit one (make test32), where size_t is as narrow as on the boards.
 */
#include <stdio.h>
#include <string.h>

#include "../common/size.h"
#include "../wasm/wasm.h"
#include "../wasm/wasm_int.h"

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

void run_size_tests(int *checks, int *failures)
{
    n_checks = checks;
    n_failures = failures;
    helpers();
    config_counts();
}
