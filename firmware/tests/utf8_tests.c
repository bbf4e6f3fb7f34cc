/*
 * The shared UTF-8 validator (common/utf8.c): named cases at every boundary, then every
 * string of 1 and 2 bytes, every 3-byte string that starts with a lead byte (0xc0..0xff;
 * the others start with a complete or an invalid 1-byte sequence, covered by the shorter
 * ones), and 1,000,000 random strings of 4 to 9 bytes, against an independent oracle: the
 * Unicode standard's table 3-7 of well-formed byte sequences. Usage: utf8_tests
 */
#include <stdio.h>
#include <string.h>

#include "../common/utf8.h"
#include "check.h"

/* Length of the well-formed sequence at s[0..n) (table 3-7), or 0 if none starts there. */
static size_t table37(const uint8_t *s, size_t n)
{
    static const struct { uint8_t lo, hi, len, lo2, hi2; } rows[] = {
        {0x00, 0x7f, 1, 0, 0},       {0xc2, 0xdf, 2, 0x80, 0xbf}, {0xe0, 0xe0, 3, 0xa0, 0xbf},
        {0xe1, 0xec, 3, 0x80, 0xbf}, {0xed, 0xed, 3, 0x80, 0x9f}, {0xee, 0xef, 3, 0x80, 0xbf},
        {0xf0, 0xf0, 4, 0x90, 0xbf}, {0xf1, 0xf3, 4, 0x80, 0xbf}, {0xf4, 0xf4, 4, 0x80, 0x8f},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        if (s[0] < rows[r].lo || s[0] > rows[r].hi) continue;
        if (n < rows[r].len) return 0;
        if (rows[r].len > 1 && (s[1] < rows[r].lo2 || s[1] > rows[r].hi2)) return 0;
        for (size_t k = 2; k < rows[r].len; k++)
            if (s[k] < 0x80 || s[k] > 0xbf) return 0;
        return rows[r].len;
    }
    return 0;
}

static int oracle(const uint8_t *s, size_t n)
{
    for (size_t i = 0, k; i < n; i += k)
        if (!(k = table37(s + i, n - i))) return 0;
    return 1;
}

static uint64_t rng = 0x853c49e6748fea9bull;
static uint32_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

int main(void)
{
    static const struct { const char *what, *s; int ok; } named[] = {
        {"empty", "", 1},
        {"ASCII", "wasmbed/led 0", 1},
        {"U+0080, the first 2-byte", "\xc2\x80", 1},
        {"U+07FF, the last 2-byte", "\xdf\xbf", 1},
        {"U+0800, the first 3-byte", "\xe0\xa0\x80", 1},
        {"U+D7FF, below the surrogates", "\xed\x9f\xbf", 1},
        {"U+E000, above the surrogates", "\xee\x80\x80", 1},
        {"U+FFFF", "\xef\xbf\xbf", 1},
        {"U+10000, the first 4-byte", "\xf0\x90\x80\x80", 1},
        {"U+10FFFF, the last", "\xf4\x8f\xbf\xbf", 1},
        {"mixed", "m\xc2\xb0" "C \xe2\x82\xac \xf0\x9f\x98\x80", 1},
        {"overlong NUL", "\xc0\x80", 0},
        {"overlong U+007F", "\xc1\xbf", 0},
        {"overlong 3-byte", "\xe0\x9f\xbf", 0},
        {"overlong 4-byte", "\xf0\x8f\xbf\xbf", 0},
        {"U+D800, a surrogate", "\xed\xa0\x80", 0},
        {"U+DFFF, a surrogate", "\xed\xbf\xbf", 0},
        {"U+110000, past the last", "\xf4\x90\x80\x80", 0},
        {"lead 0xf5", "\xf5\x80\x80\x80", 0},
        {"lead 0xff", "\xff", 0},
        {"lone continuation", "\x80", 0},
        {"truncated 3-byte", "\xe2\x82", 0},
        {"truncated at the end", "ok\xf0\x9f\x98", 0},
        {"continuation expected", "\xe2\x28\xa1", 0},
    };
    uint8_t s[16];
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        size_t n = strlen(named[i].s);
        int got = wb_utf8_valid((const uint8_t *)named[i].s, n);
        CHECK(got == named[i].ok, "%s: got %d", named[i].what, got);
        CHECK(oracle((const uint8_t *)named[i].s, n) == named[i].ok, "oracle on %s", named[i].what);
    }
    /* a NUL byte is a valid character; validity never depends on what lies after n */
    CHECK(wb_utf8_valid((const uint8_t *)"a\0b", 3), "NUL inside");
    CHECK(wb_utf8_valid((const uint8_t *)"\xe2\x82\xac", 0) && !wb_utf8_valid((const uint8_t *)"\xe2\x82\xac", 2),
          "length bounds the check");

    unsigned long differ = 0, total = 0;
    for (uint32_t v = 0; v < 0x1000000u; v++) { /* strings of 1, 2 and 3 bytes */
        for (size_t n = 1; n <= 3; n++) {
            if ((n < 3 && v >> (8 * n)) || (n == 3 && v < 0xc00000u)) continue;
            for (size_t k = 0; k < n; k++) s[k] = (uint8_t)(v >> (8 * (n - 1 - k)));
            total++;
            if (wb_utf8_valid(s, n) != oracle(s, n) && differ++ < 5)
                printf("FAIL %zu bytes %06lx: validator %d, table 3-7 %d\n", n, (unsigned long)v, wb_utf8_valid(s, n),
                       oracle(s, n));
        }
    }
    for (int i = 0; i < 1000000; i++) { /* random strings, biased to lead and continuation bytes */
        size_t n = 4 + next() % 6;
        for (size_t k = 0; k < n; k++) {
            uint32_t r = next();
            s[k] = (uint8_t)(r % 3 == 0 ? 0x80 | (r >> 8 & 0x3f) : r % 3 == 1 ? 0xc0 | (r >> 8 & 0x3f) : r >> 8);
        }
        total++;
        if (wb_utf8_valid(s, n) != oracle(s, n) && differ++ < 5)
            printf("FAIL %zu random bytes: validator %d, table 3-7 %d\n", n, wb_utf8_valid(s, n), oracle(s, n));
    }
    CHECK(differ == 0, "%lu of %lu strings judged unlike table 3-7", differ, total);
    printf("utf8_tests: %d checks, %d failures (%lu strings against table 3-7)\n", checks, failures, total);
    return failures ? 1 : 0;
}
