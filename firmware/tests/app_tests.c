/* Host test of the ABI layer (app/) with a fake board. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../app/wasmbed_app.h"

typedef struct fake {
    uint64_t now;
    uint32_t tick;      /* ms every clock reading adds: a slow board or slow host calls */
    int stop_after;     /* sleeps after which sleep_ms asks the app to stop; 0: never */
    uint32_t late;      /* ms every sleep lasts longer than asked */
    int log_full;       /* 1: the transport refuses every line */
    int led0, logs, publishes, yields, sleeps;
    int32_t last_level;
    char last_log[300];
    char warnings[4][64]; /* the last warn lines (the drop reports), oldest first */
    int32_t last_published;
} fake;

static int f_log(void *c, int32_t level, const uint8_t *m, uint32_t n)
{
    fake *f = c;
    if (f->log_full) return -1;
    f->logs++;
    f->last_level = level;
    snprintf(f->last_log, sizeof f->last_log, "%.*s", (int)n, (const char *)m);
    if (level == 2) {
        memmove(f->warnings[0], f->warnings[1], sizeof f->warnings - sizeof f->warnings[0]);
        snprintf(f->warnings[3], sizeof f->warnings[3], "%.*s", (int)n, (const char *)m);
    }
    return 0;
}
static uint64_t f_clock(void *c)
{
    fake *f = c;
    f->now += f->tick;
    return f->now;
}
static int f_sleep(void *c, uint32_t ms)
{
    fake *f = c;
    f->now += ms + f->late;
    f->sleeps++;
    return f->stop_after && f->sleeps >= f->stop_after ? -1 : 0;
}
static int f_yield(void *c) { ((fake *)c)->yields++; return 0; }
static int f_gpio_w(void *c, int32_t pin, int high) { (void)c; (void)high; return pin < 16 ? 0 : -1; }
static int f_gpio_r(void *c, int32_t pin, int *high) { (void)c; *high = 1; return pin < 16 ? 0 : -1; }
static int f_led(void *c, int32_t led, int on)
{
    if (led != 0) return -1;
    ((fake *)c)->led0 = on;
    return 0;
}
static int f_sensor(void *c, int32_t s, int32_t *v) { (void)c; *v = 21500; return s == 0 ? 0 : -1; }
static int f_publish(void *c, const uint8_t *t, uint32_t tl, const uint8_t *d, uint32_t dl)
{
    fake *f = c;
    (void)t; (void)tl;
    f->publishes++;
    if (dl == 4) memcpy(&f->last_published, d, 4);
    return 0;
}
static int f_config(void *c, const uint8_t *k, uint32_t kl, const uint8_t **v, uint32_t *vl)
{
    static const uint8_t val[] = "250";
    (void)c;
    if (kl != 6 || memcmp(k, "period", 6)) return -1;
    *v = val;
    *vl = 3;
    return 0;
}

static uint8_t *load(const char *dir, const char *name, uint32_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n);
    if (fread(b, 1, (size_t)n, fp) != (size_t)n) n = 0;
    fclose(fp);
    *len = (uint32_t)n;
    return b;
}

static uint8_t arena[64 * 1024];

#define ACHECK(c, ...) do { (*checks)++; if (!(c)) { (*failures)++; printf("FAIL app: " __VA_ARGS__); printf("\n"); } } while (0)

static wb_board fake_board(fake *f)
{
    memset(f, 0, sizeof *f);
    f->now = 1000;
    return (wb_board){f, f_log, f_clock, f_sleep, f_yield, f_gpio_w, f_gpio_r, f_led, f_sensor, f_publish, f_config, NULL};
}

/* The token bucket alone, on a clock the test moves. */
static void run_bucket_tests(int *checks, int *failures)
{
    wb_bucket k;
    int n = 0;
    wb_bucket_init(&k, 500, 100, 3);
    while (wb_bucket_take(&k, 500, 100, 3)) n++;
    ACHECK(n == 3, "a full bucket of 3 gives %d tokens at once", n);
    ACHECK(!wb_bucket_take(&k, 599, 100, 3) && wb_bucket_take(&k, 600, 100, 3) && !wb_bucket_take(&k, 600, 100, 3),
           "one token 100 ms after the last");
    n = 0;
    while (wb_bucket_take(&k, 1000000, 100, 3)) n++;
    ACHECK(n == 3, "a long pause saves up only the burst: %d", n);
    ACHECK(!wb_bucket_take(&k, 900000, 100, 3) && k.credit == 0, "a clock going back adds nothing (credit %u)",
           (unsigned)k.credit);
    ACHECK(wb_bucket_ready(&k, 900100, 100, 3) && wb_bucket_ready(&k, 900100, 100, 3) && k.credit == 100,
           "ready does not take (credit %u)", (unsigned)k.credit);
    /* 2^32 ms later: the refill saturates instead of wrapping in 32 bits */
    wb_bucket_init(&k, 0, 100, 3);
    k.credit = 0;
    ACHECK(wb_bucket_ready(&k, 1ull << 32, 100, 3) && k.credit == 300, "refill after 2^32 ms: credit %u",
           (unsigned)k.credit);
}

/* The wall-clock budget of a call: sleeps, slow host calls, a stop from the board. */
static void run_time_tests(const char *dir, int *checks, int *failures)
{
    fake f;
    wb_board b = fake_board(&f);
    wb_app app;
    uint32_t len;
    int32_t delay = 0;
    uint8_t *bin = load(dir, "app_sleepy.wasm", &len);
    ACHECK(bin != NULL, "app_sleepy.wasm missing");
    if (!bin) return;

    /* 100 ms sleeps inside one loop call: 20 fit the 2 s, the 21st would end past it */
    wasm_err e = wb_app_start(&app, &b, bin, len, arena, sizeof arena, 0, NULL);
    ACHECK(e == WASM_OK, "sleepy start: %s", wasm_err_str(e));
    uint64_t t0 = f.now;
    e = wb_app_loop(&app, &delay);
    ACHECK(e == WASM_TRAP_HOST && app.state == WB_STATE_FAILED && !strcmp(wb_app_reason(&app, e), "time budget exceeded"),
           "sleepy loop: %s", wb_app_reason(&app, e));
    ACHECK(f.sleeps == 20 && f.now - t0 == WB_CALL_TIME_MS, "sleepy: %d sleeps, %u ms, want 20 and %u", f.sleeps,
           (unsigned)(f.now - t0), (unsigned)WB_CALL_TIME_MS);

    /* the board stops the app from inside sleep_ms (a Stop from the gateway) */
    b = fake_board(&f);
    f.stop_after = 3;
    e = wb_app_start(&app, &b, bin, len, arena, sizeof arena, 0, NULL);
    e = e ? e : wb_app_loop(&app, &delay);
    ACHECK(e == WASM_TRAP_HOST && !strcmp(wb_app_reason(&app, e), "stopped") && f.sleeps == 3,
           "stopped while sleeping: %s after %d sleeps", wb_app_reason(&app, e), f.sleeps);

    /* a sleep counts as long as it asked for: waking 60 ms late each time (serving the
     * session meanwhile) still gives the app its 20 sleeps */
    b = fake_board(&f);
    f.late = 60;
    e = wb_app_start(&app, &b, bin, len, arena, sizeof arena, 0, NULL);
    e = e ? e : wb_app_loop(&app, &delay);
    ACHECK(!strcmp(wb_app_reason(&app, e), "time budget exceeded") && f.sleeps == 20,
           "late wake-ups: %s after %d sleeps", wb_app_reason(&app, e), f.sleeps);

    /* a smaller budget of the embedder is honoured */
    b = fake_board(&f);
    const wb_limits short_calls = {0, 250};
    e = wb_app_start(&app, &b, bin, len, arena, sizeof arena, 0, &short_calls);
    e = e ? e : wb_app_loop(&app, &delay);
    ACHECK(!strcmp(wb_app_reason(&app, e), "time budget exceeded") && f.sleeps == 2, "250 ms budget: %s after %d sleeps",
           wb_app_reason(&app, e), f.sleeps);
    free(bin);

    /* slow host calls count too: blink's loop makes 3 host calls and every clock reading
     * costs 30 ms, so its call ends at 120 ms: over a 100 ms budget although every host
     * call started within it (the check when the call returns) */
    bin = load(dir, "app_blink.wasm", &len);
    if (!bin) return;
    b = fake_board(&f);
    const wb_limits tight = {0, 100};
    e = wb_app_start(&app, &b, bin, len, arena, sizeof arena, 8192, &tight);
    ACHECK(e == WASM_OK, "blink start at 0 ms a reading: %s", wb_app_reason(&app, e));
    f.tick = 30;
    e = wb_app_loop(&app, &delay);
    ACHECK(e == WASM_TRAP_HOST && !strcmp(wb_app_reason(&app, e), "time budget exceeded") && f.publishes == 1,
           "blink with slow host calls: %s, %d publishes", wb_app_reason(&app, e), f.publishes);
    b = fake_board(&f);
    e = wb_app_start(&app, &b, bin, len, arena, sizeof arena, 8192, &tight);
    f.tick = 20; /* 80 ms: within */
    e = e ? e : wb_app_loop(&app, &delay);
    ACHECK(e == WASM_OK, "blink with 20 ms readings: %s", wb_app_reason(&app, e));
    free(bin);
}

/* Rate limits of log and publish, and the reports of what they dropped. */
static void run_flood_tests(const char *dir, int *checks, int *failures)
{
    fake f;
    wb_board b = fake_board(&f);
    wb_app app;
    uint32_t len;
    int32_t delay = 0;
    uint8_t *bin = load(dir, "app_flood.wasm", &len);
    ACHECK(bin != NULL, "app_flood.wasm missing");
    if (!bin) return;
    wasm_err e = wb_app_start(&app, &b, bin, len, arena, sizeof arena, 8192, NULL);
    ACHECK(e == WASM_OK, "flood start: %s", wasm_err_str(e));
    int32_t g = wasm_module_export(app.mod, "busy", 4, WASM_EXTERN_GLOBAL);
    wasm_global *busy = g >= 0 ? wasm_instance_global(app.inst, (uint32_t)g) : NULL;
    ACHECK(busy != NULL, "flood exports its ERR_BUSY count");
    if (!busy) return;

    /* at one instant: the bursts go out, the rest is dropped and counted */
    e = wb_app_loop(&app, &delay);
    ACHECK(e == WASM_OK && f.logs == (int)WB_LOG_BURST && f.publishes == (int)WB_PUBLISH_BURST,
           "first call: %s, %d lines, %d records", wasm_err_str(e), f.logs, f.publishes);
    ACHECK((int32_t)busy->val == 20 - (int32_t)WB_PUBLISH_BURST, "ERR_BUSY %d times", (int32_t)busy->val);
    ACHECK(app.lines_dropped == 100 - WB_LOG_BURST && app.records_dropped == 20 - WB_PUBLISH_BURST,
           "counted %u lines, %u records", (unsigned)app.lines_dropped, (unsigned)app.records_dropped);

    /* 1 s later: the reports come first, then what a second's tokens allow */
    f.now += 1000;
    f.logs = f.publishes = 0;
    e = wb_app_loop(&app, &delay);
    ACHECK(e == WASM_OK && !strcmp(f.warnings[2], "80 lines dropped") && !strcmp(f.warnings[3], "10 records dropped"),
           "reports '%s', '%s'", f.warnings[2], f.warnings[3]);
    ACHECK(f.logs == 2 + 10 && f.publishes == 10, "second call: %d lines (2 reports), %d records", f.logs,
           f.publishes);
    ACHECK(app.lines_dropped == 90 && app.records_dropped == 10, "counted %u lines, %u records",
           (unsigned)app.lines_dropped, (unsigned)app.records_dropped);

    /* a transport with no room: lines are counted, the report waits until one goes out */
    f.now += 10000;
    f.log_full = 1;
    f.logs = 0;
    e = wb_app_loop(&app, &delay);
    ACHECK(e == WASM_OK && f.logs == 0 && app.lines_dropped == 90 + 100, "transport full: %d lines, %u counted",
           f.logs, (unsigned)app.lines_dropped);
    f.log_full = 0;
    f.now += 10000;
    e = wb_app_loop(&app, &delay);
    ACHECK(!strcmp(f.warnings[2], "190 lines dropped") && !strcmp(f.warnings[3], "20 records dropped"),
           "reports after the transport came back: '%s', '%s'", f.warnings[2], f.warnings[3]);
    free(bin);
}

void run_app_tests(const char *dir, int *checks, int *failures)
{
    fake f;
    wb_board b = fake_board(&f);
    wb_app app;
    uint32_t len;
    int32_t delay = 0;
    wasm_err e;

    uint8_t *bin = load(dir, "app_blink.wasm", &len);
    ACHECK(bin != NULL, "app_blink.wasm missing");
    if (!bin) return;
    /* 8 KiB of RAM backs the one-page memory: enough for this app */
    e = wb_app_start(&app, &b, bin, len, arena, sizeof arena, 8192, NULL);
    ACHECK(e == WASM_OK, "start: %s", wasm_err_str(e));
    ACHECK(f.logs == 1 && !strcmp(f.last_log, "hello"), "setup log '%s'", f.last_log);
    for (int i = 0; i < 3 && !e; i++) {
        e = wb_app_loop(&app, &delay);
        ACHECK(e == WASM_OK, "loop %d: %s", i, wasm_err_str(e));
        if (i < 2) ACHECK(delay == 3, "loop %d delay %d (config length)", i, delay);
    }
    ACHECK(delay < 0 && app.state == WB_STATE_EXITED, "exit: delay %d state %d", delay, app.state);
    ACHECK(f.led0 == 1 && f.publishes == 3 && f.last_published == 21500, "led %d pubs %d val %d", f.led0,
           f.publishes, f.last_published);
    /* host pointer checks trap with the spec's reason */
    int32_t bad = wasm_module_export(app.mod, "bad_log", 7, WASM_EXTERN_FUNC);
    wasm_slot none[1];
    e = wasm_call(app.inst, (uint32_t)bad, none);
    ACHECK(e == WASM_TRAP_MEM_OOB, "bad_log: %s", wasm_err_str(e));
    free(bin);

    bin = load(dir, "app_spin.wasm", &len);
    const wb_limits little_fuel = {5000, 0};
    e = bin ? wb_app_start(&app, &b, bin, len, arena, sizeof arena, 0, &little_fuel) : WASM_E_ARG;
    ACHECK(e == WASM_OK, "spin start: %s", wasm_err_str(e));
    e = wb_app_loop(&app, &delay);
    ACHECK(e == WASM_TRAP_FUEL && app.state == WB_STATE_FAILED, "spin: %s", wasm_err_str(e));
    ACHECK(f.yields > 0, "yield called");
    free(bin);

    bin = load(dir, "app_badimport.wasm", &len);
    e = bin ? wb_app_start(&app, &b, bin, len, arena, sizeof arena, 0, NULL) : WASM_E_ARG;
    ACHECK(e == WASM_E_IMPORT_TYPE && app.state == WB_STATE_FAILED, "bad import: %s", wasm_err_str(e));
    free(bin);

    run_bucket_tests(checks, failures);
    run_time_tests(dir, checks, failures);
    run_flood_tests(dir, checks, failures);
}
