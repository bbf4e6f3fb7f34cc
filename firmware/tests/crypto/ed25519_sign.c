/*
 * Test-only Ed25519 signer built from the verifier's own field, group and scalar
 * arithmetic: the verifier's source is compiled here again with its two public names
 * renamed, so this file links beside it. Correctness is checked against RFC 8032's test
 * vectors by the tests that use it (a wrong signer fails every verification).
 */
#define wb_ed25519_verify wbt_ed25519_verify_copy
#define wb_ed25519_key_ok wbt_ed25519_key_ok_copy
#include "../../crypto/ed25519.c"
#undef wb_ed25519_verify
#undef wb_ed25519_key_ok

#include "ed25519_sign.h"

/* p = [s]B, double-and-add from the top bit (variable time: test keys only). */
static void scalarmult_base(ge *p, const uint8_t s[32])
{
    ge b;
    ge_base(&b);
    memset(p, 0, sizeof *p);
    p->Y[0] = p->Z[0] = 1;
    for (int i = 255; i >= 0; i--) {
        ge_dbl(p, p);
        if ((s[i / 8] >> (i % 8)) & 1)
            ge_add(p, p, &b);
    }
}

/* The clamped secret scalar and the nonce prefix of a seed (RFC 8032 5.1.5). */
static void expand(const uint8_t seed[32], uint8_t a[32], uint8_t prefix[32])
{
    uint8_t h[64];
    wb_sha512_ctx c;
    wb_sha512_init(&c);
    wb_sha512_update(&c, seed, 32);
    wb_sha512_final(&c, h);
    h[0] &= 248;
    h[31] &= 127;
    h[31] |= 64;
    memcpy(a, h, 32);
    memcpy(prefix, h + 32, 32);
}

void wbt_ed25519_public(const uint8_t seed[32], uint8_t pub[32])
{
    uint8_t a[32], prefix[32];
    ge p;
    expand(seed, a, prefix);
    scalarmult_base(&p, a);
    ge_encode(pub, &p);
}

/* out = (r + k * a) mod L, all 32-byte little-endian: the 512-bit sum is formed
 * byte-wise, then reduced by the verifier's own sc_reduce. */
static void sc_muladd(uint8_t out[32], const uint8_t k[32], const uint8_t a[32], const uint8_t r[32])
{
    uint32_t acc[64] = {0};
    uint8_t wide[64];
    for (int i = 0; i < 32; i++)
        for (int j = 0; j < 32; j++)
            acc[i + j] += (uint32_t)k[i] * a[j];
    for (int i = 0; i < 32; i++)
        acc[i] += r[i];
    uint32_t carry = 0;
    for (int i = 0; i < 64; i++) {
        uint32_t v = acc[i] + carry;
        wide[i] = (uint8_t)v;
        carry = v >> 8;
    }
    sc_reduce(out, wide);
}

void wbt_ed25519_sign(const uint8_t seed[32], const uint8_t *msg, size_t len, uint8_t sig[64])
{
    uint8_t a[32], prefix[32], pub[32], h[64], r[32], k[32];
    wb_sha512_ctx c;
    ge p;
    expand(seed, a, prefix);
    scalarmult_base(&p, a);
    ge_encode(pub, &p);

    wb_sha512_init(&c);
    wb_sha512_update(&c, prefix, 32);
    wb_sha512_update(&c, msg, len);
    wb_sha512_final(&c, h);
    sc_reduce(r, h);
    scalarmult_base(&p, r);
    ge_encode(sig, &p);

    wb_sha512_init(&c);
    wb_sha512_update(&c, sig, 32);
    wb_sha512_update(&c, pub, 32);
    wb_sha512_update(&c, msg, len);
    wb_sha512_final(&c, h);
    sc_reduce(k, h);
    sc_muladd(sig + 32, k, a, r);
}
