/*
 * Protocol codec tests: the golden frames of testdata/protocol (docs/protocol.md section 9)
 * plus table-driven unit tests of the CBOR layer and the frame reader.
 * Usage: proto_tests <testdata/protocol dir>
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../crypto/ed25519.h"
#include "../../device/sha256.h"
#include "../../proto/cbor.h"
#include "../../proto/wbp.h"
#include "../json.h"

#include "../check.h"

static uint8_t *read_file(const char *dir, const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    if (fread(b, 1, (size_t)n, f) != (size_t)n)
        n = 0;
    fclose(f);
    *len = (size_t)n;
    return b;
}

static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    for (; s[0] && s[1] && n < cap; s += 2) {
        unsigned v;
        if (sscanf(s, "%2x", &v) != 1)
            break;
        out[n++] = (uint8_t)v;
    }
    return n;
}

static wbp_err err_by_name(const char *name)
{
    if (strcmp(name, "truncated") == 0)
        return WBP_E_TRUNCATED;
    for (int e = 1; e <= WBP_E_GOING_AWAY; e++)
        if (strcmp(wbp_err_name((wbp_err)e), name) == 0)
            return (wbp_err)e;
    return WBP_E_INTERNAL;
}

static uint8_t frame[WBP_HARD_MAX_FRAME + 16], out[WBP_HARD_MAX_FRAME + 16];

/* Decodes one frame through the stream reader, byte by byte, as a device does. */
static wbp_err read_stream(const uint8_t *b, size_t n, size_t limit, wbp_msg *m)
{
    static uint8_t body[WBP_HARD_MAX_FRAME];
    wbp_reader r;
    wbp_reader_init(&r, body, sizeof body, limit);
    for (size_t i = 0; i < n; i++) {
        size_t used, blen;
        wbp_err e = wbp_reader_push(&r, b + i, 1, &used, &blen);
        if (e)
            return e;
        if (blen) {
            if (i + 1 != n)
                return WBP_E_MALFORMED; /* bytes after the frame */
            uint8_t rel;
            return wbp_decode(body, blen, m, &rel);
        }
    }
    return WBP_E_TRUNCATED;
}

/* The golden deployment manifests: valid ones decode, encode back to the same bytes and
 * verify under the golden key, and "sensor_hub" is what Deploy "deploy_signed" carries,
 * for its module and configuration; invalid ones are refused as the Go side refuses them. */
static void golden_manifests(const jval *root)
{
    const jval *g = json_get(root, "manifests");
    CHECK(g != NULL, "golden.json has no manifests");
    if (!g)
        return;
    uint8_t key[32], man[WBP_MAX_MANIFEST + 8], sig[64], again[WBP_MAX_MANIFEST], hash[32];
    CHECK(unhex(json_str(g, "public_key"), key, sizeof key) == 32, "manifests: public key");
    const jval *valid = json_get(g, "valid"), *invalid = json_get(g, "invalid");
    CHECK(valid && valid->n >= 2 && invalid && invalid->n >= 6, "manifests: fewer cases than expected");
    for (size_t i = 0; valid && i < valid->n; i++) {
        const jval *c = valid->items[i];
        const char *name = json_str(c, "name");
        size_t n = unhex(json_str(c, "hex"), man, sizeof man);
        CHECK(unhex(json_str(c, "signature"), sig, sizeof sig) == 64, "manifest %s: signature", name);
        wbp_manifest m;
        wbp_err e = wbp_manifest_decode(man, n, &m);
        CHECK(e == WBP_OK, "manifest %s: decode: %s", name, wbp_err_name(e));
        if (e)
            continue;
        CHECK(wbp_manifest_encode(&m, again, sizeof again) == n && memcmp(again, man, n) == 0,
              "manifest %s: re-encoding differs", name);
        CHECK(wb_ed25519_verify(sig, man, n, key) == 0, "manifest %s: signature does not verify", name);
        uint8_t want[32];
        CHECK(unhex(json_str(c, "config_hash"), want, sizeof want) == 32 && memcmp(m.config_hash.p, want, 32) == 0,
              "manifest %s: config hash", name);
        if (strcmp(name, "empty_config") == 0) {
            const uint8_t empty = 0xa0;
            wb_sha256(&empty, 1, hash);
            CHECK(memcmp(hash, want, 32) == 0, "manifest %s: the hash of an empty config is sha256(a0)", name);
        }
        if (strcmp(name, "sensor_hub") == 0) {
            const jval *vs = json_get(root, "valid");
            for (size_t j = 0; vs && j < vs->n; j++) {
                if (strcmp(json_str(vs->items[j], "name"), "deploy_signed") != 0)
                    continue;
                static wbp_msg dm;
                uint8_t rel;
                size_t fn = unhex(json_str(vs->items[j], "hex"), frame, sizeof frame);
                CHECK(wbp_decode_frame(frame, fn, WBP_DEFAULT_MAX_FRAME, &dm, &rel) == WBP_OK, "deploy_signed decodes");
                const wbp_deploy *d = &dm.u.deploy;
                wb_sha256(d->config_raw.p, d->config_raw.n, hash);
                CHECK(d->manifest.n == n && memcmp(d->manifest.p, man, n) == 0 && memcmp(d->signature.p, sig, 64) == 0 &&
                          memcmp(hash, m.config_hash.p, 32) == 0 && memcmp(d->digest.p, m.digest.p, 32) == 0 &&
                          wbp_str_eq(d->app, m.app),
                      "deploy_signed carries manifest sensor_hub, for its app, module and configuration");
            }
        }
    }
    for (size_t i = 0; invalid && i < invalid->n; i++) {
        const jval *c = invalid->items[i];
        const char *name = json_str(c, "name"), *want = json_str(c, "error");
        size_t n = unhex(json_str(c, "hex"), man, sizeof man);
        CHECK(unhex(json_str(c, "signature"), sig, sizeof sig) == 64, "manifest %s: signature", name);
        wbp_manifest m;
        const char *got = wb_ed25519_verify(sig, man, n, key) != 0 ? "bad_signature"
                          : wbp_manifest_decode(man, n, &m) != WBP_OK ? "invalid_value" : "accepted";
        CHECK(strcmp(got, want) == 0, "invalid manifest %s: %s, want %s", name, got, want);
    }
}

static void golden(const char *dir)
{
    size_t len;
    char *text = (char *)read_file(dir, "golden.json", &len);
    CHECK(text != NULL, "cannot read %s/golden.json", dir);
    if (!text)
        return;
    jval *root = json_parse(text, len);
    CHECK(root != NULL, "golden.json does not parse");
    if (!root)
        return;
    int nvalid = 0, nlenient = 0, ninvalid = 0;
    static wbp_msg m;
    jval *valid = json_get(root, "valid");
    for (size_t i = 0; valid && i < valid->n; i++) {
        const jval *c = valid->items[i];
        const char *name = json_str(c, "name");
        size_t n = unhex(json_str(c, "hex"), frame, sizeof frame), flen = 0;
        uint8_t *fb = read_file(dir, json_str(c, "file"), &flen);
        CHECK(fb && flen == n && memcmp(fb, frame, n) == 0, "%s: .bin differs from hex", name);
        free(fb);
        uint8_t rel;
        wbp_err e = wbp_decode_frame(frame, n, WBP_DEFAULT_MAX_FRAME, &m, &rel);
        CHECK(e == WBP_OK, "%s: decode: %s", name, wbp_err_name(e));
        if (e)
            continue;
        CHECK(m.type == atoi(json_get(c, "type_id")->s), "%s: type %u", name, m.type);
        size_t olen = 0;
        e = wbp_encode_frame(&m, out, sizeof out, WBP_HARD_MAX_FRAME, &olen);
        CHECK(e == WBP_OK && olen == n && memcmp(out, frame, n) == 0, "%s: re-encoding differs (%s)", name,
              wbp_err_name(e));
        CHECK(read_stream(frame, n, WBP_DEFAULT_MAX_FRAME, &m) == WBP_OK, "%s: stream reader", name);
        nvalid++;
    }
    jval *lenient = json_get(root, "lenient");
    for (size_t i = 0; lenient && i < lenient->n; i++) {
        const jval *c = lenient->items[i];
        const char *name = json_str(c, "name");
        size_t n = unhex(json_str(c, "hex"), frame, sizeof frame), olen = 0;
        uint8_t canon[256];
        size_t cn = unhex(json_str(c, "canonical_hex"), canon, sizeof canon);
        uint8_t rel;
        wbp_err e = wbp_decode_frame(frame, n, WBP_DEFAULT_MAX_FRAME, &m, &rel);
        CHECK(e == WBP_OK, "lenient %s: decode: %s", name, wbp_err_name(e));
        if (e)
            continue;
        e = wbp_encode_frame(&m, out, sizeof out, WBP_HARD_MAX_FRAME, &olen);
        CHECK(e == WBP_OK && olen == cn && memcmp(out, canon, cn) == 0, "lenient %s: not canonical", name);
        nlenient++;
    }
    jval *invalid = json_get(root, "invalid");
    for (size_t i = 0; invalid && i < invalid->n; i++) {
        const jval *c = invalid->items[i];
        const char *name = json_str(c, "name");
        size_t n = unhex(json_str(c, "hex"), frame, sizeof frame), flen = 0;
        uint8_t *fb = read_file(dir, json_str(c, "file"), &flen);
        CHECK(fb && flen == n && memcmp(fb, frame, n) == 0, "invalid %s: .bin differs from hex", name);
        free(fb);
        wbp_err want = err_by_name(json_str(c, "error")), got;
        uint8_t rel;
        got = wbp_decode_frame(frame, n, WBP_DEFAULT_MAX_FRAME, &m, &rel);
        CHECK(got == want, "invalid %s: got %s, want %s", name, wbp_err_name(got), wbp_err_name(want));
        got = read_stream(frame, n, WBP_DEFAULT_MAX_FRAME, &m);
        CHECK(got == want, "invalid %s (stream): got %s, want %s", name, wbp_err_name(got), wbp_err_name(want));
        ninvalid++;
    }
    golden_manifests(root);
    printf("golden: %d valid round-trip byte for byte, %d lenient re-encode canonically, %d invalid refused\n",
           nvalid, nlenient, ninvalid);
    CHECK(nvalid >= 30 && nlenient >= 3 && ninvalid >= 30, "golden file has fewer cases than expected");
    json_free(root);
    free(text);
}

static void cbor_heads(void)
{
    static const struct {
        uint64_t v;
        const char *hex;
    } cases[] = {
        {0, "00"},           {23, "17"},       {24, "1818"},           {255, "18ff"},
        {256, "190100"},     {65535, "19ffff"}, {65536, "1a00010000"}, {0xffffffffu, "1affffffff"},
        {0x100000000ull, "1b0000000100000000"}, {UINT64_MAX, "1bffffffffffffffff"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[16], want[16];
        cbor_enc e;
        cbor_enc_init(&e, buf, sizeof buf);
        cbor_put_uint(&e, cases[i].v);
        size_t n = unhex(cases[i].hex, want, sizeof want);
        CHECK(e.err == CBOR_OK && e.len == n && memcmp(buf, want, n) == 0, "uint %s", cases[i].hex);
        cbor_dec d;
        uint64_t v;
        cbor_dec_init(&d, buf, e.len);
        CHECK(cbor_get_uint(&d, UINT64_MAX, &v) == CBOR_OK && v == cases[i].v, "decode %s", cases[i].hex);
        for (size_t k = 0; k < n; k++) { /* every truncation is EOF */
            cbor_dec_init(&d, buf, k);
            CHECK(cbor_get_uint(&d, UINT64_MAX, &v) == CBOR_E_EOF, "truncated %s at %zu", cases[i].hex, k);
        }
        cbor_enc_init(&e, buf, n - 1); /* one byte short */
        cbor_put_uint(&e, cases[i].v);
        CHECK(e.err == CBOR_E_FULL, "full %s", cases[i].hex);
    }
    static const struct {
        int64_t v;
        const char *hex;
    } ints[] = {{-1, "20"}, {-24, "37"}, {-25, "3818"}, {-256, "38ff"}, {-257, "390100"}, {INT64_MIN, "3b7fffffffffffffff"}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        uint8_t buf[16], want[16];
        cbor_enc e;
        cbor_enc_init(&e, buf, sizeof buf);
        cbor_put_int(&e, ints[i].v);
        size_t n = unhex(ints[i].hex, want, sizeof want);
        CHECK(e.len == n && memcmp(buf, want, n) == 0, "int %s", ints[i].hex);
        cbor_dec d;
        int64_t v;
        cbor_dec_init(&d, buf, e.len);
        CHECK(cbor_get_int(&d, &v) == CBOR_OK && v == ints[i].v, "decode int %s", ints[i].hex);
    }
}

static void cbor_strict(void)
{
    static const struct {
        const char *hex;
        cbor_err want;
    } cases[] = {
        {"f5", CBOR_OK},           {"f4", CBOR_OK},            {"f6", CBOR_OK} /* null is well-formed */,
        {"5f41aaff", CBOR_E_INDEFINITE}, {"9fff", CBOR_E_INDEFINITE}, {"bfff", CBOR_E_INDEFINITE},
        {"7f6161ff", CBOR_E_INDEFINITE}, {"c06161", CBOR_E_TAG}, {"1c", CBOR_E_SYNTAX}, {"ff", CBOR_E_SYNTAX},
        {"f801", CBOR_E_SYNTAX},   {"61ff", CBOR_E_UTF8},      {"62c0af", CBOR_E_UTF8} /* overlong */,
        {"63eda080", CBOR_E_UTF8} /* surrogate */, {"64f4908080", CBOR_E_UTF8} /* > U+10FFFF */,
        {"62c3bc", CBOR_OK},       {"818181818181818100", CBOR_OK} /* 8 levels */,
        {"81818181818181818100", CBOR_E_DEPTH} /* 9 levels */, {"990101", CBOR_E_ITEMS},
        {"5b00000000ffffffff", CBOR_E_EOF}, {"a1", CBOR_E_EOF},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[64];
        size_t n = unhex(cases[i].hex, buf, sizeof buf);
        cbor_dec d;
        cbor_dec_init(&d, buf, n);
        cbor_err e = cbor_skip(&d, 1);
        CHECK(e == cases[i].want, "skip %s: got %s want %s", cases[i].hex, cbor_err_str(e), cbor_err_str(cases[i].want));
    }
    uint8_t buf[8];
    cbor_enc e;
    cbor_enc_init(&e, buf, sizeof buf);
    cbor_put_bool(&e, 1);
    cbor_put_bool(&e, 0);
    cbor_dec d;
    int b1 = 0, b2 = 1;
    cbor_dec_init(&d, buf, e.len);
    CHECK(cbor_get_bool(&d, &b1) == CBOR_OK && cbor_get_bool(&d, &b2) == CBOR_OK && b1 == 1 && b2 == 0, "bools");
}

/* Message-level semantics that a byte round trip cannot show. */
static void semantics(const char *dir)
{
    static wbp_msg m;
    size_t n;
    uint8_t rel, *b = read_file(dir, "heartbeat.bin", &n);
    CHECK(b && wbp_decode_frame(b, n, 2048, &m, &rel) == WBP_OK && m.u.heartbeat.seq == 42 &&
              m.u.heartbeat.time == 123456, "heartbeat fields");
    free(b);
    b = read_file(dir, "deploy_unicode_config.bin", &n);
    CHECK(b && wbp_decode_frame(b, n, 2048, &m, &rel) == WBP_OK, "deploy decodes");
    wbp_str v;
    CHECK(wbp_config_find(m.u.deploy.config_raw, (const uint8_t *)"zz", 2, &v) && v.n == 1 && v.p[0] == '1',
          "config zz");
    CHECK(!wbp_config_find(m.u.deploy.config_raw, (const uint8_t *)"z", 1, &v), "config z absent");
    free(b);
    b = read_file(dir, "welcome.bin", &n);
    CHECK(b && wbp_decode_frame(b, n, 2048, &m, &rel) == WBP_OK && m.u.welcome.session_id == 0x0123456789abcdefull &&
              m.u.welcome.heartbeat_interval == 30 && m.u.welcome.heartbeat_timeout == 90 &&
              m.u.welcome.max_frame == 2048, "welcome fields");
    free(b);

    /* Encoder: optional fields are omitted, validation refuses bad values, buffers are respected. */
    memset(&m, 0, sizeof m);
    m.type = WBP_ERROR;
    m.u.error.code = WBP_E_BUSY;
    size_t len;
    CHECK(wbp_encode_frame(&m, out, sizeof out, 2048, &len) == WBP_OK && len == 8 &&
              memcmp(out, "\x01\x00\x05\xa2\x00\x0f\x01\x0f", 8) == 0, "error code only");
    m.u.error.code = 0;
    CHECK(wbp_encode_frame(&m, out, sizeof out, 2048, &len) == WBP_E_INVALID_VALUE, "error code 0 refused");
    memset(&m, 0, sizeof m);
    m.type = WBP_START;
    m.u.cmd.app = wbp_cstr("blinky");
    CHECK(wbp_encode_frame(&m, out, 10, 2048, &len) == WBP_E_FRAME_TOO_LARGE, "small buffer");
    CHECK(wbp_encode_frame(&m, out, 14, 2048, &len) == WBP_OK && len == 14, "exact buffer");
    CHECK(wbp_encode_frame(&m, out, sizeof out, 10, &len) == WBP_E_FRAME_TOO_LARGE, "over the body limit");
    m.u.cmd.app = wbp_cstr("-bad");
    CHECK(wbp_encode_frame(&m, out, sizeof out, 2048, &len) == WBP_E_INVALID_VALUE, "bad app name");
    static const char *names[] = {"a", "a-b", "0", "-", "a-", "A", "a_b", ""};
    static const int ok[] = {1, 1, 1, 0, 0, 0, 0, 0};
    for (size_t i = 0; i < 8; i++)
        CHECK(wbp_app_name_valid(wbp_cstr(names[i])) == ok[i], "app name %s", names[i]);
    wbp_str t = wbp_truncate(wbp_cstr("ab\xc3\xbc"), 3);
    CHECK(t.n == 2, "truncate on a rune boundary");
}

static void reader(void)
{
    static uint8_t body[600];
    wbp_reader r;
    size_t used, blen;
    wbp_reader_init(&r, body, sizeof body, 2048); /* limit clamps to the buffer */
    CHECK(r.limit == 600, "limit clamped to the buffer");
    /* two frames in one push: the reader stops after the first */
    const uint8_t two[] = {1, 0, 3, 0xa1, 0, 3, 1, 0, 3, 0xa1, 0, 4};
    CHECK(wbp_reader_push(&r, two, sizeof two, &used, &blen) == WBP_OK && used == 6 && blen == 3, "first frame");
    CHECK(wbp_reader_push(&r, two + 6, 6, &used, &blen) == WBP_OK && used == 6 && blen == 3 && body[2] == 4,
          "second frame");
    /* the limit is checked on the header: no body byte is consumed */
    const uint8_t big[] = {1, 0x02, 0x59, 0xa1};
    CHECK(wbp_reader_push(&r, big, sizeof big, &used, &blen) == WBP_E_FRAME_TOO_LARGE && used == 3, "too large");
    const uint8_t part[] = {1, 0, 5, 0xa1};
    CHECK(wbp_reader_push(&r, part, sizeof part, &used, &blen) == WBP_OK && blen == 0 && wbp_reader_mid_frame(&r),
          "mid frame");
    wbp_reader_reset(&r);
    CHECK(!wbp_reader_mid_frame(&r), "reset");
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "../testdata/protocol";
    golden(dir);
    cbor_heads();
    cbor_strict();
    semantics(dir);
    reader();
    printf("proto_tests: %d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
