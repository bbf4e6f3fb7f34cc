// config-driven: blinks LED 0 at the rate set by the Application's config key
// period_ms (default 500 ms when it is missing or not a positive number).
#include "wasmbed.h"

static int32_t period_ms = 500;
static int32_t on;

WASMBED_EXPORT(setup) void setup(void) {
    char buf[16];
    int32_t n = wasmbed_config_get("period_ms", 9, buf, sizeof buf);
    if (n > 0 && n <= (int32_t)sizeof buf) {
        int32_t v = wasmbed_atoi(buf, n, -1);
        if (v > 0) {
            period_ms = v;
        }
    }
}

WASMBED_EXPORT(loop) int32_t loop(void) {
    on = !on;
    wasmbed_led_set(0, on);
    return period_ms;
}
