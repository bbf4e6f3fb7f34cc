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
#define WB_MAX_SLEEP_MS 1000
/*
 * Wall-clock limits (docs/abi.md, "Limits"). A call of start, setup or one loop must end
 * within WB_CALL_TIME_MS of its start, time in sleep_ms and in host calls included: the
 * clock is read at every host call and when the call returns. 2 s leaves a full
 * sleep_ms(1000) and a full fuel budget (0.25 s interpreted on the slowest board) room.
 */
#ifndef WB_CALL_TIME_MS
#define WB_CALL_TIME_MS 2000u
#endif
/* Token buckets per app: a line or a record takes one token, a token comes back every
 * period; at most burst are saved up. Log: 10 lines/s, 20 at once; publish: the ABI's 10
 * records/s, 10 at once. */
#define WB_LOG_PERIOD_MS 100u
#define WB_LOG_BURST 20u
#define WB_PUBLISH_PERIOD_MS 100u
#define WB_PUBLISH_BURST 10u
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

/*
 * Board abstraction. Every callback is required (code_guard may be NULL); ctx is passed back.
 * log: 0 sent, -1 dropped (the transport had no room), counted like a rate-limited line.
 * sleep_ms and yield serve the session meanwhile; they return 0, or -1 when the app must
 * stop at once (the gateway stopped or removed it): the call then ends with WB_TRAP_STOP.
 */
typedef struct wb_board {
    void *ctx;
    int (*log)(void *ctx, int32_t level, const uint8_t *msg, uint32_t len);
    uint64_t (*clock_ms)(void *ctx);                          /* monotonic */
    int (*sleep_ms)(void *ctx, uint32_t ms);
    int (*yield)(void *ctx);
    int (*gpio_write)(void *ctx, int32_t pin, int high);      /* 0 ok, -1 no such pin */
    int (*gpio_read)(void *ctx, int32_t pin, int *high);
    int (*led_set)(void *ctx, int32_t led, int on);
    int (*sensor_read)(void *ctx, int32_t sensor, int32_t *milli); /* -1: no such sensor */
    int (*publish)(void *ctx, const uint8_t *topic, uint32_t tlen, const uint8_t *data, uint32_t dlen);
    /* value of configuration key, -1 if absent */
    int (*config_get)(void *ctx, const uint8_t *key, uint32_t klen, const uint8_t **val, uint32_t *vlen);
    const wasm_code_guard *code_guard; /* optional: where the native tier's code goes, sealed (wasm.h) */
} wb_board;

typedef enum { WB_STATE_RUNNING, WB_STATE_EXITED, WB_STATE_FAILED } wb_state;

/*
 * How a host function ended a call early; the engine reports WASM_TRAP_HOST for both, and
 * wb_app_reason tells them apart. WB_TRAP_STOP is not a failure of the app: the board
 * asked for it (wb_board.sleep_ms).
 */
typedef enum { WB_TRAP_NONE, WB_TRAP_TIME, WB_TRAP_STOP } wb_trap;

/*
 * A token bucket in milliseconds of credit (no division, no floats): full, it holds
 * burst * period ms; time adds credit 1:1; a token costs period ms.
 */
typedef struct wb_bucket {
    uint32_t credit; /* ms */
    uint64_t at;     /* clock of the last refill */
} wb_bucket;

/* A full bucket at time now. */
void wb_bucket_init(wb_bucket *b, uint64_t now, uint32_t period_ms, uint32_t burst);
/* Refills for the time since the last call; 1 if a token is left (not taken), else 0. */
int wb_bucket_ready(wb_bucket *b, uint64_t now, uint32_t period_ms, uint32_t burst);
/* Takes a token if there is one: 1 taken, 0 empty. */
int wb_bucket_take(wb_bucket *b, uint64_t now, uint32_t period_ms, uint32_t burst);

enum { WB_NFUNCS = 10 };

typedef struct wb_app {
    const wb_board *board;
    wasm_module *mod;
    wasm_instance *inst;
    uint64_t started_ms;
    uint64_t fuel;              /* per call of start, setup and each loop */
    uint32_t time_ms;           /* wall-clock budget of each of those calls */
    uint64_t deadline_ms;       /* the call in progress must end by then (plus late wake-ups from sleep_ms) */
    int32_t loop_idx, setup_idx;
    wb_bucket log_tokens, pub_tokens;
    uint32_t lines_dropped;     /* log lines dropped since the last report */
    uint32_t records_dropped;   /* records refused (ERR_BUSY) since the last report */
    wb_state state;
    wasm_err reason;            /* why the app failed (trap or load error) */
    wb_trap trap;               /* set with reason WASM_TRAP_HOST by a host function */
    wasm_func funcs[WB_NFUNCS];
} wb_app;

/* Per-call limits of wb_app_start; 0 fields take the defaults (WB_DEFAULT_FUEL, WB_CALL_TIME_MS). */
typedef struct wb_limits {
    uint64_t fuel;
    uint32_t time_ms;
} wb_limits;

/*
 * Load, check the ABI (imports from the table, `loop` () -> i32, `setup`
 * () -> ()), instantiate (runs `start`) and call `setup`. mem_cap bounds
 * the bytes backing memory 0 (0: the declared minimum). lim may be NULL
 * (the defaults). On failure app->state is WB_STATE_FAILED.
 */
wasm_err wb_app_start(wb_app *app, const wb_board *board, const uint8_t *bin, uint32_t len,
                      void *arena, size_t arena_size, uint32_t mem_cap, const wb_limits *lim);

/*
 * One call of `loop`. On success *delay_ms is its result (negative: the app
 * exited, state WB_STATE_EXITED). A trap sets WB_STATE_FAILED.
 */
wasm_err wb_app_loop(wb_app *app, int32_t *delay_ms);

/* The AppStatus text of a failure e of app: "time budget exceeded" for a call over its
 * time, "stopped" for WB_TRAP_STOP, else the engine's wording (wasm_err_str). */
const char *wb_app_reason(const wb_app *app, wasm_err e);

#endif
