/* search: builds a 2 KiB text over the alphabet "abc" from an LCG seeded by the call
 * number, counts the occurrences of the pattern "abcab" with Knuth-Morris-Pratt, and
 * counts the words (maximal runs of 'a') with a two-state machine; logs
 * "search <call> <matches> <first match or -1> <runs>". */
#include "wasmbed.h"

static char text[2048];
static const char pat[] = "abcab";
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
    uint32_t x = 7u * (uint32_t)calls + 3u;
    for (int i = 0; i < 2048; i++) {
        x = x * 1103515245u + 12345u;
        text[i] = "abc"[(x >> 16) % 3];
    }
    enum { m = sizeof pat - 1 };
    int fail[m];
    fail[0] = 0;
    for (int i = 1, k = 0; i < m; i++) {
        while (k > 0 && pat[i] != pat[k]) k = fail[k - 1];
        if (pat[i] == pat[k]) k++;
        fail[i] = k;
    }
    int32_t matches = 0, first = -1;
    for (int i = 0, k = 0; i < 2048; i++) {
        while (k > 0 && text[i] != pat[k]) k = fail[k - 1];
        if (text[i] == pat[k]) k++;
        if (k == m) {
            if (first < 0) first = i - m + 1;
            matches++;
            k = fail[k - 1];
        }
    }
    int32_t runs = 0;
    int in = 0;
    for (int i = 0; i < 2048; i++) {
        switch (in) {
        case 0:
            if (text[i] == 'a') { in = 1; runs++; }
            break;
        default:
            if (text[i] != 'a') in = 0;
            break;
        }
    }
    char msg[64] = "search ";
    int n = 7;
    n += dec(msg + n, calls);
    msg[n++] = ' ';
    n += dec(msg + n, matches);
    msg[n++] = ' ';
    n += dec(msg + n, first);
    msg[n++] = ' ';
    n += dec(msg + n, runs);
    wasmbed_log(WASMBED_LOG_INFO, msg, n);
    calls++;
    return 100;
}
