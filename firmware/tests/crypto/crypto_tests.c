/*
 * SHA-512 (FIPS 180-4 examples) and Ed25519 verification (RFC 8032 section 7.1 vectors,
 * then tampered signatures, S >= L, non-canonical and small-order encodings).
 * Prints the host verification time. Usage: crypto_tests
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../../crypto/ed25519.h"
#include "../../crypto/sha512.h"

#include "../check.h"

static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    while (s[0] && s[1] && n < cap) {
        unsigned v;
        if (sscanf(s, "%2x", &v) != 1)
            break;
        out[n++] = (uint8_t)v;
        s += 2;
    }
    return n;
}

static void test_sha512(void)
{
    static const struct {
        const char *msg, *digest;
    } v[] = {
        {"abc", "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"},
        {"", "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
             "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "204a8fc6dda82f0a0ced7beb8e08a41657c16ef468b228a8279be331a703c335"
         "96fd15c13b1b07f9aa1d3bea57789ca031ad85c7a71dd70354ec631238ca3445"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
         "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018"
         "501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t want[64], got[64];
        unhex(v[i].digest, want, 64);
        size_t n = strlen(v[i].msg);
        wb_sha512((const uint8_t *)v[i].msg, n, got);
        CHECK(memcmp(got, want, 64) == 0, "sha512 vector %zu", i);
        /* the same, fed one byte at a time */
        wb_sha512_ctx c;
        wb_sha512_init(&c);
        for (size_t k = 0; k < n; k++)
            wb_sha512_update(&c, (const uint8_t *)v[i].msg + k, 1);
        wb_sha512_final(&c, got);
        CHECK(memcmp(got, want, 64) == 0, "sha512 vector %zu bytewise", i);
    }
    /* one million 'a' in uneven pieces */
    static uint8_t a[1000];
    uint8_t want[64], got[64];
    memset(a, 'a', sizeof a);
    unhex("e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973eb"
          "de0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b",
          want, 64);
    wb_sha512_ctx c;
    wb_sha512_init(&c);
    for (size_t done = 0, k = 1; done < 1000000; k = k % 997 + 1) {
        size_t n = 1000000 - done < k ? 1000000 - done : k;
        wb_sha512_update(&c, a, n);
        done += n;
    }
    wb_sha512_final(&c, got);
    CHECK(memcmp(got, want, 64) == 0, "sha512 of a million 'a'");
}

/* RFC 8032 section 7.1: public key, message (hex), signature. SHA(abc)'s message is SHA-512("abc"). */
static const char MSG1024[] =
#include "rfc8032_msg1024.inc"
    ;

static const struct {
    const char *name, *pub, *msg, *sig;
} RFC[] = {
    {"TEST 1", "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
     "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"TEST 2", "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
     "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"TEST 3", "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
     "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
    {"TEST 1024", "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e", MSG1024,
     "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350"
     "aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03"},
    {"TEST SHA(abc)", "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf", NULL,
     "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589"
     "09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704"},
};

typedef struct {
    uint8_t pub[32], sig[64], msg[1024];
    size_t len;
} vec;

static void load_vec(size_t i, vec *v)
{
    unhex(RFC[i].pub, v->pub, 32);
    unhex(RFC[i].sig, v->sig, 64);
    if (RFC[i].msg) {
        v->len = unhex(RFC[i].msg, v->msg, sizeof v->msg);
    } else {
        wb_sha512((const uint8_t *)"abc", 3, v->msg);
        v->len = 64;
    }
}

static int verify(const vec *v) { return wb_ed25519_verify(v->sig, v->msg, v->len, v->pub); }

/* Adds L to the 32-byte little-endian scalar s (s < L, so no overflow of 256 bits). */
static void add_l(uint8_t s[32])
{
    static const uint8_t l[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
                                  0xa2, 0xde, 0xf9, 0xde, 0x14, [31] = 0x10};
    unsigned c = 0;
    for (int i = 0; i < 32; i++) {
        c += (unsigned)s[i] + l[i];
        s[i] = (uint8_t)c;
        c >>= 8;
    }
}

static void test_ed25519(void)
{
    vec v, w;
    CHECK(RFC[3].msg && strlen(MSG1024) == 2046, "TEST 1024 message is 1023 bytes");
    for (size_t i = 0; i < sizeof RFC / sizeof RFC[0]; i++) {
        load_vec(i, &v);
        CHECK(verify(&v) == 0, "%s verifies", RFC[i].name);
        CHECK(wb_ed25519_key_ok(v.pub), "%s key usable", RFC[i].name);
        /* one flipped bit anywhere in the message, R, S or the key: refused */
        for (size_t bit = 0; bit < v.len * 8; bit += v.len > 8 ? 61 : 1) {
            w = v;
            w.msg[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            CHECK(verify(&w) != 0, "%s: message bit %zu flipped", RFC[i].name, bit);
        }
        for (int bit = 0; bit < 512; bit += (i == 0 ? 1 : 37)) {
            w = v;
            w.sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            CHECK(verify(&w) != 0, "%s: signature bit %d flipped (%s)", RFC[i].name, bit, bit < 256 ? "R" : "S");
        }
        for (int bit = 0; bit < 256; bit += (i == 0 ? 1 : 23)) {
            w = v;
            w.pub[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            CHECK(verify(&w) != 0, "%s: key bit %d flipped", RFC[i].name, bit);
        }
        /* S + L is the same scalar mod L: malleability, refused (S must be < L) */
        w = v;
        add_l(w.sig + 32);
        CHECK(verify(&w) != 0, "%s: S + L refused", RFC[i].name);
        /* a longer message (the digest plus a byte) and a shorter one */
        w = v;
        w.len = v.len + 1;
        CHECK(verify(&w) != 0, "%s: extra message byte", RFC[i].name);
        if (v.len) {
            w.len = v.len - 1;
            CHECK(verify(&w) != 0, "%s: message cut", RFC[i].name);
        }
    }

    /* S = L, S = 2^256 - 1 */
    load_vec(0, &v);
    w = v;
    memset(w.sig + 32, 0, 32);
    add_l(w.sig + 32);
    CHECK(verify(&w) != 0, "S = L refused");
    memset(w.sig + 32, 0xff, 32);
    CHECK(verify(&w) != 0, "S = 2^256-1 refused");

    /* Key encodings: not canonical (y >= p), x = 0 with the sign bit, no square root,
     * small order (all-zero key: y = 0, order 4; identity; (0, -1)). */
    static const struct {
        const char *name, *pub;
        int ok;
    } keys[] = {
        {"y = 3 (on the curve)", "0300000000000000000000000000000000000000000000000000000000000000", 1},
        {"y = 3 + p (non-canonical)", "f0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", 0},
        {"y = p (non-canonical 0)", "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", 0},
        {"y = p + 1 (non-canonical identity)", "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", 0},
        {"y = 2^255 - 1", "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", 0},
        {"y = 2^255 - 1, sign set", "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", 0},
        {"y = 2 (not on the curve)", "0200000000000000000000000000000000000000000000000000000000000000", 0},
        {"x = 0 with the sign bit (y = 1)", "0100000000000000000000000000000000000000000000000000000000000080", 0},
        {"all-zero key (order 4)", "0000000000000000000000000000000000000000000000000000000000000000", 0},
        {"identity (y = 1)", "0100000000000000000000000000000000000000000000000000000000000000", 0},
        {"(0, -1) (order 2)", "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", 0},
        {"order 8 point", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", 0},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        uint8_t pub[32];
        unhex(keys[i].pub, pub, 32);
        CHECK(wb_ed25519_key_ok(pub) == keys[i].ok, "key %s: key_ok %d", keys[i].name, keys[i].ok);
        memcpy(v.pub, pub, 32);
        CHECK(verify(&v) != 0, "key %s: TEST 1 signature refused", keys[i].name);
    }
    /* a small-order key admits forgeries without it being refused: R = -[k]A + [S]B needs
     * S only; with A = identity the check reduces to R == [S]B. Check that it is refused. */
    load_vec(0, &v);
    memset(v.pub, 0, 32);
    v.pub[0] = 1; /* identity */
    CHECK(verify(&v) != 0, "identity key refused");

    /* R not a canonical encoding: R = y >= p */
    load_vec(1, &v);
    memset(v.sig, 0xff, 31);
    v.sig[0] = 0xee;
    v.sig[31] = 0x7f;
    CHECK(verify(&v) != 0, "non-canonical R refused");
}

static void bench(void)
{
    vec v;
    load_vec(1, &v);
    int n = 0;
    clock_t t0 = clock(), t1;
    do {
        CHECK(verify(&v) == 0, "bench verify");
        n++;
        t1 = clock();
    } while (t1 - t0 < CLOCKS_PER_SEC / 5 && n < 1000);
    printf("ed25519 verify: %.2f ms per signature on this host (this build's flags, %d runs)\n",
           1000.0 * (double)(t1 - t0) / CLOCKS_PER_SEC / n, n);
}

int main(void)
{
    test_sha512();
    test_ed25519();
    bench();
    printf("crypto_tests: %d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
