/*
 * Device runtime on the host: the C device (device/) against a scripted gateway written
 * with the same codec, over in-memory byte queues and a simulated clock (a read that
 * times out advances the clock, so heartbeats and loop delays run in no real time).
 * Usage: device_tests <dir with the app_*.wasm test modules>
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../device/device.h"
#include "../../crypto/ed25519.h"
#include "../../device/sha256.h"
#include "../../proto/cbor.h"
#include "../crypto/ed25519_sign.h"

#include "../check.h"

/* ---- simulated board and link ---- */

typedef struct {
    uint8_t buf[1 << 16];
    size_t head, tail;
} queue;

static queue to_dev, to_gw;
static uint64_t clock_ms;
static int leds[4], closed;

static void q_put(queue *q, const uint8_t *p, size_t n)
{
    if (q->tail + n > sizeof q->buf) {
        memmove(q->buf, q->buf + q->head, q->tail - q->head);
        q->tail -= q->head;
        q->head = 0;
    }
    memcpy(q->buf + q->tail, p, n);
    q->tail += n;
}

static int t_read(void *ctx, uint8_t *buf, uint32_t cap, uint32_t timeout)
{
    (void)ctx;
    size_t avail = to_dev.tail - to_dev.head;
    if (!avail) {
        if (closed)
            return -1;
        clock_ms += timeout; /* a look without waiting (yield) takes no time */
        return 0;
    }
    /* deliver in small pieces to exercise the reader */
    size_t n = avail < cap ? avail : cap;
    if (n > 7)
        n = 7;
    memcpy(buf, to_dev.buf + to_dev.head, n);
    to_dev.head += n;
    return (int)n;
}

static void gw_send(const wbp_msg *m);

/* 1: the link answers every heartbeat the moment the device sends it, as a gateway does
 * while the device is inside an app call (the scripted gateway only runs between polls). */
static int ack_on_write;

static int t_write(void *ctx, const uint8_t *buf, uint32_t len)
{
    (void)ctx;
    q_put(&to_gw, buf, len);
    wbp_msg m;
    uint8_t rel;
    if (ack_on_write && wbp_decode_frame(buf, len, WBP_HARD_MAX_FRAME, &m, &rel) == WBP_OK && m.type == WBP_HEARTBEAT) {
        wbp_msg ack;
        memset(&ack, 0, sizeof ack);
        ack.type = WBP_HEARTBEAT_ACK;
        ack.u.heartbeat.seq = m.u.heartbeat.seq;
        gw_send(&ack);
    }
    return 0;
}

static uint64_t h_now(void *ctx) { (void)ctx; return clock_ms; }
static void h_delay(void *ctx, uint32_t ms) { (void)ctx; clock_ms += ms; }
static int h_led(void *ctx, int32_t led, int on)
{
    (void)ctx;
    if (led < 0 || led >= 4)
        return -1;
    leds[led] = on;
    return 0;
}
static int h_sensor(void *ctx, int32_t s, int32_t *milli)
{
    (void)ctx;
    if (s != 0)
        return -1;
    *milli = 21500;
    return 0;
}

/* Receive counters the transport reports (wbd_transport.rx_stats). */
static wbd_rx_stats rx_stats = {0, 0, 64};
static void t_rx_stats(void *ctx, wbd_rx_stats *out)
{
    (void)ctx;
    *out = rx_stats;
}

/* Free room of the transmit ring the transport reports (wbd_transport.tx_room). */
static uint32_t tx_room = UINT32_MAX;
static uint32_t t_tx_room(void *ctx)
{
    (void)ctx;
    return tx_room;
}

static const wbd_transport io = {NULL, t_read, t_write, t_rx_stats, t_tx_room};
static const wbd_hal hal = {NULL, h_now, h_delay, NULL, NULL, h_led, h_sensor, NULL, NULL};
static wbd_device dev;

/* ---- scripted gateway ---- */

static uint8_t frame[WBP_HARD_MAX_FRAME + 3];
static int auto_ack = 1;
static uint8_t last[WBP_HARD_MAX_FRAME + 3]; /* the frame the last received message points into */

static void gw_send(const wbp_msg *m)
{
    size_t n;
    wbp_err e = wbp_encode_frame(m, frame, sizeof frame, WBP_HARD_MAX_FRAME, &n);
    CHECK(e == WBP_OK, "gateway encode %s: %s", wbp_type_name(m->type), wbp_err_name(e));
    q_put(&to_dev, frame, n);
}

static void gw_raw(const void *p, size_t n) { q_put(&to_dev, p, n); }

/* Next frame from the device, polling it up to `polls` times; 0 if none. */
static int gw_recv(wbp_msg *m, int polls)
{
    for (int i = 0; i <= polls + 1000; i++) {
        size_t avail = to_gw.tail - to_gw.head;
        if (avail >= 3) {
            size_t n = 3 + ((size_t)to_gw.buf[to_gw.head + 1] << 8 | to_gw.buf[to_gw.head + 2]);
            if (avail >= n) {
                memcpy(last, to_gw.buf + to_gw.head, n);
                to_gw.head += n;
                uint8_t rel;
                wbp_err e = wbp_decode_frame(last, n, WBP_HARD_MAX_FRAME, m, &rel);
                CHECK(e == WBP_OK, "device sent an invalid frame: %s", wbp_err_name(e));
                if (getenv("DEBUG"))
                    printf("  <- %s %u\n", wbp_type_name(m->type), m->type == WBP_ERROR ? m->u.error.code : m->type == WBP_APP_STATUS ? m->u.app_status.state : 0);
                if (e == WBP_OK && m->type == WBP_HEARTBEAT && auto_ack) { /* a gateway answers every heartbeat */
                    static wbp_msg ack;
                    memset(&ack, 0, sizeof ack);
                    ack.type = WBP_HEARTBEAT_ACK;
                    ack.u.heartbeat.seq = m->u.heartbeat.seq;
                    gw_send(&ack);
                }
                return e == WBP_OK;
            }
        }
        if (i < polls + 1000) /* the device reads 7 bytes per poll */
            wbd_poll(&dev, 100);
    }
    return 0;
}

/* Receives frames until one of type t (others are skipped: logs, heartbeats, telemetry). */
static int gw_expect(wbp_msg *m, uint8_t t, int polls)
{
    for (int skipped = 0; skipped < 100 && gw_recv(m, polls); skipped++)
        if (m->type == t)
            return 1;
    return 0;
}

static void msg_app(wbp_msg *m, uint8_t type, const char *app)
{
    memset(m, 0, sizeof *m);
    m->type = type;
    m->u.cmd.app = wbp_cstr(app);
}

static uint8_t *load(const char *dir, const char *name, uint32_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n);
    if (fread(b, 1, (size_t)n, f) != (size_t)n)
        n = 0;
    fclose(f);
    *len = (uint32_t)n;
    return b;
}

static void send_welcome(uint32_t max_frame);

static void welcome(uint32_t max_frame)
{
    wbp_msg m;
    CHECK(gw_expect(&m, WBP_HELLO, 50), "hello first");
    if (m.type == WBP_HELLO) {
        CHECK(m.u.hello.caps.abi == 2 && m.u.hello.caps.max_frame == WBD_MAX_FRAME &&
                  m.u.hello.caps.max_module == WBD_SLOT_SIZE,
              "hello caps");
        CHECK(wbp_str_eq(m.u.hello.device_id, wbp_cstr("test/dev-1")), "device id");
    }
    send_welcome(max_frame);
}

/* The heartbeat interval and timeout send_welcome announces, in seconds. */
static uint32_t hb_interval = 2, hb_timeout = 6;

static void send_welcome(uint32_t max_frame)
{
    wbp_msg m;
    memset(&m, 0, sizeof m);
    m.type = WBP_WELCOME;
    m.u.welcome = (wbp_welcome){7, hb_interval, hb_timeout, 1767225600000ull, max_frame};
    gw_send(&m);
    /* the ready line, with the board's boot note when it has one (main: a long one, cut) */
    char ready[96] = "wasmbed firmware ready";
    if (dev.cfg.boot_note)
        snprintf(ready + 22, sizeof ready - 22, "; %s", dev.cfg.boot_note);
    CHECK(gw_expect(&m, WBP_LOG, 50) && m.u.log.app.n == 0 && wbp_str_eq(m.u.log.message, wbp_cstr(ready)),
          "firmware log line after welcome: %s", ready);
}

/* Deployment manifests (docs/protocol.md, "Deployment manifest"). With sign_seed set (the
 * device holds its public key), deploy() signs a manifest for each Deploy at a version one
 * above the last, unless deploy_man/deploy_sig name one explicitly. */
static const uint8_t *sign_seed;
static uint64_t sign_version = 100;
static const uint8_t *deploy_man, *deploy_sig;
static uint32_t deploy_man_len;
static uint8_t auto_man[WBP_MAX_MANIFEST], auto_sig[64];

/* The encoded config map deploy() sends: empty, or {config: "1"}. */
static size_t config_bytes(const char *config, uint8_t *out, size_t cap)
{
    cbor_enc e;
    cbor_enc_init(&e, out, cap);
    cbor_put_map(&e, config ? 1 : 0);
    if (config) {
        cbor_put_text(&e, config, strlen(config));
        cbor_put_text(&e, "1", 1);
    }
    return e.len;
}

/* Signs a manifest for app in namespace ns (module digest, config as deploy() sends it,
 * version); returns its length, the bytes in man and the signature in sig. */
static uint32_t sign_manifest(const uint8_t *seed, const char *ns, const char *app, const uint8_t *digest,
                              const char *config, uint64_t version, uint8_t *man, uint8_t sig[64])
{
    uint8_t cfg[80], hash[32];
    wb_sha256(cfg, config_bytes(config, cfg, sizeof cfg), hash);
    wbp_manifest m = {
        .type = wbp_cstr(WBP_MANIFEST_TYPE), .ns = wbp_cstr(ns), .app = wbp_cstr(app), .uid = wbp_cstr("uid-1"),
        .generation = 1, .version = version, .digest = wbp_mem(digest, 32), .config_hash = wbp_mem(hash, 32),
    };
    size_t n = wbp_manifest_encode(&m, man, WBP_MAX_MANIFEST);
    CHECK(n > 0, "manifest for %s encodes", app);
    wbt_ed25519_sign(seed, man, n, sig);
    return (uint32_t)n;
}

/* Deploys bin as app with the given chunk size; returns the DeployAck offset. */
static uint32_t deploy(const char *app, const uint8_t *bin, uint32_t len, uint32_t chunk, const uint8_t *digest,
                       const char *config)
{
    wbp_msg m;
    uint8_t sum[32];
    uint8_t cfg[64];
    memset(&m, 0, sizeof m);
    m.type = WBP_DEPLOY;
    m.u.deploy.app = wbp_cstr(app);
    if (!digest) {
        wb_sha256(bin, len, sum);
        digest = sum;
    }
    m.u.deploy.digest = wbp_mem(digest, 32);
    m.u.deploy.size = len;
    m.u.deploy.chunk_size = chunk;
    if (deploy_man) {
        m.u.deploy.manifest = wbp_mem(deploy_man, deploy_man_len);
        m.u.deploy.signature = wbp_mem(deploy_sig, 64);
    } else if (sign_seed) {
        uint32_t n = sign_manifest(sign_seed, "test", app, digest, config, ++sign_version, auto_man, auto_sig);
        m.u.deploy.manifest = wbp_mem(auto_man, n);
        m.u.deploy.signature = wbp_mem(auto_sig, 64);
    }
    if (config) { /* one entry: config -> "1" */
        memcpy(cfg, config, strlen(config));
        m.u.deploy.nconfig = 1;
        m.u.deploy.config[0].key = wbp_mem(cfg, strlen(config));
        m.u.deploy.config[0].value = wbp_cstr("1");
    }
    gw_send(&m);
    if (!gw_expect(&m, WBP_DEPLOY_ACK, 50))
        return UINT32_MAX;
    CHECK(m.u.deploy_ack.window >= 1 && memcmp(m.u.deploy_ack.digest.p, digest, 32) == 0, "deploy ack");
    return m.u.deploy_ack.offset;
}

static void send_chunks(const char *app, const uint8_t *bin, uint32_t len, uint32_t chunk, uint32_t from, uint32_t to)
{
    for (uint32_t off = from; off < to && off < len; off += chunk) {
        wbp_msg m;
        memset(&m, 0, sizeof m);
        m.type = WBP_CHUNK;
        m.u.chunk.app = wbp_cstr(app);
        m.u.chunk.offset = off;
        m.u.chunk.data = wbp_mem(bin + off, len - off < chunk ? len - off : chunk);
        gw_send(&m);
        CHECK(gw_expect(&m, WBP_CHUNK_ACK, 500) && m.u.chunk_ack.next == (len - off < chunk ? len : off + chunk),
              "chunk ack at %u", off);
    }
}

static uint8_t expect_status(const char *app, const char *what)
{
    wbp_msg m;
    if (!gw_expect(&m, WBP_APP_STATUS, 50)) {
        CHECK(0, "%s: no app status", what);
        return 0;
    }
    CHECK(wbp_str_eq(m.u.app_status.app, wbp_cstr(app)), "%s: status of another app", what);
    return m.u.app_status.state;
}

static uint16_t expect_error(const char *what)
{
    wbp_msg m;
    if (!gw_expect(&m, WBP_ERROR, 50)) {
        CHECK(0, "%s: no error", what);
        return 0;
    }
    return m.u.error.code;
}

/* ---- deployment manifests (docs/protocol.md: Deploy keys 6 and 7, Error bad_signature) ---- */

/* Two tiny modules and the RFC 8032 TEST 1 key. */
static const uint8_t mod1[] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00};
static const uint8_t mod2[] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x00, 0x04, 0x03, 'a', 'b', 'c'};
static uint8_t test_seed[32], test_key[32];

static void hex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        sscanf(s + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
}

/* The test signer reproduces RFC 8032's TEST 1 and TEST 2 (key and signature), and the
 * device's verifier accepts what it signs: manifests below are signed by a real signer. */
static void test_signer(void)
{
    uint8_t pub[32], sig[64], want[64];
    const uint8_t msg2 = 0x72;
    hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", test_seed, 32);
    hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", test_key, 32);
    wbt_ed25519_public(test_seed, pub);
    CHECK(memcmp(pub, test_key, 32) == 0, "RFC 8032 TEST 1 public key");
    wbt_ed25519_sign(test_seed, NULL, 0, sig);
    hex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        want, 64);
    CHECK(memcmp(sig, want, 64) == 0, "RFC 8032 TEST 1 signature");
    uint8_t seed2[32], pub2[32];
    hex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb", seed2, 32);
    hex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", pub2, 32);
    wbt_ed25519_sign(seed2, &msg2, 1, sig);
    hex("92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        want, 64);
    CHECK(memcmp(sig, want, 64) == 0 && wb_ed25519_verify(sig, &msg2, 1, pub2) == 0, "RFC 8032 TEST 2 signature");
}

/* A fresh device with this deployment key (NULL: none), welcomed; deploy() signs for it. */
static void restart(const uint8_t *key)
{
    static wbd_config c;
    wbd_config z = {"test/dev-1", "host", "0.1.0", 256 * 1024, 1024 * 1024, 100000, &hal, &io, key, NULL, NULL, NULL};
    c = z;
    to_dev.head = to_dev.tail = to_gw.head = to_gw.tail = 0;
    closed = 0;
    sign_seed = key ? test_seed : NULL;
    wbd_init(&dev, &c);
    welcome(1024);
}

/* Deploys module bin as app under manifest man/sig (NULL: unsigned) and the config, and
 * sends the whole module. Returns the final AppStatus state, or 0 when the Deploy was
 * refused; *err is the Error code seen (0 when none). */
static uint8_t deploy_with(const char *app, const uint8_t *bin, uint32_t len, const char *config, const uint8_t *man,
                           uint32_t man_len, const uint8_t *sig, uint16_t *err)
{
    wbp_msg m;
    uint8_t sum[32], cfg[80];
    wb_sha256(bin, len, sum);
    memset(&m, 0, sizeof m);
    m.type = WBP_DEPLOY;
    m.u.deploy.app = wbp_cstr(app);
    m.u.deploy.digest = wbp_mem(sum, 32);
    m.u.deploy.size = len;
    m.u.deploy.chunk_size = 8;
    if (config) {
        memcpy(cfg, config, strlen(config));
        m.u.deploy.nconfig = 1;
        m.u.deploy.config[0].key = wbp_mem(cfg, strlen(config));
        m.u.deploy.config[0].value = wbp_cstr("1");
    }
    if (man) {
        m.u.deploy.manifest = wbp_mem(man, man_len);
        m.u.deploy.signature = wbp_mem(sig, 64);
    }
    gw_send(&m);
    *err = 0;
    uint32_t offset = UINT32_MAX;
    for (int i = 0; i < 20 && offset == UINT32_MAX && gw_recv(&m, 50); i++) {
        if (m.type == WBP_ERROR) {
            *err = m.u.error.code;
            CHECK(m.u.error.related == WBP_DEPLOY && wbp_str_eq(m.u.error.app, wbp_cstr(app)),
                  "%s: the refusal names the Deploy and the app", app);
            return 0;
        }
        if (m.type == WBP_DEPLOY_ACK)
            offset = m.u.deploy_ack.offset;
    }
    CHECK(offset != UINT32_MAX, "%s: neither DeployAck nor Error", app);
    if (offset == len)
        return expect_status(app, "held");
    send_chunks(app, bin, len, 8, offset, len);
    return expect_status(app, "transfer");
}

/* deploy_with a manifest signed by seed for ns/app/module/config at version. */
static uint8_t deploy_signed(const uint8_t *seed, const char *ns, const char *app, const uint8_t *bin, uint32_t len,
                             const char *config, uint64_t version, uint16_t *err)
{
    uint8_t man[WBP_MAX_MANIFEST], sig[64], sum[32];
    wb_sha256(bin, len, sum);
    uint32_t n = sign_manifest(seed, ns, app, sum, config, version, man, sig);
    return deploy_with(app, bin, len, config, man, n, sig, err);
}

/* True when app is not on the device (Remove answers not_found). */
static int absent(const char *app)
{
    wbp_msg m;
    msg_app(&m, WBP_REMOVE, app);
    gw_send(&m);
    return expect_error(app) == WBP_E_NOT_FOUND;
}

static void test_manifests(void)
{
    uint16_t err;
    uint8_t other_seed[32], man[WBP_MAX_MANIFEST], sig[64], sum[32];
    memset(other_seed, 7, sizeof other_seed);
    restart(test_key);

    /* Refused at Deploy, before any byte moves; a new app is not created. */
    struct {
        const char *name;
        const uint8_t *seed;
        const char *ns, *man_app, *man_config;
        const uint8_t *man_module;
        uint32_t man_len;
        int flip, unsigned_;
    } bad[] = {
        {"signed by another key", other_seed, "test", "a1", NULL, mod1, sizeof mod1, 0, 0},
        {"signature corrupted", NULL, "test", "a1", NULL, mod1, sizeof mod1, 1, 0},
        {"unsigned", NULL, "test", "a1", NULL, mod1, sizeof mod1, 0, 1},
        {"for another namespace", NULL, "lab", "a1", NULL, mod1, sizeof mod1, 0, 0},
        {"another app's manifest", NULL, "test", "a2", NULL, mod1, sizeof mod1, 0, 0},
        {"for another module", NULL, "test", "a1", NULL, mod2, sizeof mod2, 0, 0},
        {"for another configuration", NULL, "test", "a1", "other", mod1, sizeof mod1, 0, 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        wb_sha256(bad[i].man_module, bad[i].man_len, sum);
        uint32_t n = sign_manifest(bad[i].seed ? bad[i].seed : test_seed, bad[i].ns, bad[i].man_app, sum,
                                   bad[i].man_config, 10, man, sig);
        if (bad[i].flip)
            sig[40] ^= 0x10;
        CHECK(deploy_with("a1", mod1, sizeof mod1, NULL, bad[i].unsigned_ ? NULL : man, n, sig, &err) == 0 &&
                  err == WBP_E_BAD_SIGNATURE,
              "%s: refused with bad_signature", bad[i].name);
        CHECK(absent("a1"), "%s: no app created", bad[i].name);
    }

    /* Versions: never below what the app holds; a rollback is a newer manifest. */
    CHECK(deploy_signed(test_seed, "test", "v", mod2, sizeof mod2, NULL, 20, &err) == WBP_RECEIVED && err == 0,
          "v20 (mod2) received");
    CHECK(deploy_signed(test_seed, "test", "v", mod1, sizeof mod1, NULL, 10, &err) == 0 && err == WBP_E_BAD_SIGNATURE,
          "an old manifest (v10, mod1) replayed: refused");
    CHECK(deploy_signed(test_seed, "test", "v", mod1, sizeof mod1, NULL, 20, &err) == 0 && err == WBP_E_BAD_SIGNATURE,
          "the same version for another module: refused");
    CHECK(deploy_signed(test_seed, "test", "v", mod2, sizeof mod2, NULL, 20, &err) == WBP_RECEIVED && err == 0,
          "the held manifest again: acknowledged as held");
    CHECK(deploy_signed(test_seed, "test", "v", mod1, sizeof mod1, NULL, 21, &err) == WBP_RECEIVED && err == 0,
          "rollback to mod1 under v21: received");
    CHECK(deploy_signed(test_seed, "test", "v", mod1, sizeof mod1, "period", 21, &err) == 0 && err == WBP_E_BAD_SIGNATURE,
          "a configuration change under the same version: refused");
    CHECK(deploy_signed(test_seed, "test", "v", mod1, sizeof mod1, "period", 22, &err) == WBP_RECEIVED && err == 0,
          "a configuration change under v22: taken");

    /* A resumed transfer completes under the latest Deploy's manifest. */
    wb_sha256(mod2, sizeof mod2, sum);
    uint32_t n = sign_manifest(test_seed, "test", "r", sum, NULL, 5, man, sig);
    deploy_man = man, deploy_man_len = n, deploy_sig = sig;
    CHECK(deploy("r", mod2, sizeof mod2, 8, NULL, NULL) == 0, "r deploy v5");
    send_chunks("r", mod2, sizeof mod2, 8, 0, 8);
    uint8_t man6[WBP_MAX_MANIFEST], sig6[64];
    deploy_man_len = sign_manifest(test_seed, "test", "r", sum, NULL, 6, man6, sig6);
    deploy_man = man6, deploy_sig = sig6;
    CHECK(deploy("r", mod2, sizeof mod2, 8, NULL, NULL) == 8, "r resumed at 8 under v6");
    deploy_man = deploy_sig = NULL;
    send_chunks("r", mod2, sizeof mod2, 8, 8, sizeof mod2);
    CHECK(expect_status("r", "resumed") == WBP_RECEIVED, "resumed transfer received");
    CHECK(deploy_with("r", mod2, sizeof mod2, NULL, man, n, sig, &err) == 0 && err == WBP_E_BAD_SIGNATURE,
          "v5 after v6: refused");

    /* No key: nothing is checked (development builds). */
    restart(NULL);
    CHECK(deploy_with("n1", mod1, sizeof mod1, NULL, NULL, 0, NULL, &err) == WBP_RECEIVED && err == 0, "no key: unsigned taken");
    CHECK(deploy_signed(other_seed, "lab", "n2", mod1, sizeof mod1, NULL, 1, &err) == WBP_RECEIVED && err == 0,
          "no key: a manifest is not checked");
}

/* ---- persistence: a simulated NOR flash with power cuts (device.h, wbd_store) ---- */

#define FL_SECTOR 4096u
#define FL_AREA ((uint32_t)((WBD_AREA_NEED + FL_SECTOR - 1) / FL_SECTOR * FL_SECTOR))
static uint8_t flash[2 * FL_AREA], flash_saved[2 * FL_AREA];
static long fl_ops;          /* erase/program operations since boot of the test */
static long fl_cut = -1;     /* the operation during which power fails */
static int fl_half, fl_dead; /* the cut operation does half its work; afterwards nothing works */

/* Counts the operation; 0: do it all, 1: do half then die, -1: nothing (dead). */
static int fl_step(void)
{
    if (fl_dead)
        return -1;
    if (++fl_ops == fl_cut) {
        fl_dead = 1;
        return fl_half ? 1 : -1;
    }
    return 0;
}

static int fl_read(void *ctx, uint32_t off, void *buf, uint32_t len)
{
    (void)ctx;
    if (off > sizeof flash || len > sizeof flash - off)
        return -1;
    memcpy(buf, flash + off, len);
    return 0;
}

static int fl_erase(void *ctx, uint32_t off)
{
    (void)ctx;
    CHECK(off % FL_SECTOR == 0 && off < sizeof flash, "erase at %u: not a sector", off);
    int s = fl_step();
    if (s < 0 || off % FL_SECTOR || off >= sizeof flash)
        return -1;
    memset(flash + off, 0xff, s ? FL_SECTOR / 2 : FL_SECTOR); /* an interrupted erase leaves the rest as it was */
    return s ? -1 : 0;
}

static int fl_program(void *ctx, uint32_t off, const void *buf, uint32_t len)
{
    (void)ctx;
    const uint8_t *p = buf;
    int ok = off % 4 == 0 && len % 4 == 0 && len && off < sizeof flash && len <= sizeof flash - off;
    CHECK(ok, "program %u bytes at %u: not words inside the flash", len, off);
    for (uint32_t i = 0; ok && i < len; i++)
        if (flash[off + i] != 0xff) {
            CHECK(0, "program at %u over a programmed byte", off + i);
            break;
        }
    int s = fl_step();
    if (s < 0 || !ok)
        return -1;
    uint32_t n = s ? (len / 2) & ~3u : len;
    for (uint32_t i = 0; i < n; i++)
        flash[off + i] &= p[i]; /* NOR: programming only clears bits */
    return s ? -1 : 0;
}

static const wbd_store sim_store = {NULL, sizeof flash, FL_SECTOR, fl_read, fl_erase, fl_program};

/* What the device said at boot: its Hello apps and the firmware Log lines after Welcome. */
typedef struct {
    int napps;
    char name[WBD_MAX_APPS][64];
    uint8_t digest[WBD_MAX_APPS][32], state[WBD_MAX_APPS];
    char logs[8][160];
    int nlogs;
    char st_app[4][64], st_err[4][WBP_MAX_ERROR_MSG + 1]; /* AppStatus right after Welcome */
    uint8_t st_state[4];
    int nst;
} boot_info;

/* The crash record, in RAM that a reboot here keeps (device.h, wbd_crash). */
static wbd_crash crash;

/* Reboots the device on the simulated flash (power back, no cut) and welcomes it. */
static void reboot(const uint8_t *key, boot_info *b)
{
    static wbd_config c;
    wbd_config z = {"test/dev-1", "host", "0.1.0", 256 * 1024, 1024 * 1024, 100000, &hal, &io, key, NULL, &sim_store, &crash};
    wbp_msg m;
    c = z;
    fl_cut = -1;
    fl_dead = 0;
    memset(b, 0, sizeof *b);
    to_dev.head = to_dev.tail = to_gw.head = to_gw.tail = 0;
    closed = 0;
    for (int i = 0; i < WBD_MAX_APPS; i++) /* the arenas were poisoned by their last use (ASan builds) */
        wasm_arena_release(dev.arenas[i], sizeof dev.arenas[i]);
    memset(&dev, 0x5a, sizeof dev); /* RAM does not survive */
    rx_stats = (wbd_rx_stats){0, 0, 64};
    sign_seed = key ? test_seed : NULL;
    wbd_init(&dev, &c);
    CHECK(gw_expect(&m, WBP_HELLO, 50), "hello after reboot");
    b->napps = (int)m.u.hello.napps;
    for (int i = 0; i < b->napps && i < WBD_MAX_APPS; i++) {
        memcpy(b->name[i], m.u.hello.apps[i].name.p, m.u.hello.apps[i].name.n);
        memcpy(b->digest[i], m.u.hello.apps[i].digest.p, 32);
        b->state[i] = m.u.hello.apps[i].state;
    }
    memset(&m, 0, sizeof m);
    m.type = WBP_WELCOME;
    m.u.welcome = (wbp_welcome){7, 2, 6, 1767225600000ull, 1024};
    gw_send(&m);
    /* the firmware lines come right after Welcome, before any heartbeat (2 s) */
    for (int i = 0; i < 12 && b->nlogs < 8 && gw_recv(&m, 3); i++)
        if (m.type == WBP_LOG && m.u.log.app.n == 0 && m.u.log.message.n < 160) {
            memcpy(b->logs[b->nlogs], m.u.log.message.p, m.u.log.message.n);
            b->logs[b->nlogs++][m.u.log.message.n] = 0;
        } else if (m.type == WBP_APP_STATUS && b->nst < 4) {
            memcpy(b->st_app[b->nst], m.u.app_status.app.p, m.u.app_status.app.n);
            if (m.u.app_status.error.n) /* an absent error is a NULL view */
                memcpy(b->st_err[b->nst], m.u.app_status.error.p, m.u.app_status.error.n);
            b->st_state[b->nst++] = m.u.app_status.state;
        }
}

/* The AppStatus b saw for app right after Welcome: its index, or -1. */
static int status_of(const boot_info *b, const char *app)
{
    for (int i = 0; i < b->nst; i++)
        if (strcmp(b->st_app[i], app) == 0)
            return i;
    return -1;
}

static int has_log(const boot_info *b, const char *line)
{
    for (int i = 0; i < b->nlogs; i++)
        if (strcmp(b->logs[i], line) == 0)
            return 1;
    if (getenv("DEBUG"))
        for (int i = 0; i < b->nlogs; i++)
            printf("  log: %s\n", b->logs[i]);
    return 0;
}

/* Deploys bin as app with the whole transfer; returns the final AppStatus state. */
static uint8_t transfer(const char *app, const uint8_t *bin, uint32_t len, const char *config)
{
    CHECK(deploy(app, bin, len, 512, NULL, config) == 0, "%s: deploy offset 0", app);
    send_chunks(app, bin, len, 512, 0, len);
    return expect_status(app, "transfer");
}

static void command(uint8_t type, const char *app, uint8_t want)
{
    wbp_msg m;
    msg_app(&m, type, app);
    gw_send(&m);
    CHECK(expect_status(app, "command") == want, "%s: %s gives state %u", app, wbp_type_name(type), want);
}

static int digest_is(const uint8_t *d, const uint8_t *bin, uint32_t len)
{
    uint8_t sum[32];
    wb_sha256(bin, len, sum);
    return memcmp(d, sum, 32) == 0;
}

/* Offset of record i of the valid area in the simulated flash. */
static uint32_t rec_off(int i)
{
    return (uint32_t)dev.store_area * (uint32_t)(sizeof flash / 2) + (uint32_t)sizeof(wbd_area_hdr) +
           (uint32_t)i * (uint32_t)WBD_REC_STRIDE;
}

static void test_store_round_trip(const uint8_t *tick, uint32_t tlen, const uint8_t *blink, uint32_t blen)
{
    boot_info b;
    wbp_msg m;
    memset(flash, 0xff, sizeof flash);
    reboot(NULL, &b);
    CHECK(b.napps == 0 && b.nlogs == 1, "blank flash: no apps, no store lines (%d logs)", b.nlogs);
    CHECK(transfer("ticker", tick, tlen, "period") == WBP_RECEIVED, "ticker received");
    command(WBP_START, "ticker", WBP_RUNNING);
    CHECK(transfer("blinky", blink, blen, NULL) == WBP_RECEIVED, "blinky received");

    /* Power off and on: both apps back, ticker Running (and running), blinky Received. */
    reboot(NULL, &b);
    CHECK(b.napps == 2 && strcmp(b.name[0], "ticker") == 0 && b.state[0] == WBP_RUNNING &&
              digest_is(b.digest[0], tick, tlen) && strcmp(b.name[1], "blinky") == 0 && b.state[1] == WBP_RECEIVED &&
              digest_is(b.digest[1], blink, blen),
          "hello after reboot lists ticker Running and blinky Received (%d apps)", b.napps);
    CHECK(has_log(&b, "store: restored 2 app(s)"), "restore logged");
    CHECK(gw_expect(&m, WBP_LOG, 50) && wbp_str_eq(m.u.log.message, wbp_cstr("tick")), "restored app runs");
    /* the gateway's Deploy of what the device holds: offset == size, no transfer; the
     * configuration came back too (the same one: no restart) */
    CHECK(deploy("ticker", tick, tlen, 512, NULL, "period") == tlen, "deploy of the restored module: offset == size");
    CHECK(gw_expect(&m, WBP_APP_STATUS, 50) && m.u.app_status.state == WBP_RUNNING && m.u.app_status.loops > 0,
          "restored configuration equals the deployed one: no restart");

    /* Stop survives a reset (Stopped, not started); Start again does too; Remove erases. */
    command(WBP_STOP, "ticker", WBP_STOPPED);
    reboot(NULL, &b);
    CHECK(b.napps == 2 && b.state[0] == WBP_STOPPED, "stopped app comes back Stopped (%u)", b.state[0]);
    command(WBP_START, "ticker", WBP_RUNNING);
    command(WBP_REMOVE, "blinky", WBP_REMOVED);
    reboot(NULL, &b);
    CHECK(b.napps == 1 && b.state[0] == WBP_RUNNING && strcmp(b.name[0], "ticker") == 0,
          "started again: Running; removed: gone");
    command(WBP_REMOVE, "ticker", WBP_REMOVED);
    reboot(NULL, &b);
    CHECK(b.napps == 0, "all removed: no apps after reboot");
}

/* Power fails during each single erase/program operation of a save (not done at all,
 * or half done), then the device reboots: it must list the old or the new app, verified,
 * never anything else. */
static void test_store_power_cuts(const uint8_t *tick, uint32_t tlen, const uint8_t *blink, uint32_t blen)
{
    boot_info b;
    memset(flash, 0xff, sizeof flash);
    reboot(NULL, &b);
    CHECK(transfer("a", tick, tlen, "period") == WBP_RECEIVED, "a v1 received");
    command(WBP_START, "a", WBP_RUNNING);
    memcpy(flash_saved, flash, sizeof flash);
    /* how many operations the save of v2 takes */
    reboot(NULL, &b);
    long before = fl_ops;
    CHECK(transfer("a", blink, blen, NULL) == WBP_RECEIVED, "a v2 received");
    long n = fl_ops - before;
    CHECK(n >= 4, "a save takes several operations (%ld)", n);
    int olds = 0, news = 0;
    for (int scenario = 0; scenario < 2; scenario++) /* 0: deploy v2; 1: remove v1 */
        for (long k = 1; k <= n + 1; k++)
            for (int half = 0; half < 2; half++) {
                memcpy(flash, flash_saved, sizeof flash);
                reboot(NULL, &b);
                CHECK(b.napps == 1 && b.state[0] == WBP_RUNNING, "v1 restored before the cut");
                fl_cut = fl_ops + k; /* !half: the cut comes right before operation k */
                fl_half = half;
                if (scenario == 0)
                    CHECK(transfer("a", blink, blen, NULL) == WBP_RECEIVED, "a v2 received (cut at %ld)", k);
                else
                    command(WBP_REMOVE, "a", WBP_REMOVED);
                int cut = fl_dead;
                reboot(NULL, &b);
                int old = b.napps == 1 && strcmp(b.name[0], "a") == 0 && digest_is(b.digest[0], tick, tlen) &&
                          b.state[0] == WBP_RUNNING;
                int fresh = scenario == 0 ? b.napps == 1 && strcmp(b.name[0], "a") == 0 &&
                                                digest_is(b.digest[0], blink, blen) && b.state[0] == WBP_RECEIVED
                                          : b.napps == 0;
                CHECK(old || fresh, "scenario %d, cut at operation %ld%s: neither the old nor the new state (%d apps)",
                      scenario, k, half ? " (half done)" : "", b.napps);
                CHECK(!cut || old, "scenario %d: an interrupted save (operation %ld of %ld) keeps the old state",
                      scenario, k, n);
                CHECK(cut || fresh, "scenario %d: a save that completed gives the new state", scenario);
                olds += old;
                news += fresh;
                if (old) { /* the old app really runs again */
                    wbp_msg m;
                    CHECK(gw_expect(&m, WBP_LOG, 50) && wbp_str_eq(m.u.log.message, wbp_cstr("tick")),
                          "old app runs after the cut");
                }
            }
    CHECK(olds > 0 && news > 0, "both outcomes seen (%d old, %d new)", olds, news);
    printf("device_tests: power cut during each of the %ld operations of a save (twice each, 2 scenarios): "
           "%d old, %d new, 0 corrupt\n", n, olds, news);
}

/* As a board's fault handler leaves the record: the device's part as it last wrote it. */
static void fault_in(int32_t app, uint32_t cause, uint32_t pc, uint32_t addr)
{
    crash.app = app;
    crash.cause = cause;
    crash.cfsr = cause == WBD_CAUSE_MEMMANAGE ? 0x82u : 0;
    crash.hfsr = 0;
    crash.pc = pc;
    crash.addr = addr;
    crash.flags = (pc ? WBD_CRASH_PC : 0) | (addr ? WBD_CRASH_ADDR : 0);
    wbd_crash_seal(&crash);
}

/* A fault in an app's call, the reset, and what the gateway is told: the app Failed with
 * the fault (AppStatus after Welcome, a firmware Log line at error level), not started
 * again at boot, still Failed after the next reset, until a Start; a fault outside any
 * app is a Log line only; a record that does not check out is ignored. */
static void test_crash_report(const uint8_t *tick, uint32_t tlen)
{
    static const char why[] = "fault: MemManage pc=0x00001234 addr=0x20001000 cfsr=0x00000082";
    boot_info b;
    wbp_msg m;
    memset(flash, 0xff, sizeof flash);
    memset(&crash, 0x5a, sizeof crash); /* power on: no record */
    reboot(NULL, &b);
    CHECK(b.nlogs == 1 && crash.app == -1, "cold boot: no fault reported, the record rearmed");
    CHECK(transfer("ticker", tick, tlen, NULL) == WBP_RECEIVED, "ticker received");
    command(WBP_START, "ticker", WBP_RUNNING);
    CHECK(gw_expect(&m, WBP_LOG, 50) && crash.app == -1 && crash.name_len == 6 && memcmp(crash.name, "ticker", 6) == 0,
          "a call names its app in the record, and un-names it after");

    fault_in(0, WBD_CAUSE_MEMMANAGE, 0x1234, 0x20001000);
    reboot(NULL, &b);
    int st = status_of(&b, "ticker");
    CHECK(b.napps == 1 && b.state[0] == WBP_FAILED, "Hello lists the faulted app Failed (%u)", b.state[0]);
    CHECK(st >= 0 && b.st_state[st] == WBP_FAILED && strcmp(b.st_err[st], why) == 0,
          "AppStatus Failed with the fault (\"%s\")", st >= 0 ? b.st_err[st] : "none");
    CHECK(has_log(&b, "fault: MemManage pc=0x00001234 addr=0x20001000 cfsr=0x00000082 in app ticker"),
          "the fault as a firmware log line");
    CHECK(!gw_expect(&m, WBP_LOG, 30), "the faulted app is not started again");

    reboot(NULL, &b); /* the record was taken: no second report, but the app stays Failed */
    st = status_of(&b, "ticker");
    CHECK(b.nlogs == 2 && b.state[0] == WBP_FAILED && st >= 0 && strcmp(b.st_err[st], why) == 0,
          "after another reset: still Failed with its fault (stored), no new fault line");
    command(WBP_START, "ticker", WBP_RUNNING);
    reboot(NULL, &b);
    CHECK(b.state[0] == WBP_RUNNING, "a Start clears it: Running after the next reset");

    fault_in(-1, WBD_CAUSE_WATCHDOG, 0x4321, 0);
    reboot(NULL, &b);
    CHECK(has_log(&b, "watchdog reset pc=0x00004321 in the firmware") && b.state[0] == WBP_RUNNING,
          "a firmware fault: a log line, the apps untouched");

    fault_in(0, WBD_CAUSE_HARDFAULT, 0x99, 0);
    crash.pc ^= 1; /* a bit flipped after sealing */
    reboot(NULL, &b);
    CHECK(b.nlogs == 2 && b.state[0] == WBP_RUNNING, "a record whose sum fails is ignored");

    /* no store (or the app lost with it): the record still names the app */
    fault_in(0, WBD_CAUSE_USAGEFAULT, 0x2000, 0);
    memset(flash, 0xff, sizeof flash);
    reboot(NULL, &b);
    st = status_of(&b, "ticker");
    CHECK(b.napps == 0 && st >= 0 && b.st_state[st] == WBP_FAILED &&
              strcmp(b.st_err[st], "fault: UsageFault pc=0x00002000") == 0,
          "an app the device no longer holds: AppStatus Failed from the record (\"%s\")", st >= 0 ? b.st_err[st] : "");
}

/* A tampered record is refused with a log line; the device comes up without it. */
static void test_store_tamper(const uint8_t *tick, uint32_t tlen)
{
    boot_info b;
    const uint32_t mod_at = (uint32_t)sizeof(wbd_rec_hdr) + WBD_ALIGN4(WBD_CONFIG_SIZE);

    for (int what = 0; what < 5; what++) {
        memset(flash, 0xff, sizeof flash);
        reboot(test_key, &b);
        uint16_t err;
        /* signed module (Received, not started: an empty module has nothing to run) and a running app */
        CHECK(deploy_signed(test_seed, "test", "signed", mod1, sizeof mod1, NULL, 50, &err) == WBP_RECEIVED,
              "signed module received");
        CHECK(transfer("ticker", tick, tlen, NULL) == WBP_RECEIVED, "ticker received");
        command(WBP_START, "ticker", WBP_RUNNING);
        uint32_t r = rec_off(1); /* ticker's record */
        const char *want = NULL;
        switch (what) {
        case 0:
            want = NULL; /* untouched: both restored */
            break;
        case 1:
            flash[r + mod_at + tlen / 2] ^= 0x04;
            want = "store: app ticker: module sha256 differs from its digest, not restored";
            break;
        case 2:
            flash[r + offsetof(wbd_rec_hdr, name) + 1] ^= 0x01;
            want = "store: record 1: header checksum mismatch, not restored";
            break;
        case 3:   /* a wrong signature in an otherwise consistent record (checksum recomputed) */
        case 4: { /* a lowered version: the signature no longer covers it */
            wbd_rec_hdr h;
            uint8_t full[32];
            wb_sha256_ctx c;
            r = rec_off(0);
            memcpy(&h, flash + r, sizeof h);
            if (what == 3)
                h.man.sig[5] ^= 0x80;
            else
                h.man.version--;
            wb_sha256_init(&c);
            wb_sha256_update(&c, (const uint8_t *)&h, offsetof(wbd_rec_hdr, sum));
            wb_sha256_update(&c, flash + r + sizeof h, h.config_len);
            wb_sha256_final(&c, full);
            memcpy(h.sum, full, WBD_SUM);
            memcpy(flash + r, &h, sizeof h);
            want = "store: app signed: manifest refused, not restored";
            break;
        }
        }
        reboot(test_key, &b);
        if (!want) {
            CHECK(b.napps == 2 && b.state[0] == WBP_RECEIVED && b.state[1] == WBP_RUNNING, "untouched: both restored");
            continue;
        }
        CHECK(has_log(&b, want), "tamper %d: log line \"%s\"", what, want);
        CHECK(has_log(&b, "store: restored 1 app(s)"), "tamper %d: the other app is restored", what);
        CHECK(b.napps == 1 && strcmp(b.name[0], what >= 3 ? "ticker" : "signed") == 0,
              "tamper %d: the device comes up without the tampered app", what);
    }

    /* Taken without a key, then the device gets one: the stored manifests are checked again
     * at boot, exactly as a fresh Deploy's (an app under another key's manifest, an
     * unsigned one), while a good one stays. */
    uint8_t other_seed[32];
    memset(other_seed, 7, sizeof other_seed);
    for (int unsigned_ = 0; unsigned_ < 2; unsigned_++) {
        uint16_t err;
        memset(flash, 0xff, sizeof flash);
        reboot(NULL, &b);
        if (unsigned_)
            CHECK(deploy_with("s", mod1, sizeof mod1, NULL, NULL, 0, NULL, &err) == WBP_RECEIVED, "no key: unsigned taken");
        else
            CHECK(deploy_signed(other_seed, "test", "s", mod1, sizeof mod1, NULL, 3, &err) == WBP_RECEIVED,
                  "no key: another key's manifest is not checked");
        CHECK(deploy_signed(test_seed, "test", "g", mod2, sizeof mod2, "period", 4, &err) == WBP_RECEIVED,
              "no key: a good manifest kept");
        reboot(test_key, &b);
        CHECK(b.napps == 1 && strcmp(b.name[0], "g") == 0 && has_log(&b, "store: app s: manifest refused, not restored"),
              "with a key, the %s module is refused at boot; the good one stays", unsigned_ ? "unsigned" : "other key's");
    }
}

/* The next firmware Log line that reports receive counters ("rx: ..."), copied to line. */
static int rx_log(char *line, size_t cap, uint8_t *level)
{
    wbp_msg m;
    for (int i = 0; i < 20 && gw_expect(&m, WBP_LOG, 20); i++) {
        if (m.u.log.message.n >= 4 && memcmp(m.u.log.message.p, "rx: ", 4) == 0 && m.u.log.message.n < cap) {
            memcpy(line, m.u.log.message.p, m.u.log.message.n);
            line[m.u.log.message.n] = 0;
            *level = m.u.log.level;
            return 1;
        }
    }
    return 0;
}

/* Lost bytes are logged (warn) when their count changes, the peak (debug) from 32 bytes
 * on and then each time it doubles. */
static void test_rx_stats(void)
{
    char line[80];
    uint8_t level = 9;
    rx_stats.peak = 20; /* below 32: nothing */
    for (int i = 0; i < 5; i++)
        wbd_poll(&dev, 10);
    rx_stats.peak = 40;
    CHECK(rx_log(line, sizeof line, &level) && strcmp(line, "rx: 0 lost, peak 40 of 64 bytes") == 0 && level == 0,
          "peak reported: %s (level %u)", line, level);
    rx_stats.peak = 60; /* not doubled: nothing */
    for (int i = 0; i < 5; i++)
        wbd_poll(&dev, 10);
    rx_stats.lost = 2;
    CHECK(rx_log(line, sizeof line, &level) && strcmp(line, "rx: 2 lost, peak 60 of 64 bytes") == 0 && level == 2,
          "lost bytes reported: %s (level %u)", line, level);
}

/* Deploys and starts bin as app on the current session; 1 when it reports Running. */
static int deploy_and_start(const char *app, const uint8_t *bin, uint32_t len)
{
    wbp_msg m;
    CHECK(deploy(app, bin, len, 512, NULL, NULL) == 0, "%s: deploy", app);
    send_chunks(app, bin, len, 512, 0, len);
    CHECK(expect_status(app, "received") == WBP_RECEIVED, "%s received", app);
    msg_app(&m, WBP_START, app);
    gw_send(&m);
    return expect_status(app, "start") == WBP_RUNNING;
}

/* The next AppStatus of app, with the heartbeats sent before it: their uptimes go to hb
 * (at most nhb), their count to *n. 0 when none came. */
static int status_and_heartbeats(const char *app, wbp_msg *st, uint64_t *hb, int nhb, int *n)
{
    for (int i = 0; i < 200 && gw_recv(st, 50); i++) {
        if (st->type == WBP_HEARTBEAT && *n < nhb)
            hb[(*n)++] = st->u.heartbeat.time;
        if (st->type == WBP_APP_STATUS && wbp_str_eq(st->u.app_status.app, wbp_cstr(app)))
            return 1;
    }
    return 0;
}

/* docs/abi.md, "Limits": an app sleeping inside one loop call is stopped at its time
 * budget; meanwhile sleep_ms serves the session (heartbeats on time), a Stop or Remove of
 * the app ends the call at once, and a Deploy waits for the call to end. */
static void test_time_budget(const uint8_t *sleepy, uint32_t len, const uint8_t *tick, uint32_t tlen)
{
    wbp_msg m;
    uint64_t hb[16];
    int nhb = 0;
    hb_interval = 1; /* shorter than a call: heartbeats must go out from inside it */
    restart(NULL);
    hb_interval = 2;
    CHECK(deploy("sleepy", sleepy, len, 512, NULL, NULL) == 0, "sleepy: deploy");
    send_chunks("sleepy", sleepy, len, 512, 0, len);
    CHECK(expect_status("sleepy", "received") == WBP_RECEIVED, "sleepy received");
    uint64_t t0 = clock_ms;
    for (int run = 0; run < 3; run++) { /* three calls of 2 s: 6 s asleep, three heartbeat intervals */
        msg_app(&m, WBP_START, "sleepy");
        gw_send(&m);
        CHECK(status_and_heartbeats("sleepy", &m, hb, 16, &nhb) && m.u.app_status.state == WBP_RUNNING,
              "sleepy run %d: state %u", run, m.u.app_status.state);
        while (status_and_heartbeats("sleepy", &m, hb, 16, &nhb) && m.u.app_status.state == WBP_RUNNING)
            ; /* the periodic reports */
        CHECK(m.u.app_status.state == WBP_FAILED && wbp_str_eq(m.u.app_status.error, wbp_cstr("time budget exceeded")),
              "sleepy run %d: state %u, error '%.*s'", run, m.u.app_status.state, (int)m.u.app_status.error.n,
              m.u.app_status.error.p);
    }
    CHECK(clock_ms - t0 >= 3 * WB_CALL_TIME_MS && clock_ms - t0 < 3 * WB_CALL_TIME_MS + 500,
          "three calls over their budget took %u ms", (unsigned)(clock_ms - t0));
    CHECK(nhb >= 5, "heartbeats while the app slept: %d", nhb);
    for (int i = 1; i < nhb; i++) /* the Welcome's interval, met to the millisecond */
        CHECK(hb[i] - hb[i - 1] == 1000, "heartbeat %d came %u ms after the one before", i,
              (unsigned)(hb[i] - hb[i - 1]));

    /* Stop and Remove sent right behind Start arrive while the first call sleeps: it ends
     * at once, the app is Stopped / Removed, no failure */
    static const uint8_t cmds[] = {WBP_STOP, WBP_REMOVE};
    for (int k = 0; k < 2; k++) {
        msg_app(&m, WBP_START, "sleepy");
        gw_send(&m);
        msg_app(&m, cmds[k], "sleepy");
        gw_send(&m);
        t0 = clock_ms;
        CHECK(expect_status("sleepy", "start") == WBP_RUNNING, "sleepy restarted");
        uint8_t want = k ? WBP_REMOVED : WBP_STOPPED;
        CHECK(gw_expect(&m, WBP_APP_STATUS, 50) && m.u.app_status.state == want && m.u.app_status.error.n == 0,
              "%s while asleep: state %u", k ? "remove" : "stop", m.u.app_status.state);
        CHECK(clock_ms - t0 < 200, "the call ended %u ms after the %s", (unsigned)(clock_ms - t0), k ? "remove" : "stop");
    }

    /* a Deploy for another app during the call is answered when the call ends */
    if (!deploy_and_start("sleepy", sleepy, len))
        return;
    memset(&m, 0, sizeof m);
    m.type = WBP_DEPLOY;
    uint8_t sum[32];
    wb_sha256(tick, tlen, sum);
    m.u.deploy = (wbp_deploy){.app = wbp_cstr("ticker"), .digest = wbp_mem(sum, 32), .size = tlen, .chunk_size = 512};
    gw_send(&m);
    int failed = 0; /* skipping the periodic Running reports */
    for (int i = 0; i < 5 && !failed && gw_expect(&m, WBP_APP_STATUS, 50);)
        failed = m.u.app_status.state == WBP_FAILED;
    CHECK(failed, "sleepy fails first");
    CHECK(gw_expect(&m, WBP_DEPLOY_ACK, 50) && wbp_str_eq(m.u.deploy_ack.app, wbp_cstr("ticker")),
          "then the held deploy is answered");

    /* A frame held for a whole 2 s call, with a heartbeat timeout of 2 s: the gateway's
     * acks wait unread behind it, which is no reason to end the session. */
    hb_interval = 1, hb_timeout = 2;
    restart(NULL);
    hb_interval = 2, hb_timeout = 6;
    ack_on_write = 1;
    auto_ack = 0;
    int running = deploy_and_start("sleepy", sleepy, len);
    CHECK(running, "sleepy runs, its first call answered by acks while it sleeps");
    msg_app(&m, WBP_START, "sleepy");
    gw_send(&m);
    msg_app(&m, WBP_START, "nope"); /* held behind the call, then answered not_found */
    gw_send(&m);
    int hello = 0, answered = 0;
    for (int i = 0; i < 50 && !answered && gw_recv(&m, 50); i++) {
        hello |= m.type == WBP_HELLO;
        answered = m.type == WBP_ERROR && m.u.error.code == WBP_E_NOT_FOUND;
    }
    CHECK(answered && !hello, "held through a call as long as the heartbeat timeout: answered %d, hello again %d",
          answered, hello);
    ack_on_write = 0;
    auto_ack = 1;
}

/* docs/abi.md, "Limits": log and publish floods are cut by the token buckets, what was
 * dropped is reported, and a full transmit ring drops app frames, never the session's. */
static void test_flood(const uint8_t *flood, uint32_t len)
{
    wbp_msg m;
    restart(NULL);
    if (!deploy_and_start("flood", flood, len))
        return;
    int lines = 0, records = 0, reports = 0;
    /* the app is always due (loop returns 0): the clock moves only as the test moves it,
     * a second at a time, for 10 s */
    for (int s = 0; s < 10; s++, clock_ms += 1000) {
        for (int i = 0; i < 400 && gw_recv(&m, 5); i++) {
            if (m.type == WBP_LOG && wbp_str_eq(m.u.log.app, wbp_cstr("flood"))) {
                wbp_str t = m.u.log.message;
                if (m.u.log.level == 2) {
                    reports++;
                    CHECK((t.n > 14 && !memcmp(t.p + t.n - 13, "lines dropped", 13)) ||
                              (t.n > 16 && !memcmp(t.p + t.n - 15, "records dropped", 15)),
                          "report '%.*s'", (int)t.n, t.p);
                } else
                    lines++;
            }
            records += m.type == WBP_TELEMETRY;
        }
    }
    /* 20 + 10/s lines, 10 + 10/s records; the reports come with the lines */
    CHECK(lines == (int)WB_LOG_BURST + 9 * 10, "%d lines went out", lines);
    CHECK(records == (int)WB_PUBLISH_BURST + 9 * 10, "%d records went out", records);
    CHECK(reports == 2 * 9, "%d drop reports", reports);

    /* a full transmit ring: the app's frames are dropped, heartbeats still go out */
    tx_room = 0;
    int hbs = 0, app_frames = 0;
    for (int s = 0; s < 5; s++, clock_ms += 1000)
        for (int i = 0; i < 200 && gw_recv(&m, 5); i++) {
            hbs += m.type == WBP_HEARTBEAT;
            app_frames += (m.type == WBP_LOG && m.u.log.app.n) || m.type == WBP_TELEMETRY;
        }
    tx_room = UINT32_MAX;
    CHECK(hbs >= 2 && app_frames == 0, "ring full: %d heartbeats, %d app frames", hbs, app_frames);
    clock_ms += 1000;
    int seen = 0;
    for (int i = 0; i < 50 && !seen && gw_recv(&m, 5); i++)
        seen = m.type == WBP_LOG && m.u.log.level == 2 && wbp_str_eq(m.u.log.app, wbp_cstr("flood"));
    CHECK(seen, "the drops of the full ring reported once it drains");
    msg_app(&m, WBP_STOP, "flood");
    gw_send(&m);
    CHECK(gw_expect(&m, WBP_APP_STATUS, 400) && m.u.app_status.state == WBP_STOPPED, "flood stops");
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "build/wat";
    uint32_t blen, slen, tlen;
    uint8_t *blink = load(dir, "app_blink.wasm", &blen), *spin = load(dir, "app_spin.wasm", &slen);
    uint8_t *tick = load(dir, "app_tick.wasm", &tlen);
    uint32_t sleepy_len, flood_len;
    uint8_t *sleepy = load(dir, "app_sleepy.wasm", &sleepy_len), *flood = load(dir, "app_flood.wasm", &flood_len);
    if (!blink || !spin || !tick || !sleepy || !flood) {
        printf("missing app_blink.wasm, app_spin.wasm, app_tick.wasm, app_sleepy.wasm or app_flood.wasm in %s\n", dir);
        return 1;
    }
    /* a boot note longer than the ready line holds: cut at 95 bytes */
    wbd_config cfg = {"test/dev-1", "host", "0.1.0", 256 * 1024, 1024 * 1024, 100000, &hal, &io, NULL,
                      "clock test 1 MHz, and a note long enough to be cut where the line ends: 0123456789abcdef", NULL, NULL};
    wbd_init(&dev, &cfg);
    wbp_msg m;

    /* A bad first answer ends the session; Hello comes again after the backoff. */
    CHECK(gw_recv(&m, 2) && m.type == WBP_HELLO, "hello");
    msg_app(&m, WBP_START, "x");
    gw_send(&m);
    CHECK(expect_error("start before welcome") == WBP_E_UNEXPECTED_MESSAGE, "unexpected before welcome");
    welcome(1024);
    test_rx_stats();

    /* Commands on unknown apps, messages from the wrong side, garbage bodies: answered, session kept. */
    msg_app(&m, WBP_START, "nope");
    gw_send(&m);
    CHECK(expect_error("start unknown") == WBP_E_NOT_FOUND, "not found");
    msg_app(&m, WBP_APP_STATUS, "x");
    m.u.app_status.digest = wbp_mem(blink, 32);
    m.u.app_status.state = 2;
    gw_send(&m);
    CHECK(expect_error("wrong side") == WBP_E_UNEXPECTED_MESSAGE, "unexpected message");
    gw_raw("\x01\x00\x04\xa1\x00\x18\x63", 7); /* type 99 */
    CHECK(expect_error("type 99") == WBP_E_UNKNOWN_MESSAGE, "unknown message");
    gw_raw("\x01\x00\x04\xa2\x00\x09\x01", 7); /* truncated map: malformed */
    CHECK(expect_error("malformed") == WBP_E_MALFORMED, "malformed");

    /* Deploy with a resumed transfer: two chunks, a fresh Deploy, the rest. */
    uint32_t chunk = 256;
    CHECK(deploy("blinky", blink, blen, chunk, NULL, "period") == 0, "fresh offset 0");
    send_chunks("blinky", blink, blen, chunk, 0, chunk);
    CHECK(deploy("blinky", blink, blen, chunk, NULL, "period") == chunk, "resume offset");
    /* a chunk at the wrong offset is refused with bad_offset */
    memset(&m, 0, sizeof m);
    m.type = WBP_CHUNK;
    m.u.chunk.app = wbp_cstr("blinky");
    m.u.chunk.offset = 0;
    m.u.chunk.data = wbp_mem(blink, chunk);
    gw_send(&m);
    CHECK(expect_error("bad offset") == WBP_E_BAD_OFFSET, "bad offset");
    send_chunks("blinky", blink, blen, chunk, chunk, blen);
    CHECK(expect_status("blinky", "received") == WBP_RECEIVED, "received");
    CHECK(deploy("blinky", blink, blen, chunk, NULL, "period") == blen, "complete offset = size");
    CHECK(expect_status("blinky", "held") == WBP_RECEIVED, "status after complete deploy ack");

    /* Start: setup logs "hello", loop publishes, exits after 3 loops. */
    msg_app(&m, WBP_START, "blinky");
    gw_send(&m);
    CHECK(gw_expect(&m, WBP_LOG, 50) && wbp_str_eq(m.u.log.message, wbp_cstr("hello")) &&
              wbp_str_eq(m.u.log.app, wbp_cstr("blinky")), "app log line");
    CHECK(expect_status("blinky", "start") == WBP_RUNNING, "running");
    CHECK(gw_expect(&m, WBP_TELEMETRY, 50) && wbp_str_eq(m.u.telemetry.topic, wbp_cstr("temp")) &&
              m.u.telemetry.payload.n == 4 && m.u.telemetry.time >= 1767225600000ull, "telemetry");
    CHECK(expect_status("blinky", "exit") == WBP_EXITED, "exited after 3 loops");
    CHECK(leds[0] == 1, "led toggled by the app");

    /* A spinning app runs out of fuel: Failed with the reason. */
    CHECK(deploy("spin", spin, slen, 1024, NULL, NULL) == 0, "spin deploy");
    send_chunks("spin", spin, slen, 1024, 0, slen);
    CHECK(expect_status("spin", "spin received") == WBP_RECEIVED, "spin received");
    msg_app(&m, WBP_START, "spin");
    gw_send(&m);
    CHECK(expect_status("spin", "spin start") == WBP_RUNNING, "spin running");
    CHECK(gw_expect(&m, WBP_APP_STATUS, 50) && m.u.app_status.state == WBP_FAILED &&
              wbp_str_eq(m.u.app_status.error, wbp_cstr("fuel exhausted")) && m.u.app_status.traps == 1 &&
              m.u.app_status.fuel == 100000, "fuel exhausted");

    /* A third app does not fit (2 apps): no_space. */
    CHECK(deploy("third", spin, slen, 1024, NULL, NULL) == UINT32_MAX, "third app refused");
    /* actually the deploy helper consumed the Error while looking for DeployAck */

    /* Digest mismatch: Error, AppStatus Failed, the old module stays. */
    uint8_t wrong[32] = {1};
    CHECK(deploy("spin", blink, blen, 1024, wrong, NULL) == 0, "wrong digest deploy");
    memset(&m, 0, sizeof m);
    m.type = WBP_CHUNK;
    m.u.chunk.app = wbp_cstr("spin");
    m.u.chunk.data = wbp_mem(blink, blen);
    gw_send(&m);
    CHECK(expect_error("mismatch") == WBP_E_DIGEST_MISMATCH, "digest mismatch");
    CHECK(expect_status("spin", "mismatch") == WBP_FAILED, "failed on mismatch");

    /* Replace: a new version of "spin" (a module that logs "tick" every second) while the old one is held. */
    CHECK(deploy("spin", tick, tlen, 32, NULL, NULL) == 0, "new version offset 0");
    send_chunks("spin", tick, tlen, 32, 0, tlen);
    CHECK(expect_status("spin", "replaced") == WBP_RECEIVED, "new version received");
    msg_app(&m, WBP_START, "spin");
    gw_send(&m);

    /* Stop, Stop again (bad_state), Remove, Remove again (not_found). */
    CHECK(expect_status("spin", "start new") == WBP_RUNNING, "running new");
    CHECK(gw_expect(&m, WBP_LOG, 50) && wbp_str_eq(m.u.log.message, wbp_cstr("tick")), "new version runs");
    uint64_t t1 = clock_ms;
    CHECK(gw_expect(&m, WBP_LOG, 50) && wbp_str_eq(m.u.log.message, wbp_cstr("tick")) && clock_ms - t1 >= 900,
          "loop delay honoured");
    /* The same module with another configuration restarts the app; the same one only reports. */
    CHECK(deploy("spin", tick, tlen, 32, NULL, "period") == tlen, "config change: offset = size");
    CHECK(gw_expect(&m, WBP_APP_STATUS, 50) && m.u.app_status.state == WBP_RUNNING && m.u.app_status.loops == 0,
          "restarted with the new configuration");
    CHECK(gw_expect(&m, WBP_LOG, 50) && wbp_str_eq(m.u.log.message, wbp_cstr("tick")), "runs after the restart");
    CHECK(deploy("spin", tick, tlen, 32, NULL, "period") == tlen, "same config: offset = size");
    CHECK(gw_expect(&m, WBP_APP_STATUS, 50) && m.u.app_status.state == WBP_RUNNING && m.u.app_status.loops > 0,
          "same configuration: no restart");

    msg_app(&m, WBP_STOP, "spin");
    gw_send(&m);
    CHECK(expect_status("spin", "stop") == WBP_STOPPED, "stopped");
    gw_send(&m);
    CHECK(expect_error("stop twice") == WBP_E_BAD_STATE, "bad state");
    msg_app(&m, WBP_REMOVE, "spin");
    gw_send(&m);
    CHECK(expect_status("spin", "remove") == WBP_REMOVED, "removed");
    gw_send(&m);
    CHECK(expect_error("remove twice") == WBP_E_NOT_FOUND, "removed app is gone");

    /* Heartbeats at the Welcome interval (2 s), with increasing seq. */
    uint64_t t0 = clock_ms;
    CHECK(gw_expect(&m, WBP_HEARTBEAT, 100) && m.u.heartbeat.seq >= 1, "heartbeat");
    uint32_t seq = m.u.heartbeat.seq;
    CHECK(gw_expect(&m, WBP_HEARTBEAT, 100) && m.u.heartbeat.seq == seq + 1 && clock_ms - t0 <= 4100, "next heartbeat");

    /* Without acks the device gives up after heartbeat_timeout (6 s) and says Hello again. */
    auto_ack = 0;
    CHECK(gw_expect(&m, WBP_HELLO, 200), "hello after heartbeat timeout");
    send_welcome(2048);
    auto_ack = 1;

    /* Framing error: oversize header ends the session; the device says Hello again, listing its apps. */
    gw_raw("\x01\x40\x00", 3);
    CHECK(expect_error("oversize") == WBP_E_FRAME_TOO_LARGE, "frame too large");
    CHECK(gw_expect(&m, WBP_HELLO, 100) && m.u.hello.napps == 1 &&
              wbp_str_eq(m.u.hello.apps[0].name, wbp_cstr("blinky")) && m.u.hello.apps[0].state == WBP_EXITED,
          "hello again with the held app");
    /* Silence: no Welcome within 10 s, Hello again after a backoff. */
    CHECK(gw_expect(&m, WBP_HELLO, 400), "hello after hello timeout");

    closed = 1;
    CHECK(wbd_poll(&dev, 10) < 0 || wbd_poll(&dev, 10) < 0, "closed transport reported");
    /* WBD_END_ON_CLOSE (the network image): a stream that closes ends the session, so the
     * next stream starts with Hello even when the old one had been welcomed. */
    closed = 0;
    CHECK(gw_expect(&m, WBP_HELLO, 400), "hello on the next stream");
    send_welcome(2048);
    CHECK(gw_expect(&m, WBP_HEARTBEAT, 100), "welcomed again");
    closed = 1;
    int ended = 0;
    for (int i = 0; i < 20 && !ended; i++) /* the bytes already queued are read first */
        ended = wbd_poll(&dev, 10) < 0;
    CHECK(ended, "closed transport reported while welcomed");
    closed = 0;
    CHECK(gw_expect(&m, WBP_HELLO, 400), "hello, not a heartbeat, on the stream after a welcomed one");
    send_welcome(2048);
    test_signer();
    test_manifests();
    test_time_budget(sleepy, sleepy_len, tick, tlen);
    test_flood(flood, flood_len);
    test_store_round_trip(tick, tlen, blink, blen);
    test_store_power_cuts(tick, tlen, blink, blen);
    test_store_tamper(tick, tlen);
    test_crash_report(tick, tlen);
    printf("device_tests: %d checks, %d failures\n", checks, failures);
    free(blink);
    free(spin);
    free(tick);
    free(sleepy);
    free(flood);
    return failures ? 1 : 0;
}
