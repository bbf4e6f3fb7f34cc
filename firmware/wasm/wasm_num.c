/* Float helpers with exact WebAssembly semantics, and 64-bit bit counts (see wasm_num.h). */
#include "wasm_num.h"

uint32_t wasm_popcnt64(uint64_t x)
{
    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
    return (uint32_t)((x * 0x0101010101010101ull) >> 56);
}

uint32_t wasm_clz64(uint64_t x)
{
    uint32_t n = 0;
    if (!x) return 64;
    if (!(x >> 32)) { n += 32; x <<= 32; }
    if (!(x >> 48)) { n += 16; x <<= 16; }
    if (!(x >> 56)) { n += 8; x <<= 8; }
    if (!(x >> 60)) { n += 4; x <<= 4; }
    if (!(x >> 62)) { n += 2; x <<= 2; }
    if (!(x >> 63)) n += 1;
    return n;
}

uint32_t wasm_ctz64(uint64_t x)
{
    if (!x) return 64;
    return 63 - wasm_clz64(x & (~x + 1));
}

uint64_t wasm_rotl64(uint64_t a, uint64_t k) { k &= 63; return (a << k) | (a >> ((64 - k) & 63)); }

/*
 * Round to an integral value. Works on bits for trunc; floor/ceil adjust
 * the truncated value by one (exact below 2^52); nearest uses the 2^52
 * addition trick, which rounds ties to even under the default rounding mode.
 */
uint64_t wasm_f64_round(uint64_t u, int mode)
{
    int e = (int)((u >> 52) & 0x7ff) - 1023;
    if (e >= 52) {
        if (e == 1024 && (u & 0x000fffffffffffffull)) u |= 0x0008000000000000ull; /* quiet NaN */
        return u;
    }
    double x = f64_of(u), t;
    if (mode == WR_NEAREST) {
        volatile double big = 4503599627370496.0; /* 2^52 */
        double a = f64_of(u & ~F64_SIGN);
        t = (a + big) - big;
        return slot_f64(t) | (u & F64_SIGN);
    }
    t = f64_of(e < 0 ? (u & F64_SIGN) : (u & ~(0x000fffffffffffffull >> e)));
    if (mode == WR_FLOOR && t > x) t -= 1.0;
    if (mode == WR_CEIL && t < x) t += 1.0;
    return slot_f64(t) | (u & F64_SIGN); /* keep the sign of zero results */
}

uint32_t wasm_f32_round(uint32_t u, int mode)
{
    int e = (int)((u >> 23) & 0xff) - 127;
    if (e >= 23) {
        if (e == 128 && (u & 0x7fffffu)) u |= 0x400000u;
        return u;
    }
    float x = f32_of(u), t;
    if (mode == WR_NEAREST) {
        volatile float big = 8388608.0f; /* 2^23 */
        float a = f32_of(u & ~F32_SIGN);
        t = (a + big) - big;
        return (uint32_t)slot_f32(t) | (u & F32_SIGN);
    }
    t = f32_of(e < 0 ? (u & F32_SIGN) : (u & ~(0x7fffffu >> e)));
    if (mode == WR_FLOOR && t > x) t -= 1.0f;
    if (mode == WR_CEIL && t < x) t += 1.0f;
    return (uint32_t)slot_f32(t) | (u & F32_SIGN);
}

/* Correctly rounded square root by the digit-by-digit method. */
uint64_t wasm_f64_sqrt(uint64_t u)
{
    uint64_t mant = u & 0x000fffffffffffffull;
    int e = (int)((u >> 52) & 0x7ff);
    if (e == 0x7ff) {
        if (mant) return u | 0x0008000000000000ull;
        return (u & F64_SIGN) ? 0x7ff8000000000000ull : u;
    }
    if ((u & ~F64_SIGN) == 0) return u;                 /* +-0 */
    if (u & F64_SIGN) return 0x7ff8000000000000ull;     /* negative */
    int E;
    if (e == 0) {                                       /* subnormal */
        E = -1022;
        while (!(mant & (1ull << 52))) { mant <<= 1; E--; }
    } else {
        E = e - 1023;
        mant |= 1ull << 52;
    }
    if (E & 1) { mant <<= 1; E--; }
    /* q = floor(sqrt(mant * 2^54)): 54 result bits, two input bits per step */
    uint64_t q = 0, rem = 0;
    for (int i = 0; i < 54; i++) {
        uint64_t pair = i < 27 ? (mant >> (52 - 2 * i)) & 3 : 0;
        uint64_t trial;
        rem = (rem << 2) | pair;
        trial = (q << 2) | 1;
        if (rem >= trial) { rem -= trial; q = (q << 1) | 1; }
        else q <<= 1;
    }
    /* no exact ties are possible for square roots: round on the guard bit */
    uint64_t r = (q >> 1) + (q & 1);
    int re = E / 2;
    if (r >> 53) { r >>= 1; re++; }
    return ((uint64_t)(re + 1023) << 52) | (r & 0x000fffffffffffffull);
}

uint32_t wasm_f32_sqrt(uint32_t u)
{
    if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu)) return u | 0x400000u;
    if ((u & F32_SIGN) && (u & ~F32_SIGN)) return 0x7fc00000u;
    /* sqrt in double then one rounding to float is exact (53 >= 2*24+2) */
    double d = (double)f32_of(u);
    return (uint32_t)slot_f32((float)f64_of(wasm_f64_sqrt(slot_f64(d))));
}

uint64_t wasm_f64_minmax(uint64_t a, uint64_t b, int max)
{
    double x = f64_of(a), y = f64_of(b);
    if (x != x) return a | 0x0008000000000000ull;
    if (y != y) return b | 0x0008000000000000ull;
    if (x == y) return max ? (a & b) : (a | b); /* -0 vs +0 */
    return (max ? x > y : x < y) ? a : b;
}

uint32_t wasm_f32_minmax(uint32_t a, uint32_t b, int max)
{
    float x = f32_of(a), y = f32_of(b);
    if (x != x) return a | 0x400000u;
    if (y != y) return b | 0x400000u;
    if (x == y) return max ? (a & b) : (a | b);
    return (max ? x > y : x < y) ? a : b;
}

int wasm_trunc(double d, int kind, int sat, uint64_t *out)
{
    /* exclusive bounds; every bound is exactly representable */
    static const double lo[4] = {-2147483649.0, -1.0, -9223372036854777856.0, -1.0};
    static const double hi[4] = {2147483648.0, 4294967296.0, 9223372036854775808.0, 18446744073709551616.0};
    static const uint64_t minv[4] = {0xffffffff80000000ull, 0, 0x8000000000000000ull, 0};
    static const uint64_t maxv[4] = {0x7fffffff, 0xffffffff, 0x7fffffffffffffffull, 0xffffffffffffffffull};
    if (d != d) {
        if (!sat) return 1;
        *out = 0;
        return 0;
    }
    if (!(d > lo[kind] && d < hi[kind])) {
        if (!sat) return 2;
        *out = d < 0 ? minv[kind] : maxv[kind];
        if (kind == 0) *out &= 0xffffffffu;
        return 0;
    }
    switch (kind) {
    case 0: *out = (uint32_t)(int32_t)d; break;
    case 1: *out = (uint32_t)d; break;
    case 2: *out = (uint64_t)(int64_t)d; break;
    default: *out = (uint64_t)d; break;
    }
    return 0;
}
