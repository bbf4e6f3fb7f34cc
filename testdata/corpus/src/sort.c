/* sort: sorts 64 pseudo-random integers (a 32-bit LCG seeded by the call number) with
 * an insertion sort whose comparison goes through a table of function pointers
 * (call_indirect), ascending on even calls and descending on odd ones; logs
 * "sort <call> <first> <last> <checksum>" with checksum = sum of (i+1)*a[i] mod 2^32. */
#include "wasmbed.h"

typedef int (*cmp_fn)(int32_t, int32_t);

static int ascending(int32_t a, int32_t b) { return a > b; }
static int descending(int32_t a, int32_t b) { return a < b; }

/* volatile: keep the calls indirect. */
static cmp_fn volatile order[2] = {ascending, descending};
static int32_t a[64];
static int32_t calls;

static int dec(char *out, int32_t v) {
    char tmp[12];
    int n = 0;
    uint32_t u = v < 0 ? (uint32_t)0 - (uint32_t)v : (uint32_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    int k = 0;
    if (v < 0) out[k++] = '-';
    for (int i = 0; i < n; i++) out[k++] = tmp[n - 1 - i];
    return k;
}

WASMBED_EXPORT(loop) int32_t loop(void) {
    uint32_t x = (uint32_t)calls + 1;
    for (int i = 0; i < 64; i++) {
        x = x * 1664525u + 1013904223u;
        a[i] = (int32_t)(x >> 8) - (1 << 23);
    }
    cmp_fn after = order[calls & 1];
    for (int i = 1; i < 64; i++) {
        int32_t v = a[i];
        int j = i - 1;
        while (j >= 0 && after(a[j], v)) {
            a[j + 1] = a[j];
            j--;
        }
        a[j + 1] = v;
    }
    uint32_t sum = 0;
    for (int i = 0; i < 64; i++) sum += (uint32_t)(i + 1) * (uint32_t)a[i];
    char msg[64] = "sort ";
    int n = 5;
    n += dec(msg + n, calls);
    msg[n++] = ' ';
    n += dec(msg + n, a[0]);
    msg[n++] = ' ';
    n += dec(msg + n, a[63]);
    msg[n++] = ' ';
    n += dec(msg + n, (int32_t)sum);
    wasmbed_log(WASMBED_LOG_INFO, msg, n);
    calls++;
    return 100;
}
