/*
 * Wasmbed application runtime: binds the ABI v1 (docs/abi.md, module
 * "wasmbed") to a board through a small board interface, and runs an
 * application's life cycle (start, setup, loop) under a fuel budget.
 * No allocation: the caller provides the arena.
 */
#ifndef WASMBED_APP_H
#define WASMBED_APP_H

#include <stddef.h>
#include <stdint.h>

#include "../wasm/wasm.h"

/* docs/abi.md: 2 is WebAssembly 2.0 without SIMD (reported in Hello caps.abi) */
#define WB_ABI_VERSION 2
#define WB_OK 0
#define WB_ERR_NOT_FOUND (-1)
#define WB_ERR_INVALID (-2)
#define WB_ERR_BUSY (-3)
#define WB_SENSOR_NONE ((int32_t)0x80000000)
#define WB_DEFAULT_FUEL 1000000u
#define WB_MAX_LOG 256u
#define WB_MAX_TOPIC 64u
#define WB_MAX_DATA 512u
#define WB_PUBLISH_PER_SECOND 10u
#define WB_MAX_SLEEP_MS 1000
/* Interpreter stacks of an app (set per board: 8-byte value slots, call frames). */
#ifndef WB_STACK_SLOTS
#define WB_STACK_SLOTS 512u /* 4 KiB */
#endif
#ifndef WB_CALL_DEPTH
#define WB_CALL_DEPTH 64u
#endif
/*
 * Largest table a module may declare or import, in elements (wasm_load_limits.max_table): a
 * module over it fails to load with "table size exceeds the device limit". Set per board to
 * about a quarter of what its arena leaves beside linear memory (an element is a pointer).
 */
#ifndef WB_MAX_TABLE
#define WB_MAX_TABLE 512u
#endif
/* Machine stack the native tier may use in a call (wasm_config.machine_stack; 0: the engine's default). */
#ifndef WB_MACHINE_STACK
#define WB_MACHINE_STACK 0u
#endif

/* Board abstraction. Every callback is required; ctx is passed back. */
typedef struct wb_board {
    void *ctx;
    void (*log)(void *ctx, int32_t level, const uint8_t *msg, uint32_t len);
    uint64_t (*clock_ms)(void *ctx);                          /* monotonic */
    void (*sleep_ms)(void *ctx, uint32_t ms);                 /* serve the session meanwhile */
    void (*yield)(void *ctx);
    int (*gpio_write)(void *ctx, int32_t pin, int high);      /* 0 ok, -1 no such pin */
    int (*gpio_read)(void *ctx, int32_t pin, int *high);
    int (*led_set)(void *ctx, int32_t led, int on);
    int (*sensor_read)(void *ctx, int32_t sensor, int32_t *milli); /* -1: no such sensor */
    int (*publish)(void *ctx, const uint8_t *topic, uint32_t tlen, const uint8_t *data, uint32_t dlen);
    /* value of configuration key, -1 if absent */
    int (*config_get)(void *ctx, const uint8_t *key, uint32_t klen, const uint8_t **val, uint32_t *vlen);
} wb_board;

typedef enum { WB_STATE_RUNNING, WB_STATE_EXITED, WB_STATE_FAILED } wb_state;

enum { WB_NFUNCS = 10 };

typedef struct wb_app {
    const wb_board *board;
    wasm_module *mod;
    wasm_instance *inst;
    uint64_t started_ms;
    uint64_t fuel;              /* per call of start, setup and each loop */
    int32_t loop_idx, setup_idx;
    uint64_t pub_times[WB_PUBLISH_PER_SECOND]; /* ring of the last accepted publishes */
    uint32_t pub_next, pub_count;
    wb_state state;
    wasm_err reason;            /* why the app failed (trap or load error) */
    wasm_func funcs[WB_NFUNCS];
} wb_app;

/*
 * Load, check the ABI (imports from the table, `loop` () -> i32, `setup`
 * () -> ()), instantiate (runs `start`) and call `setup`. mem_cap bounds
 * the bytes backing memory 0 (0: the declared minimum). fuel 0 means
 * WB_DEFAULT_FUEL. On failure app->state is WB_STATE_FAILED.
 */
wasm_err wb_app_start(wb_app *app, const wb_board *board, const uint8_t *bin, uint32_t len,
                      void *arena, size_t arena_size, uint32_t mem_cap, uint64_t fuel);

/*
 * One call of `loop`. On success *delay_ms is its result (negative: the app
 * exited, state WB_STATE_EXITED). A trap sets WB_STATE_FAILED.
 */
wasm_err wb_app_loop(wb_app *app, int32_t *delay_ms);

#endif
