/*
 * Ed25519 verification, written from RFC 8032 (sections 5.1.2-5.1.7).
 *
 * Field GF(p), p = 2^255 - 19: an element is 10 signed 32-bit limbs in radix 2^25.5,
 * limb i weighing 2^ceil(25.5 i) (26, 25, 26, 25, ... bits). Products of two limbs fit
 * 32x32->64-bit multiplies (SMULL/SMLAL on a Cortex-M4). Invariant after every
 * operation (fe_carry): |limb| <= 2^26 + 2^16, so in fe_mul each of the 10 terms of a
 * column is below 38 * 2^52.1 and a column below 2^61.
 *
 * Curve: twisted Edwards -x^2 + y^2 = 1 + d x^2 y^2, extended coordinates
 * (X:Y:Z:T) with x = X/Z, y = Y/Z, xy = T/Z; the RFC's complete addition and doubling
 * formulas (5.1.4).
 *
 * Scalar multiplication: Shamir's trick on [S]B + [k](-A), one bit at a time, table
 * {B, -A, B-A}; 252 doublings and ~190 additions. Variable time: a verifier handles
 * only public data.
 *
 * Stack (arm-none-eabi-gcc -Os, -fstack-usage): wb_ed25519_verify's frame holds
 * 4 points (640 B) + the SHA-512 state; the deepest call chain adds fe_pow2523 or
 * ge_decode (~0.4 KiB), fe_pow2523 (~0.3 KiB) and fe_mul (~0.15 KiB): about 1.9 KiB
 * measured (`make ed25519-m4`).
 */
#include "ed25519.h"

#include <string.h>

#include "sha512.h"

typedef int32_t fe[10];

typedef struct {
    fe X, Y, Z, T;
} ge;

/* Bit offset of limb i: ceil(25.5 i). */
static const uint8_t OFF[10] = {0, 26, 51, 77, 102, 128, 153, 179, 204, 230};

#define WIDTH(i) ((i) & 1 ? 25 : 26)

/* d = -121665/121666, 2d, sqrt(-1) = 2^((p-1)/4), the base point B (x, y = 4/5): little-endian. */
static const uint8_t D_BYTES[32] = {
    0xa3, 0x78, 0x59, 0x13, 0xca, 0x4d, 0xeb, 0x75, 0xab, 0xd8, 0x41, 0x41, 0x4d, 0x0a, 0x70, 0x00,
    0x98, 0xe8, 0x79, 0x77, 0x79, 0x40, 0xc7, 0x8c, 0x73, 0xfe, 0x6f, 0x2b, 0xee, 0x6c, 0x03, 0x52};
static const uint8_t D2_BYTES[32] = {
    0x59, 0xf1, 0xb2, 0x26, 0x94, 0x9b, 0xd6, 0xeb, 0x56, 0xb1, 0x83, 0x82, 0x9a, 0x14, 0xe0, 0x00,
    0x30, 0xd1, 0xf3, 0xee, 0xf2, 0x80, 0x8e, 0x19, 0xe7, 0xfc, 0xdf, 0x56, 0xdc, 0xd9, 0x06, 0x24};
static const uint8_t SQRTM1_BYTES[32] = {
    0xb0, 0xa0, 0x0e, 0x4a, 0x27, 0x1b, 0xee, 0xc4, 0x78, 0xe4, 0x2f, 0xad, 0x06, 0x18, 0x43, 0x2f,
    0xa7, 0xd7, 0xfb, 0x3d, 0x99, 0x00, 0x4d, 0x2b, 0x0b, 0xdf, 0xc1, 0x4f, 0x80, 0x24, 0x83, 0x2b};
static const uint8_t BX_BYTES[32] = {
    0x1a, 0xd5, 0x25, 0x8f, 0x60, 0x2d, 0x56, 0xc9, 0xb2, 0xa7, 0x25, 0x95, 0x60, 0xc7, 0x2c, 0x69,
    0x5c, 0xdc, 0xd6, 0xfd, 0x31, 0xe2, 0xa4, 0xc0, 0xfe, 0x53, 0x6e, 0xcd, 0xd3, 0x36, 0x69, 0x21};
static const uint8_t BY_BYTES[32] = {
    0x58, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
    0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66};
/* L = 2^252 + 27742317777372353535851937790883648493, the order of B. */
static const uint8_t L_BYTES[32] = {
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10};

/* ---- field arithmetic ---- */

/* Bits 0..254 of s (bit 255 ignored). */
static void fe_frombytes(fe h, const uint8_t s[32])
{
    for (int i = 0; i < 10; i++) {
        unsigned b = OFF[i] / 8u;
        uint64_t v = 0;
        for (unsigned k = 0; k < 5 && b + k < 32; k++)
            v |= (uint64_t)s[b + k] << (8 * k);
        h[i] = (int32_t)((v >> (OFF[i] % 8u)) & ((1u << WIDTH(i)) - 1));
    }
}

/* Propagates carries (floor division, so limbs end up non-negative except limb 1, which
 * takes the last carry) and folds 2^255 = 19. Accepts |t[i]| < 2^62. */
static void fe_carry(fe h, int64_t t[10])
{
    for (int i = 0; i < 10; i++) {
        int w = WIDTH(i);
        int64_t c = t[i] >> w; /* arithmetic shift: floor */
        t[i] -= c * ((int64_t)1 << w);
        if (i < 9)
            t[i + 1] += c;
        else
            t[0] += 19 * c;
    }
    int64_t c = t[0] >> 26;
    t[0] -= c * ((int64_t)1 << 26);
    t[1] += c;
    for (int i = 0; i < 10; i++)
        h[i] = (int32_t)t[i];
}

static void fe_add(fe h, const fe f, const fe g)
{
    int64_t t[10];
    for (int i = 0; i < 10; i++)
        t[i] = (int64_t)f[i] + g[i];
    fe_carry(h, t);
}

static void fe_sub(fe h, const fe f, const fe g)
{
    int64_t t[10];
    for (int i = 0; i < 10; i++)
        t[i] = (int64_t)f[i] - g[i];
    fe_carry(h, t);
}

/* h = f * g. Limb weights add up exactly except for two odd limbs (one extra bit: x2),
 * and a column i + j >= 10 wraps around with 2^255 = 19. h may alias f or g. */
static void fe_mul(fe h, const fe f, const fe g)
{
    int32_t g19[10];
    int64_t t[10] = {0};
    for (int j = 0; j < 10; j++)
        g19[j] = 19 * g[j];
    for (int i = 0; i < 10; i++) {
        int32_t fi = f[i], fi2 = (i & 1) ? 2 * f[i] : f[i];
        for (int j = 0; j < 10; j++) {
            int32_t a = (j & 1) ? fi2 : fi;
            if (i + j < 10)
                t[i + j] += (int64_t)a * g[j];
            else
                t[i + j - 10] += (int64_t)a * g19[j];
        }
    }
    fe_carry(h, t);
}

static void fe_sq(fe h, const fe f) { fe_mul(h, f, f); }

/* h = f^(2^n) */
static void fe_sqn(fe h, const fe f, int n)
{
    fe_sq(h, f);
    while (--n > 0)
        fe_sq(h, h);
}

/* Canonical little-endian encoding of h mod p (bit 255 clear). */
static void fe_tobytes(uint8_t s[32], const fe h)
{
    int64_t t[10], u[10];
    for (int i = 0; i < 10; i++)
        t[i] = h[i];
    /* bring every limb into [0, 2^width): the value is then in [0, 2^255) */
    for (;;) {
        for (int i = 0; i < 9; i++) {
            int64_t c = t[i] >> WIDTH(i);
            t[i] -= c * ((int64_t)1 << WIDTH(i));
            t[i + 1] += c;
        }
        int64_t c = t[9] >> 25;
        t[9] -= c * ((int64_t)1 << 25);
        if (c == 0)
            break;
        t[0] += 19 * c;
    }
    /* value >= p exactly when value + 19 >= 2^255: then keep value + 19 - 2^255 */
    memcpy(u, t, sizeof u);
    u[0] += 19;
    for (int i = 0; i < 9; i++) {
        int64_t c = u[i] >> WIDTH(i);
        u[i] -= c * ((int64_t)1 << WIDTH(i));
        u[i + 1] += c;
    }
    if (u[9] >> 25) {
        u[9] -= (int64_t)1 << 25;
        memcpy(t, u, sizeof t);
    }
    memset(s, 0, 32);
    for (int i = 0; i < 10; i++) {
        uint64_t v = (uint64_t)t[i] << (OFF[i] % 8u);
        for (unsigned b = OFF[i] / 8u; v && b < 32; b++, v >>= 8)
            s[b] |= (uint8_t)v;
    }
}

static int fe_eq(const fe f, const fe g)
{
    uint8_t a[32], b[32];
    fe_tobytes(a, f);
    fe_tobytes(b, g);
    return memcmp(a, b, 32) == 0;
}

static int fe_iszero(const fe f)
{
    static const uint8_t zero[32];
    uint8_t a[32];
    fe_tobytes(a, f);
    return memcmp(a, zero, 32) == 0;
}

static int fe_isneg(const fe f)
{
    uint8_t a[32];
    fe_tobytes(a, f);
    return a[0] & 1;
}

/* h = z^((p-5)/8) = z^(2^252 - 3). With e(n) = z^(2^n - 1): e(a+b) = e(a)^(2^b) * e(b). */
static void fe_pow2523(fe h, const fe z)
{
    fe e2, e4, e8, e16, e32, e64, t;
    fe_sq(t, z);
    fe_mul(e2, t, z);
    fe_sqn(t, e2, 2);
    fe_mul(e4, t, e2);
    fe_sqn(t, e4, 4);
    fe_mul(e8, t, e4);
    fe_sqn(t, e8, 8);
    fe_mul(e16, t, e8);
    fe_sqn(t, e16, 16);
    fe_mul(e32, t, e16);
    fe_sqn(t, e32, 32);
    fe_mul(e64, t, e32);
    fe_sqn(t, e64, 64);
    fe_mul(t, t, e64); /* e128 */
    fe_sqn(t, t, 64);
    fe_mul(t, t, e64); /* e192 */
    fe_sqn(t, t, 32);
    fe_mul(t, t, e32); /* e224 */
    fe_sqn(t, t, 16);
    fe_mul(t, t, e16); /* e240 */
    fe_sqn(t, t, 8);
    fe_mul(t, t, e8); /* e248 */
    fe_sqn(t, t, 2);
    fe_mul(t, t, e2); /* e250 */
    fe_sqn(t, t, 2);
    fe_mul(h, t, z); /* 2^252 - 4 + 1 */
}

/* h = z^(p-2) = z^(2^255 - 21) = (z^(2^252 - 3))^8 * z^3 */
static void fe_invert(fe h, const fe z)
{
    fe t, z3;
    fe_pow2523(t, z);
    fe_sqn(t, t, 3);
    fe_sq(z3, z);
    fe_mul(z3, z3, z);
    fe_mul(h, t, z3);
}

/* ---- points ---- */

/* RFC 8032 5.1.3. -1 when s is not the canonical encoding of a point. */
static int ge_decode(ge *p, const uint8_t s[32])
{
    /* y must be < p: the only 255-bit values >= p are 2^255-19 .. 2^255-1 */
    if ((s[31] & 0x7f) == 0x7f && s[0] >= 0xed) {
        int i = 1;
        while (i < 31 && s[i] == 0xff)
            i++;
        if (i == 31)
            return -1;
    }
    fe one = {1}, d, u, v, v3, t, x, vx2;
    fe_frombytes(p->Y, s);
    fe_frombytes(d, D_BYTES);
    fe_sq(u, p->Y);
    fe_mul(v, u, d);
    fe_sub(u, u, one); /* u = y^2 - 1 */
    fe_add(v, v, one); /* v = d y^2 + 1 */
    fe_sq(v3, v);
    fe_mul(v3, v3, v); /* v^3 */
    fe_sq(t, v3);
    fe_mul(t, t, v);
    fe_mul(t, t, u); /* u v^7 */
    fe_pow2523(t, t);
    fe_mul(x, u, v3);
    fe_mul(x, x, t); /* candidate root: u v^3 (u v^7)^((p-5)/8) */
    fe_sq(vx2, x);
    fe_mul(vx2, vx2, v);
    if (!fe_eq(vx2, u)) {
        fe_sub(t, (const int32_t *)(fe){0}, u);
        if (!fe_eq(vx2, t))
            return -1; /* u/v is not a square: not on the curve */
        fe_frombytes(t, SQRTM1_BYTES);
        fe_mul(x, x, t);
    }
    int sign = s[31] >> 7;
    if (fe_iszero(x) && sign)
        return -1;
    if (fe_isneg(x) != sign)
        fe_sub(x, (const int32_t *)(fe){0}, x);
    memcpy(p->X, x, sizeof(fe));
    memcpy(p->Z, one, sizeof(fe));
    fe_mul(p->T, x, p->Y);
    return 0;
}

static void ge_encode(uint8_t s[32], const ge *p)
{
    fe zi, x, y;
    fe_invert(zi, p->Z);
    fe_mul(x, p->X, zi);
    fe_mul(y, p->Y, zi);
    fe_tobytes(s, y);
    s[31] |= (uint8_t)(fe_isneg(x) << 7);
}

/* r = p + q (RFC 8032 5.1.4, complete); r may alias p or q. */
static void ge_add(ge *r, const ge *p, const ge *q)
{
    fe a, b, c, d, e, f, g, h;
    fe_sub(a, p->Y, p->X);
    fe_sub(e, q->Y, q->X);
    fe_mul(a, a, e);
    fe_add(b, p->Y, p->X);
    fe_add(e, q->Y, q->X);
    fe_mul(b, b, e);
    fe_frombytes(d, D2_BYTES);
    fe_mul(c, p->T, q->T);
    fe_mul(c, c, d);
    fe_mul(d, p->Z, q->Z);
    fe_add(d, d, d);
    fe_sub(e, b, a);
    fe_sub(f, d, c);
    fe_add(g, d, c);
    fe_add(h, b, a);
    fe_mul(r->X, e, f);
    fe_mul(r->Y, g, h);
    fe_mul(r->T, e, h);
    fe_mul(r->Z, f, g);
}

/* r = 2p; r may alias p. */
static void ge_dbl(ge *r, const ge *p)
{
    fe a, b, c, e, f, g, h;
    fe_sq(a, p->X);
    fe_sq(b, p->Y);
    fe_sq(c, p->Z);
    fe_add(c, c, c);
    fe_add(h, a, b);
    fe_add(e, p->X, p->Y);
    fe_sq(e, e);
    fe_sub(e, h, e);
    fe_sub(g, a, b);
    fe_add(f, c, g);
    fe_mul(r->X, e, f);
    fe_mul(r->Y, g, h);
    fe_mul(r->T, e, h);
    fe_mul(r->Z, f, g);
}

/* [8]p has x = 0 (it is (0, +-1)) exactly when p lies in the torsion subgroup. */
static int ge_small_order(const ge *p)
{
    ge q;
    ge_dbl(&q, p);
    ge_dbl(&q, &q);
    ge_dbl(&q, &q);
    return fe_iszero(q.X);
}

/* ---- scalars mod L ---- */

/* 1 when the 32-byte little-endian s is < L. */
static int sc_canonical(const uint8_t s[32])
{
    for (int i = 31; i >= 0; i--)
        if (s[i] != L_BYTES[i])
            return s[i] < L_BYTES[i];
    return 0;
}

/* out = in (64 bytes, little-endian) mod L: shift in one bit at a time from the top,
 * keeping r < L (r < 2^253, so 8 words hold 2r + 1). */
static void sc_reduce(uint8_t out[32], const uint8_t in[64])
{
    uint32_t r[8] = {0}, l[8];
    for (int i = 0; i < 8; i++)
        l[i] = (uint32_t)L_BYTES[4 * i] | (uint32_t)L_BYTES[4 * i + 1] << 8 | (uint32_t)L_BYTES[4 * i + 2] << 16 |
               (uint32_t)L_BYTES[4 * i + 3] << 24;
    for (int bit = 511; bit >= 0; bit--) {
        for (int i = 7; i > 0; i--)
            r[i] = r[i] << 1 | r[i - 1] >> 31;
        r[0] = r[0] << 1 | ((in[bit / 8] >> (bit % 8)) & 1u);
        int i = 7;
        while (i > 0 && r[i] == l[i])
            i--;
        if (r[i] >= l[i]) { /* r >= L */
            uint64_t borrow = 0;
            for (int j = 0; j < 8; j++) {
                uint64_t v = (uint64_t)r[j] - l[j] - borrow;
                r[j] = (uint32_t)v;
                borrow = (v >> 63) & 1;
            }
        }
    }
    for (int i = 0; i < 32; i++)
        out[i] = (uint8_t)(r[i / 4] >> (8 * (i % 4)));
}

/* ---- verification ---- */

static void ge_base(ge *b)
{
    fe_frombytes(b->X, BX_BYTES);
    fe_frombytes(b->Y, BY_BYTES);
    memset(b->Z, 0, sizeof b->Z);
    b->Z[0] = 1;
    fe_mul(b->T, b->X, b->Y);
}

int wb_ed25519_key_ok(const uint8_t pub[WB_ED25519_KEY_SIZE])
{
    ge a;
    return ge_decode(&a, pub) == 0 && !ge_small_order(&a);
}

int wb_ed25519_verify(const uint8_t sig[WB_ED25519_SIG_SIZE], const uint8_t *msg, size_t len,
                      const uint8_t pub[WB_ED25519_KEY_SIZE])
{
    const uint8_t *s = sig + 32;
    uint8_t k[32], rc[32];
    ge na, b, bna, p;
    if (!sc_canonical(s))
        return -1;
    if (ge_decode(&na, pub) != 0 || ge_small_order(&na))
        return -1;
    {
        wb_sha512_ctx h;
        uint8_t hk[64];
        wb_sha512_init(&h);
        wb_sha512_update(&h, sig, 32);
        wb_sha512_update(&h, pub, 32);
        wb_sha512_update(&h, msg, len);
        wb_sha512_final(&h, hk);
        sc_reduce(k, hk);
    }
    /* -A */
    fe_sub(na.X, (const int32_t *)(fe){0}, na.X);
    fe_sub(na.T, (const int32_t *)(fe){0}, na.T);
    ge_base(&b);
    ge_add(&bna, &b, &na);
    /* p = [S]B + [k](-A), Shamir's trick from the top bit (S, k < 2^253) */
    memset(&p, 0, sizeof p);
    p.Y[0] = p.Z[0] = 1;
    int top = 252;
    while (top >= 0 && !((s[top / 8] >> (top % 8)) & 1) && !((k[top / 8] >> (top % 8)) & 1))
        top--;
    for (int i = top; i >= 0; i--) {
        ge_dbl(&p, &p);
        int sb = (s[i / 8] >> (i % 8)) & 1, kb = (k[i / 8] >> (i % 8)) & 1;
        if (sb && kb)
            ge_add(&p, &p, &bna);
        else if (sb)
            ge_add(&p, &p, &b);
        else if (kb)
            ge_add(&p, &p, &na);
    }
    /* compare encodings: also refuses an R that is not a canonical point encoding */
    ge_encode(rc, &p);
    return memcmp(rc, sig, 32) == 0 ? 0 : -1;
}
