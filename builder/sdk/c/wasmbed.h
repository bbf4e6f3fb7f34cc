/*
 * wasmbed.h - the Wasmbed application ABI, version 2, for C (docs/abi.md).
 *
 * Include it, export loop() (and optionally setup()) with WASMBED_EXPORT, and let the
 * builder compile with clang --target=wasm32. Every function below is imported from the
 * host module "wasmbed"; pointers are offsets into the module's memory 0.
 *
 *     #include "wasmbed.h"
 *
 *     WASMBED_EXPORT(loop) int32_t loop(void) {
 *         wasmbed_led_set(0, 1);
 *         return 500;  // call loop again in 500 ms
 *     }
 */
#ifndef WASMBED_H
#define WASMBED_H

#define WASMBED_ABI_VERSION 2

/* clang's freestanding headers: the builder compiles with -ffreestanding -nostdlib. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Result codes shared by all host functions. */
#define WASMBED_OK 0
#define WASMBED_ERR_NOT_FOUND (-1)
#define WASMBED_ERR_INVALID (-2)
#define WASMBED_ERR_BUSY (-3)
/* Returned by wasmbed_sensor_read when the board has no such sensor. */
#define WASMBED_SENSOR_NONE ((int32_t)(-2147483647 - 1))

/* Sensor ids for wasmbed_sensor_read; values are in milli-units. */
#define WASMBED_SENSOR_TEMPERATURE 0 /* m°C */
#define WASMBED_SENSOR_HUMIDITY 1    /* m% relative humidity */
#define WASMBED_SENSOR_LIGHT 2       /* mlux */
#define WASMBED_SENSOR_VOLTAGE 3     /* supply voltage, mV */

/* Log levels for wasmbed_log; other values are treated as info. */
#define WASMBED_LOG_DEBUG 0
#define WASMBED_LOG_INFO 1
#define WASMBED_LOG_WARN 2
#define WASMBED_LOG_ERROR 3

/* Exports a function under `name`, e.g. WASMBED_EXPORT(loop) int32_t loop(void). */
#define WASMBED_EXPORT(name) __attribute__((export_name(#name), visibility("default")))

/* Declares a host function imported from module "wasmbed" under `name`. */
#define WASMBED_IMPORT(name) __attribute__((import_module("wasmbed"), import_name(#name)))

/* Writes a UTF-8 message (truncated to 256 bytes) to the device log at `level`. */
WASMBED_IMPORT(log) void wasmbed_log(int32_t level, const char *msg, int32_t len);

/* Milliseconds since the application was started (monotonic). */
WASMBED_IMPORT(clock_ms) int64_t wasmbed_clock_ms(void);

/* Blocks for `ms` milliseconds, clamped to 0..1000. Prefer returning a delay from loop. */
WASMBED_IMPORT(sleep_ms) void wasmbed_sleep_ms(int32_t ms);

/* A scheduling point: the host may serve its session before returning. Never fails. */
WASMBED_IMPORT(yield) void wasmbed_yield(void);

/* Drives GPIO `pin` low (level 0) or high. Returns WASMBED_OK or WASMBED_ERR_NOT_FOUND. */
WASMBED_IMPORT(gpio_write) int32_t wasmbed_gpio_write(int32_t pin, int32_t level);

/* Reads GPIO `pin`: 0 or 1, or WASMBED_ERR_NOT_FOUND. */
WASMBED_IMPORT(gpio_read) int32_t wasmbed_gpio_read(int32_t pin);

/* Switches user LED `led` (0-based) off (on == 0) or on. Returns WASMBED_OK or WASMBED_ERR_NOT_FOUND. */
WASMBED_IMPORT(led_set) int32_t wasmbed_led_set(int32_t led, int32_t on);

/* Reads sensor `sensor` (WASMBED_SENSOR_*) in milli-units, or WASMBED_SENSOR_NONE. */
WASMBED_IMPORT(sensor_read) int32_t wasmbed_sensor_read(int32_t sensor);

/* Publishes `data` (at most 512 bytes) on `topic` (1..64 bytes of UTF-8).
 * Returns WASMBED_OK, WASMBED_ERR_INVALID or WASMBED_ERR_BUSY (record dropped). */
WASMBED_IMPORT(publish)
int32_t wasmbed_publish(const char *topic, int32_t topic_len, const void *data, int32_t data_len);

/* Copies configuration value `key` into `buf` (at most `cap` bytes). Returns the value's
 * full length, which may exceed `cap` (the copy is truncated), or WASMBED_ERR_NOT_FOUND. */
WASMBED_IMPORT(config_get)
int32_t wasmbed_config_get(const char *key, int32_t key_len, char *buf, int32_t cap);

/* Helpers (static inline: they cost nothing unless used). */

/* Length of a NUL-terminated string. */
static inline int32_t wasmbed_strlen(const char *s) {
    int32_t n = 0;
    while (s[n] != 0) {
        n++;
    }
    return n;
}

/* Logs a NUL-terminated string at `level`. */
static inline void wasmbed_log_str(int32_t level, const char *msg) {
    wasmbed_log(level, msg, wasmbed_strlen(msg));
}

/* Publishes a NUL-terminated string `data` on a NUL-terminated `topic`. */
static inline int32_t wasmbed_publish_str(const char *topic, const char *data) {
    return wasmbed_publish(topic, wasmbed_strlen(topic), data, wasmbed_strlen(data));
}

/* Formats `v` in decimal into `buf` (at least 12 bytes), NUL-terminated; returns the length. */
static inline int32_t wasmbed_itoa(int32_t v, char *buf) {
    char tmp[12];
    int32_t n = 0, len = 0;
    uint32_t u = v < 0 ? (uint32_t)0 - (uint32_t)v : (uint32_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0) {
        buf[len++] = '-';
    }
    while (n > 0) {
        buf[len++] = tmp[--n];
    }
    buf[len] = 0;
    return len;
}

/* Parses a decimal integer from the first `len` bytes of `s` (optional leading '-');
 * returns `fallback` when there is no digit. */
static inline int32_t wasmbed_atoi(const char *s, int32_t len, int32_t fallback) {
    int32_t i = 0, neg = 0, v = 0, digits = 0;
    if (len > 0 && s[0] == '-') {
        neg = 1;
        i = 1;
    }
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        v = v * 10 + (s[i] - '0');
        digits++;
    }
    if (digits == 0) {
        return fallback;
    }
    return neg ? -v : v;
}

/*
 * memset, memcpy, memmove and memcmp: clang may call them for struct copies and large
 * initialisers even without a libc. Weak, so an application may define its own, and
 * no_builtin so clang does not turn these loops back into calls to themselves. The
 * linker drops the ones that are not used. Define WASMBED_NO_MEM_HELPERS to leave them out.
 */
#ifndef WASMBED_NO_MEM_HELPERS
__attribute__((weak, no_builtin)) void *memset(void *dst, int c, size_t n) {
    unsigned char *d = (unsigned char *)dst;
    while (n--) {
        *d++ = (unsigned char)c;
    }
    return dst;
}

__attribute__((weak, no_builtin)) void *memcpy(void *dst, const void *src, size_t n) {
    unsigned char *d = (unsigned char *)dst;
    const unsigned char *s = (const unsigned char *)src;
    while (n--) {
        *d++ = *s++;
    }
    return dst;
}

__attribute__((weak, no_builtin)) void *memmove(void *dst, const void *src, size_t n) {
    unsigned char *d = (unsigned char *)dst;
    const unsigned char *s = (const unsigned char *)src;
    if (d < s) {
        while (n--) {
            *d++ = *s++;
        }
    } else {
        while (n--) {
            d[n] = s[n];
        }
    }
    return dst;
}

__attribute__((weak, no_builtin)) int memcmp(const void *a, const void *b, size_t n) {
    const unsigned char *x = (const unsigned char *)a;
    const unsigned char *y = (const unsigned char *)b;
    for (; n > 0; n--, x++, y++) {
        if (*x != *y) {
            return *x - *y;
        }
    }
    return 0;
}
#endif /* WASMBED_NO_MEM_HELPERS */

#endif /* WASMBED_H */
