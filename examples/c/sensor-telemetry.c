// sensor-telemetry: reads the temperature sensor once a second and publishes it, in
// milli-degrees Celsius as decimal text, on topic "temperature".
#include "wasmbed.h"

WASMBED_EXPORT(loop) int32_t loop(void) {
    int32_t t = wasmbed_sensor_read(WASMBED_SENSOR_TEMPERATURE);
    if (t == WASMBED_SENSOR_NONE) {
        wasmbed_log_str(WASMBED_LOG_WARN, "no temperature sensor on this board");
        return 10000;
    }
    char buf[12];
    int32_t n = wasmbed_itoa(t, buf);
    if (wasmbed_publish("temperature", 11, buf, n) == WASMBED_ERR_BUSY) {
        wasmbed_log_str(WASMBED_LOG_WARN, "telemetry rate limited");
    }
    return 1000;
}
