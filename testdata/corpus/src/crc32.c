/* crc32: CRC-32 (IEEE, reflected 0xEDB88320, table-driven) of a 1 KiB buffer that
 * memset and memcpy fill differently on each call; logs "crc32 <call> <crc hex>". */
#include "wasmbed.h"

/* wasmbed.h defines memset and memcpy (the compiler may call them for the copies below;
 * with bulk memory it emits memory.fill and memory.copy instead). */

static uint32_t table[256];
static unsigned char buf[1024];
static int32_t calls;

static void hex32(char *out, uint32_t v) {
    for (int i = 7; i >= 0; i--) {
        out[i] = "0123456789abcdef"[v & 15];
        v >>= 4;
    }
}

static int dec(char *out, int32_t v) {
    char tmp[12];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    for (int i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    return n;
}

WASMBED_EXPORT(setup) void setup(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
}

WASMBED_EXPORT(loop) int32_t loop(void) {
    __builtin_memset(buf, 'a' + calls, 512);
    __builtin_memcpy(buf + 512, buf, 512);
    buf[calls * 7] = 'z';
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < sizeof buf; i++) c = table[(c ^ buf[i]) & 0xFF] ^ (c >> 8);
    c ^= 0xFFFFFFFFu;
    char msg[32] = "crc32 ";
    int n = 6;
    n += dec(msg + n, calls);
    msg[n++] = ' ';
    hex32(msg + n, c);
    n += 8;
    wasmbed_log(WASMBED_LOG_INFO, msg, n);
    calls++;
    return 100;
}
