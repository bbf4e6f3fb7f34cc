/*
 * CoreMark-like kernels for the M4 bench (bench_m4.c), one C source built three ways:
 * natively for the Cortex-M4F at -Os and at -O2 (K(name) gives each build its own names,
 * e.g. -D'K(x)=os_##x'), and to wasm32 by clang-19 -O2 (the Makefile's bench-m4 rule
 * exports init and every kernel). Each kernel returns a checksum of what it computed, so
 * the bench can check that every engine gets the native result. init(seed) lays out the
 * inputs; kernels that change their data (sort) need it again before another run.
 * Freestanding: no libc, so the three builds run the same code.
 */
#include <stdint.h>

#ifndef K
#define K(x) x
#endif

#define TEXT 4096u /* crc32, sha256 and search input */
#define N 16u      /* matrix side */
#define NSORT 512u
#define NSTATE 2048u

static uint8_t text[TEXT];
static int32_t ia[N * N], ib[N * N], ic[N * N];
static float fa[N * N], fb[N * N], fc[N * N];
static int32_t keys[NSORT];
static uint8_t input[NSTATE];
static uint32_t rng;

static uint32_t next(void)
{
    rng = rng * 1664525u + 1013904223u;
    return rng >> 8;
}

void K(init)(uint32_t seed)
{
    static const char tok[] = "0123456789+-.,eE x";
    rng = seed;
    for (uint32_t i = 0; i < TEXT; i++) text[i] = (uint8_t)("abcd"[next() & 3]);
    for (uint32_t i = 0; i < N * N; i++) {
        ia[i] = (int32_t)(next() & 0xff) - 128;
        ib[i] = (int32_t)(next() & 0xff) - 128;
        fa[i] = (float)(int32_t)(next() % 64u) * 0.125f - 4.0f;
        fb[i] = (float)(int32_t)(next() % 64u) * 0.0625f + 0.5f;
    }
    for (uint32_t i = 0; i < NSORT; i++) keys[i] = (int32_t)(next() ^ (next() << 16));
    for (uint32_t i = 0; i < NSTATE; i++) input[i] = (uint8_t)tok[next() % (sizeof tok - 1)];
}

/* Bitwise CRC-32 (IEEE, reflected) of the first n bytes of the text. */
uint32_t K(crc32)(uint32_t n)
{
    uint32_t c = 0xffffffffu;
    for (uint32_t i = 0; i < n; i++) {
        c ^= text[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return ~c;
}

/* C = A * B, integer, reps times; the sum of C weighted by position. */
uint32_t K(matmul_i32)(uint32_t reps)
{
    uint32_t sum = 0;
    for (uint32_t r = 0; r < reps; r++) {
        for (uint32_t i = 0; i < N; i++)
            for (uint32_t j = 0; j < N; j++) {
                int32_t s = 0;
                for (uint32_t k = 0; k < N; k++) s += ia[i * N + k] * ib[k * N + j];
                ic[i * N + j] = s + (int32_t)r;
            }
        for (uint32_t i = 0; i < N * N; i++) sum = sum * 31u + (uint32_t)ic[i];
    }
    return sum;
}

/* C = A * B in f32, reps times; the bits of C's Frobenius norm mixed with C truncated to int. */
uint32_t K(matmul_f32)(uint32_t reps)
{
    uint32_t sum = 0;
    for (uint32_t r = 0; r < reps; r++) {
        float sq = 0.0f;
        for (uint32_t i = 0; i < N; i++)
            for (uint32_t j = 0; j < N; j++) {
                float s = 0.0f;
                for (uint32_t k = 0; k < N; k++) s += fa[i * N + k] * fb[k * N + j];
                fc[i * N + j] = s / (float)(r + 1);
            }
        for (uint32_t i = 0; i < N * N; i++) {
            sq += fc[i] * fc[i];
            sum = sum * 31u + (uint32_t)(int32_t)fc[i];
            if (fc[i] < -1.0f) sum ^= i;
        }
        union { float f; uint32_t u; } v = {__builtin_sqrtf(sq)};
        sum += v.u;
    }
    return sum;
}

static void quicksort(int32_t *a, int32_t lo, int32_t hi)
{
    while (lo < hi) {
        int32_t p = a[lo + (hi - lo) / 2], i = lo, j = hi;
        while (i <= j) {
            while (a[i] < p) i++;
            while (a[j] > p) j--;
            if (i <= j) {
                int32_t t = a[i];
                a[i++] = a[j];
                a[j--] = t;
            }
        }
        if (j - lo < hi - i) { quicksort(a, lo, j); lo = i; }
        else { quicksort(a, i, hi); hi = j; }
    }
}

/* Sorts the keys (quicksort, recursive); a checksum of the order. */
uint32_t K(sort)(uint32_t n)
{
    uint32_t sum = 0;
    quicksort(keys, 0, (int32_t)n - 1);
    for (uint32_t i = 0; i < n; i++) sum = sum * 33u + (uint32_t)keys[i];
    for (uint32_t i = 1; i < n; i++) sum += keys[i - 1] <= keys[i];
    return sum;
}

/* A number scanner (as CoreMark's core_state): classifies the comma-separated tokens of the input. */
enum { S_START, S_INT, S_SIGN, S_FRAC, S_EXP, S_EXPSIGN, S_SCI, S_BAD, NSTATES };
uint32_t K(state)(uint32_t passes)
{
    uint32_t count[NSTATES] = {0}, trans = 0;
    for (uint32_t r = 0; r < passes; r++) {
        uint32_t s = S_START;
        for (uint32_t i = 0; i < NSTATE; i++) {
            uint8_t ch = input[i];
            uint32_t was = s;
            if (ch == ',') { count[s]++; s = S_START; continue; }
            int digit = ch >= '0' && ch <= '9';
            switch (s) {
            case S_START: s = digit ? S_INT : (ch == '+' || ch == '-') ? S_SIGN : ch == '.' ? S_FRAC : S_BAD; break;
            case S_SIGN: s = digit ? S_INT : ch == '.' ? S_FRAC : S_BAD; break;
            case S_INT: s = digit ? S_INT : ch == '.' ? S_FRAC : (ch == 'e' || ch == 'E') ? S_EXP : S_BAD; break;
            case S_FRAC: s = digit ? S_FRAC : (ch == 'e' || ch == 'E') ? S_EXP : S_BAD; break;
            case S_EXP: s = digit ? S_SCI : (ch == '+' || ch == '-') ? S_EXPSIGN : S_BAD; break;
            case S_EXPSIGN: s = digit ? S_SCI : S_BAD; break;
            case S_SCI: s = digit ? S_SCI : S_BAD; break;
            default: break;
            }
            trans += s != was;
        }
        count[s]++;
    }
    uint32_t sum = trans;
    for (uint32_t k = 0; k < NSTATES; k++) sum = sum * 131u + count[k];
    return sum;
}

static uint32_t ror(uint32_t x, uint32_t n) { return (x >> n) | (x << (32 - n)); }

static const uint32_t sha_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static void sha_block(uint32_t h[8], const uint8_t *p)
{
    uint32_t w[64], a, b, c, d, e, f, g, hh;
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = h[0]; b = h[1]; c = h[2]; d = h[3]; e = h[4]; f = h[5]; g = h[6]; hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = hh + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + sha_k[i] + w[i];
        uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

/* SHA-256 of the first n bytes of the text (n a multiple of 64, padding left out): its words mixed. */
uint32_t K(sha256)(uint32_t n)
{
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    for (uint32_t off = 0; off + 64 <= n; off += 64) sha_block(h, text + off);
    uint32_t sum = 0;
    for (int i = 0; i < 8; i++) sum = ror(sum, 5) ^ h[i];
    return sum;
}

uint32_t K(fib)(uint32_t n) { return n < 2 ? n : K(fib)(n - 1) + K(fib)(n - 2); }

/* Occurrences of every 3- and 5-letter pattern over "ab" in the first n bytes of the text (naive search). */
uint32_t K(search)(uint32_t n)
{
    uint8_t pat[5];
    uint32_t found = 0;
    for (uint32_t len = 3; len <= 5; len += 2)
        for (uint32_t code = 0; code < (1u << len); code++) {
            for (uint32_t k = 0; k < len; k++) pat[k] = (uint8_t)('a' + ((code >> k) & 1));
            for (uint32_t i = 0; i + len <= n; i++) {
                uint32_t k = 0;
                while (k < len && text[i + k] == pat[k]) k++;
                found += k == len ? i + 1 : 0;
            }
        }
    return found;
}
