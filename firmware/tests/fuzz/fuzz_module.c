/*
 * Fuzz target: the module loader as the device runs it: load + ABI check + instantiate
 * + setup + a few loop calls under a small fuel budget, with a board that accepts
 * everything.
 */
#include <stdint.h>
#include <string.h>

#include "../../app/wasmbed_app.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t ticks;
static int f_log(void *c, int32_t l, const uint8_t *m, uint32_t n)
{
    (void)c, (void)l, (void)m, (void)n;
    return 0;
}
static uint64_t f_clock(void *c) { (void)c; return ticks++; }
static int f_sleep(void *c, uint32_t ms)
{
    (void)c;
    ticks += ms;
    return 0;
}
static int f_yield(void *c)
{
    (void)c;
    return 0;
}
static int f_gw(void *c, int32_t p, int h) { (void)c, (void)h; return p >= 0 && p < 4 ? 0 : -1; }
static int f_gr(void *c, int32_t p, int *h) { (void)c; *h = 1; return p >= 0 && p < 4 ? 0 : -1; }
static int f_led(void *c, int32_t l, int on) { (void)c, (void)on; return l == 0 ? 0 : -1; }
static int f_sensor(void *c, int32_t s, int32_t *v) { (void)c; *v = 1; return s == 0 ? 0 : -1; }
static int f_pub(void *c, const uint8_t *t, uint32_t tl, const uint8_t *d, uint32_t dl)
{
    (void)c, (void)t, (void)tl, (void)d, (void)dl;
    return 0;
}
static int f_cfg(void *c, const uint8_t *k, uint32_t kl, const uint8_t **v, uint32_t *vl)
{
    (void)c;
    if (kl != 1 || k[0] != 'a')
        return -1;
    *v = (const uint8_t *)"42";
    *vl = 2;
    return 0;
}

static const wb_board board = {NULL, f_log, f_clock, f_sleep, f_yield, f_gw, f_gr, f_led, f_sensor, f_pub, f_cfg, NULL};
static uint8_t arena[64 * 1024];
static wb_app app;
static const wb_limits lim = {20000, 0};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    if (wb_app_start(&app, &board, data, (uint32_t)size, arena, sizeof arena, 8192, &lim))
        return 0;
    for (int i = 0; i < 3 && app.state == WB_STATE_RUNNING; i++) {
        int32_t delay;
        wb_app_loop(&app, &delay);
    }
    return 0;
}
