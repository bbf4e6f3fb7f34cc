/* Host test of the ABI layer (app/) with a fake board. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../app/wasmbed_app.h"

typedef struct fake {
    uint64_t now;
    int led0, logs, publishes, yields;
    char last_log[300];
    int32_t last_published;
} fake;

static void f_log(void *c, int32_t level, const uint8_t *m, uint32_t n)
{
    fake *f = c;
    (void)level;
    f->logs++;
    snprintf(f->last_log, sizeof f->last_log, "%.*s", (int)n, (const char *)m);
}
static uint64_t f_clock(void *c) { return ((fake *)c)->now; }
static void f_sleep(void *c, uint32_t ms) { ((fake *)c)->now += ms; }
static void f_yield(void *c) { ((fake *)c)->yields++; }
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

void run_app_tests(const char *dir, int *checks, int *failures)
{
#define ACHECK(c, ...) do { (*checks)++; if (!(c)) { (*failures)++; printf("FAIL app: " __VA_ARGS__); printf("\n"); } } while (0)
    fake f;
    wb_board b = {&f, f_log, f_clock, f_sleep, f_yield, f_gpio_w, f_gpio_r, f_led, f_sensor, f_publish, f_config, NULL};
    wb_app app;
    uint32_t len;
    int32_t delay = 0;
    wasm_err e;

    memset(&f, 0, sizeof f);
    f.now = 1000;
    uint8_t *bin = load(dir, "app_blink.wasm", &len);
    ACHECK(bin != NULL, "app_blink.wasm missing");
    if (!bin) return;
    /* 8 KiB of RAM backs the one-page memory: enough for this app */
    e = wb_app_start(&app, &b, bin, len, arena, sizeof arena, 8192, 0);
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
    e = bin ? wb_app_start(&app, &b, bin, len, arena, sizeof arena, 0, 5000) : WASM_E_ARG;
    ACHECK(e == WASM_OK, "spin start: %s", wasm_err_str(e));
    e = wb_app_loop(&app, &delay);
    ACHECK(e == WASM_TRAP_FUEL && app.state == WB_STATE_FAILED, "spin: %s", wasm_err_str(e));
    ACHECK(f.yields > 0, "yield called");
    free(bin);

    bin = load(dir, "app_badimport.wasm", &len);
    e = bin ? wb_app_start(&app, &b, bin, len, arena, sizeof arena, 0, 0) : WASM_E_ARG;
    ACHECK(e == WASM_E_IMPORT_TYPE && app.state == WB_STATE_FAILED, "bad import: %s", wasm_err_str(e));
    free(bin);
}
