// blink: toggles LED 0 every 500 ms. loop() returns the delay until the host calls it
// again, so the application never sleeps inside the host.
#include "wasmbed.h"

static int32_t on;

WASMBED_EXPORT(setup) void setup(void) {
    wasmbed_log_str(WASMBED_LOG_INFO, "blink: started");
}

WASMBED_EXPORT(loop) int32_t loop(void) {
    on = !on;
    wasmbed_led_set(0, on);
    return 500;
}
