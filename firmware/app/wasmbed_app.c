/* Wasmbed ABI v1 on the interpreter (see wasmbed_app.h and docs/abi.md). */
#include <stddef.h>
#include <string.h>

#include "wasmbed_app.h"
#include "../common/utf8.h"

static const uint8_t T_I = WASM_I32;
static const uint8_t P_I[] = {WASM_I32, WASM_I32, WASM_I32, WASM_I32};
static const uint8_t R_L = WASM_I64;

enum { F_LOG, F_CLOCK, F_SLEEP, F_YIELD, F_GPIO_W, F_GPIO_R, F_LED, F_SENSOR, F_PUBLISH, F_CONFIG };

static const char *const names[WB_NFUNCS] = {"log", "clock_ms", "sleep_ms", "yield", "gpio_write",
                                             "gpio_read", "led_set", "sensor_read", "publish", "config_get"};
/* The ABI table: types of the imports, in the order of `names`. */
static const wasm_functype types[WB_NFUNCS] = {
    {P_I, NULL, 3, 0}, {NULL, &R_L, 0, 1}, {P_I, NULL, 1, 0}, {NULL, NULL, 0, 0}, {P_I, &T_I, 2, 1},
    {P_I, &T_I, 1, 1}, {P_I, &T_I, 2, 1}, {P_I, &T_I, 1, 1}, {P_I, &T_I, 4, 1}, {P_I, &T_I, 4, 1},
};

#define I32(x) ((int32_t)(uint32_t)(x))
#define RET(v) (sp[0] = (uint32_t)(int32_t)(v))

void wb_bucket_init(wb_bucket *b, uint64_t now, uint32_t period_ms, uint32_t burst)
{
    b->credit = period_ms * burst;
    b->at = now;
}

int wb_bucket_ready(wb_bucket *b, uint64_t now, uint32_t period_ms, uint32_t burst)
{
    uint32_t full = period_ms * burst;
    /* a clock that went back (it should not) adds nothing rather than wrapping */
    uint64_t add = now > b->at ? now - b->at : 0;
    b->credit = add >= full - b->credit ? full : b->credit + (uint32_t)add;
    b->at = now;
    return b->credit >= period_ms;
}

int wb_bucket_take(wb_bucket *b, uint64_t now, uint32_t period_ms, uint32_t burst)
{
    if (!wb_bucket_ready(b, now, period_ms, burst))
        return 0;
    b->credit -= period_ms;
    return 1;
}

static void count(uint32_t *n)
{
    if (*n != UINT32_MAX) (*n)++;
}

/* Sends "<n> <what> dropped" as a warning of the app; 0 when it went out. */
static int log_dropped(wb_app *app, uint32_t n, const char *what)
{
    char line[48], num[10];
    uint32_t len = 0, k = 0;
    do
        num[k++] = (char)('0' + n % 10);
    while ((n /= 10) != 0);
    while (k) line[len++] = num[--k];
    line[len++] = ' ';
    for (; *what; what++) line[len++] = *what;
    return app->board->log(app->board->ctx, 2, (const uint8_t *)line, len);
}

/*
 * Reports what the rate limits and the transport dropped, once a log token is free again
 * (the report takes none: there is at most one per accepted line or call, so it stays
 * within the bucket's rate). A report that cannot go out keeps its count.
 */
static void report_drops(wb_app *app, uint64_t now)
{
    if (!(app->lines_dropped || app->records_dropped) ||
        !wb_bucket_ready(&app->log_tokens, now, WB_LOG_PERIOD_MS, WB_LOG_BURST))
        return;
    if (app->lines_dropped && !log_dropped(app, app->lines_dropped, "lines dropped")) app->lines_dropped = 0;
    if (app->records_dropped && !log_dropped(app, app->records_dropped, "records dropped")) app->records_dropped = 0;
}

static void log_line(wb_app *app, uint64_t now, int32_t level, const uint8_t *msg, uint32_t n)
{
    const wb_board *b = app->board;
    report_drops(app, now);
    if (!wb_bucket_take(&app->log_tokens, now, WB_LOG_PERIOD_MS, WB_LOG_BURST) || b->log(b->ctx, level, msg, n))
        count(&app->lines_dropped);
}

static wasm_err cut_short(wb_app *app, wb_trap why)
{
    app->trap = why;
    return WASM_TRAP_HOST;
}

/* The time budget's clock: a sleep counts as long as it asked for, a late wake-up (the
 * session served meanwhile sent a long frame) moves the deadline. */
static int over_time(const wb_app *app, uint64_t now, uint32_t more_ms)
{
    return now + more_ms > app->deadline_ms;
}

/* sleep_ms: a sleep that would end past the call's time budget fails the call at once. */
static wasm_err sleep_for(wb_app *app, uint64_t now, int32_t ms)
{
    const wb_board *b = app->board;
    if (ms > WB_MAX_SLEEP_MS) ms = WB_MAX_SLEEP_MS;
    if (ms <= 0) return WASM_OK;
    if (over_time(app, now, (uint32_t)ms)) return cut_short(app, WB_TRAP_TIME);
    if (b->sleep_ms(b->ctx, (uint32_t)ms)) return cut_short(app, WB_TRAP_STOP);
    uint64_t slept = b->clock_ms(b->ctx) - now;
    if (slept > (uint32_t)ms) app->deadline_ms += slept - (uint32_t)ms;
    return WASM_OK;
}

/*
 * All host functions share one callback; ctx is the app's wasm_func, whose
 * index selects the function (this works during `start`, before
 * wasm_instantiate returns). Each one first checks the call's time budget.
 */
static wasm_err host(wasm_instance *inst, void *ctx, wasm_slot *sp)
{
    wasm_func *f = ctx;
    uint32_t which = f->index;
    wb_app *app = (wb_app *)(void *)((char *)(f - which) - offsetof(wb_app, funcs));
    const wb_board *b = app->board;
    uint64_t now = b->clock_ms(b->ctx);
    if (over_time(app, now, 0)) return cut_short(app, WB_TRAP_TIME);
    switch (which) {
    case F_LOG: {
        int32_t level = I32(sp[0]);
        uint32_t n = (uint32_t)sp[2];
        const uint8_t *msg = wasm_mem_ptr(inst, (uint32_t)sp[1], n);
        if (!msg) return WASM_TRAP_MEM_OOB;
        if (level < 0 || level > 3) level = 1;
        if (n > WB_MAX_LOG) {
            n = WB_MAX_LOG; /* back off to a character boundary */
            while (n > WB_MAX_LOG - 3 && (msg[n] & 0xc0) == 0x80) n--;
        }
        log_line(app, now, level, msg, n);
        return WASM_OK;
    }
    case F_CLOCK: sp[0] = now - app->started_ms; return WASM_OK;
    case F_SLEEP: return sleep_for(app, now, I32(sp[0]));
    case F_YIELD: return b->yield(b->ctx) ? cut_short(app, WB_TRAP_STOP) : WASM_OK;
    case F_GPIO_W: RET(b->gpio_write(b->ctx, I32(sp[0]), I32(sp[1]) != 0) ? WB_ERR_NOT_FOUND : WB_OK); return WASM_OK;
    case F_GPIO_R: {
        int high = 0;
        RET(b->gpio_read(b->ctx, I32(sp[0]), &high) ? WB_ERR_NOT_FOUND : (high != 0));
        return WASM_OK;
    }
    case F_LED: RET(b->led_set(b->ctx, I32(sp[0]), I32(sp[1]) != 0) ? WB_ERR_NOT_FOUND : WB_OK); return WASM_OK;
    case F_SENSOR: {
        int32_t v;
        RET(b->sensor_read(b->ctx, I32(sp[0]), &v) ? WB_SENSOR_NONE : v);
        return WASM_OK;
    }
    case F_PUBLISH: {
        uint32_t tl = (uint32_t)sp[1], dl = (uint32_t)sp[3];
        const uint8_t *topic = wasm_mem_ptr(inst, (uint32_t)sp[0], tl);
        const uint8_t *data = wasm_mem_ptr(inst, (uint32_t)sp[2], dl);
        if (!topic || !data) return WASM_TRAP_MEM_OOB;
        if (tl == 0 || tl > WB_MAX_TOPIC || dl > WB_MAX_DATA || !wb_utf8_valid(topic, tl)) { RET(WB_ERR_INVALID); return WASM_OK; }
        if (!wb_bucket_take(&app->pub_tokens, now, WB_PUBLISH_PERIOD_MS, WB_PUBLISH_BURST) ||
            b->publish(b->ctx, topic, tl, data, dl)) {
            count(&app->records_dropped);
            RET(WB_ERR_BUSY);
            return WASM_OK;
        }
        RET(WB_OK);
        return WASM_OK;
    }
    case F_CONFIG: {
        uint32_t kl = (uint32_t)sp[1], cap = (uint32_t)sp[3], vl;
        const uint8_t *key = wasm_mem_ptr(inst, (uint32_t)sp[0], kl), *val;
        uint8_t *buf = wasm_mem_ptr(inst, (uint32_t)sp[2], cap);
        if (!key || !buf) return WASM_TRAP_MEM_OOB;
        if (b->config_get(b->ctx, key, kl, &val, &vl)) { RET(WB_ERR_NOT_FOUND); return WASM_OK; }
        memcpy(buf, val, vl < cap ? vl : cap);
        RET(vl > 0x7fffffffu ? 0x7fffffff : vl);
        return WASM_OK;
    }
    }
    return WASM_TRAP_HOST;
}

static wasm_err resolve(void *ctx, const wasm_import *im, wasm_extern *out)
{
    wb_app *app = ctx;
    if (im->kind != WASM_EXTERN_FUNC || im->module_len != 7 || memcmp(im->module, "wasmbed", 7))
        return WASM_E_UNKNOWN_IMPORT;
    for (int i = 0; i < WB_NFUNCS; i++) {
        if (strlen(names[i]) == im->name_len && !memcmp(names[i], im->name, im->name_len)) {
            out->kind = WASM_EXTERN_FUNC;
            out->func = &app->funcs[i]; /* the interpreter checks the type: mismatch is unlinkable */
            return WASM_OK;
        }
    }
    return WASM_E_UNKNOWN_IMPORT;
}

static wasm_err fail(wb_app *app, wasm_err e)
{
    app->state = WB_STATE_FAILED;
    app->reason = e;
    return e;
}

static int32_t export_of(const wasm_module *m, const char *name)
{
    return wasm_module_export(m, name, (uint32_t)strlen(name), WASM_EXTERN_FUNC);
}

/* Opens the time budget of a call (start, setup or loop) and reports pending drops. */
static void begin_call(wb_app *app)
{
    uint64_t now = app->board->clock_ms(app->board->ctx);
    app->deadline_ms = now + app->time_ms;
    app->trap = WB_TRAP_NONE;
    report_drops(app, now);
}

/* A call that returned after its budget fails too: fuel bounds the instructions since the
 * last host call, not their time. */
static wasm_err end_call(wb_app *app, wasm_err e)
{
    if (!e && over_time(app, app->board->clock_ms(app->board->ctx), 0)) return cut_short(app, WB_TRAP_TIME);
    return e;
}

wasm_err wb_app_start(wb_app *app, const wb_board *board, const uint8_t *bin, uint32_t len,
                      void *arena, size_t arena_size, uint32_t mem_cap, const wb_limits *lim)
{
    wasm_arena a;
    wasm_config cfg;
    wasm_err e;

    memset(app, 0, sizeof *app);
    app->board = board;
    app->fuel = lim && lim->fuel ? lim->fuel : WB_DEFAULT_FUEL;
    app->time_ms = lim && lim->time_ms ? lim->time_ms : WB_CALL_TIME_MS;
    for (int i = 0; i < WB_NFUNCS; i++) {
        app->funcs[i].type = &types[i];
        app->funcs[i].host = host;
        app->funcs[i].host_ctx = &app->funcs[i];
        app->funcs[i].index = (uint32_t)i;
    }
    wasm_arena_init(&a, arena, arena_size);
    const wasm_load_limits ll = {.max_table = WB_MAX_TABLE};
    if ((e = wasm_module_load_limited(bin, len, &ll, &a, &app->mod))) return fail(app, e);

    app->loop_idx = export_of(app->mod, "loop");
    app->setup_idx = export_of(app->mod, "setup");
    if (app->loop_idx < 0) return fail(app, WASM_E_UNKNOWN_FUNC);
    const wasm_functype *lt = wasm_module_func_type(app->mod, (uint32_t)app->loop_idx);
    if (lt->nparams || lt->nresults != 1 || lt->results[0] != WASM_I32) return fail(app, WASM_E_IMPORT_TYPE);
    if (app->setup_idx >= 0) {
        const wasm_functype *st = wasm_module_func_type(app->mod, (uint32_t)app->setup_idx);
        if (st->nparams || st->nresults) return fail(app, WASM_E_IMPORT_TYPE);
    }

    memset(&cfg, 0, sizeof cfg);
    cfg.resolve = resolve;
    cfg.resolve_ctx = app;
    cfg.mem_cap = mem_cap;
    cfg.table_cap = WB_MAX_TABLE; /* table.grow up to the board's table limit (only a table that can grow gets it) */
    cfg.stack_slots = WB_STACK_SLOTS;
    cfg.call_depth = WB_CALL_DEPTH;
    cfg.machine_stack = WB_MACHINE_STACK;
    cfg.code_guard = board->code_guard;
    app->started_ms = board->clock_ms(board->ctx);
    wb_bucket_init(&app->log_tokens, app->started_ms, WB_LOG_PERIOD_MS, WB_LOG_BURST);
    wb_bucket_init(&app->pub_tokens, app->started_ms, WB_PUBLISH_PERIOD_MS, WB_PUBLISH_BURST);
    begin_call(app);
    e = end_call(app, wasm_instantiate(app->mod, &cfg, &a, app->fuel, &app->inst));
    if (app->inst) wasm_instance_set_user(app->inst, app);
    if (e) return fail(app, e);

    if (app->setup_idx >= 0) {
        wasm_slot none[1];
        wasm_set_fuel(app->inst, app->fuel);
        begin_call(app);
        if ((e = end_call(app, wasm_call(app->inst, (uint32_t)app->setup_idx, none)))) return fail(app, e);
    }
    app->state = WB_STATE_RUNNING;
    return WASM_OK;
}

wasm_err wb_app_loop(wb_app *app, int32_t *delay_ms)
{
    wasm_slot r[1] = {0};
    wasm_err e;
    if (app->state != WB_STATE_RUNNING) return WASM_E_ARG;
    wasm_set_fuel(app->inst, app->fuel);
    begin_call(app);
    if ((e = end_call(app, wasm_call(app->inst, (uint32_t)app->loop_idx, r)))) return fail(app, e);
    *delay_ms = (int32_t)(uint32_t)r[0];
    if (*delay_ms < 0) app->state = WB_STATE_EXITED;
    return WASM_OK;
}

const char *wb_app_reason(const wb_app *app, wasm_err e)
{
    if (e == WASM_TRAP_HOST && app->trap == WB_TRAP_TIME) return "time budget exceeded";
    if (e == WASM_TRAP_HOST && app->trap == WB_TRAP_STOP) return "stopped";
    return wasm_err_str(e);
}
