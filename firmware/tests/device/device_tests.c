/*
 * Device runtime on the host: the C device (device/) against a scripted gateway written
 * with the same codec, over in-memory byte queues and a simulated clock (a read that
 * times out advances the clock, so heartbeats and loop delays run in no real time).
 * Usage: device_tests <dir with app_blink.wasm, app_spin.wasm>
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../device/device.h"
#include "../../device/sha256.h"

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
        clock_ms += timeout ? timeout : 1;
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

static int t_write(void *ctx, const uint8_t *buf, uint32_t len)
{
    (void)ctx;
    q_put(&to_gw, buf, len);
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

static const wbd_transport io = {NULL, t_read, t_write, t_rx_stats};
static const wbd_hal hal = {NULL, h_now, h_delay, NULL, NULL, h_led, h_sensor};
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

static void send_welcome(uint32_t max_frame)
{
    wbp_msg m;
    memset(&m, 0, sizeof m);
    m.type = WBP_WELCOME;
    m.u.welcome = (wbp_welcome){7, 2, 6, 1767225600000ull, max_frame};
    gw_send(&m);
    /* the ready line, with the board's boot note when it has one (main: a long one, cut) */
    char ready[96] = "wasmbed firmware ready";
    if (dev.cfg.boot_note)
        snprintf(ready + 22, sizeof ready - 22, "; %s", dev.cfg.boot_note);
    CHECK(gw_expect(&m, WBP_LOG, 50) && m.u.log.app.n == 0 && wbp_str_eq(m.u.log.message, wbp_cstr(ready)),
          "firmware log line after welcome: %s", ready);
}

/* Signature sent with the next deploy() calls (NULL: none). */
static const uint8_t *deploy_sig;

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
    if (deploy_sig)
        m.u.deploy.signature = wbp_mem(deploy_sig, 64);
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

/* ---- Ed25519 signatures (docs/protocol.md: Deploy key 6, Error bad_signature) ---- */

/* Two tiny modules, the RFC 8032 TEST 1 key and its signatures of their sha256 digests
 * (made with Go's crypto/ed25519). */
static const uint8_t mod1[] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00};
static const uint8_t mod2[] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x00, 0x04, 0x03, 'a', 'b', 'c'};
static uint8_t test_key[32], sig1[64], sig2[64];

static void hex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        sscanf(s + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
}

/* A fresh device with this key / requirement, welcomed. */
static void restart(const uint8_t *key, int require)
{
    static wbd_config c;
    wbd_config z = {"test/dev-1", "host", "0.1.0", 256 * 1024, 1024 * 1024, 100000, &hal, &io, key, (uint8_t)require, NULL, NULL};
    c = z;
    to_dev.head = to_dev.tail = to_gw.head = to_gw.tail = 0;
    closed = 0;
    wbd_init(&dev, &c);
    welcome(1024);
}

/* Deploys module bin as app with signature sig (or none); returns the final AppStatus state,
 * and the Error code seen before it in *err (0 when none). */
static uint8_t deploy_signed(const char *app, const uint8_t *bin, uint32_t len, const uint8_t *sig, uint16_t *err)
{
    wbp_msg m;
    deploy_sig = sig;
    uint32_t off = deploy(app, bin, len, 8, NULL, NULL);
    deploy_sig = NULL;
    CHECK(off == 0, "%s: deploy offset 0", app);
    *err = 0;
    for (uint32_t o = 0; o < len; o += 8) {
        memset(&m, 0, sizeof m);
        m.type = WBP_CHUNK;
        m.u.chunk.app = wbp_cstr(app);
        m.u.chunk.offset = o;
        m.u.chunk.data = wbp_mem(bin + o, len - o < 8 ? len - o : 8);
        gw_send(&m);
    }
    for (int i = 0; i < 20 && gw_recv(&m, 50); i++) {
        if (m.type == WBP_ERROR)
            *err = m.u.error.code;
        if (m.type == WBP_APP_STATUS) {
            CHECK(wbp_str_eq(m.u.app_status.app, wbp_cstr(app)), "status of %s", app);
            return m.u.app_status.state;
        }
    }
    CHECK(0, "%s: no AppStatus after the transfer", app);
    return 0;
}

static void test_signatures(void)
{
    uint16_t err;
    uint8_t bad[64];
    wbp_msg m;
    hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", test_key, 32);
    hex("47bbd0dbbe221ba3682006edbc2223f8f67d0949ab8ea6eec09dff74bd038d87"
        "6292d4762c7dc37d8036edfcbe80df3888dca779246dd4bb602c1b56a83e8c04", sig1, 64);
    hex("6147adf83c99ae1f83e556951706c4592f6333ff1b60dc1355afc9e3e7d783fe"
        "43a07ce6b3705bbc28d9ec698d5c660b47edd3326bd1e4e3f250dce4c58ee403", sig2, 64);
    memcpy(bad, sig1, 64);
    bad[40] ^= 0x10;

    /* A key, signatures optional. */
    restart(test_key, 0);
    CHECK(deploy_signed("s1", mod1, sizeof mod1, sig1, &err) == WBP_RECEIVED && err == 0, "valid signature: received");
    CHECK(deploy_signed("s2", mod1, sizeof mod1, bad, &err) == WBP_FAILED && err == WBP_E_BAD_SIGNATURE,
          "corrupted signature: bad_signature, Failed");
    CHECK(deploy("s2", mod1, sizeof mod1, 8, NULL, NULL) == 0, "refused module discarded: offset 0 again");
    msg_app(&m, WBP_REMOVE, "s2"); /* that Deploy left a transfer; drop it */
    gw_send(&m);
    CHECK(expect_status("s2", "remove") == WBP_REMOVED, "s2 removed");
    /* the signature of another module (valid, wrong digest) */
    CHECK(deploy_signed("s1", mod2, sizeof mod2, sig1, &err) == WBP_FAILED && err == WBP_E_BAD_SIGNATURE,
          "signature of another digest: bad_signature");
    CHECK(deploy("s1", mod1, sizeof mod1, 8, NULL, NULL) == sizeof mod1, "the verified version is kept");
    CHECK(expect_status("s1", "kept") == WBP_RECEIVED, "kept version still Received");
    CHECK(deploy_signed("s1", mod2, sizeof mod2, NULL, &err) == WBP_RECEIVED && err == 0,
          "unsigned module accepted when signatures are optional");
    CHECK(deploy_signed("s1", mod1, sizeof mod1, sig1, &err) == WBP_RECEIVED && err == 0, "signed new version replaces it");

    /* A key, signatures required. */
    restart(test_key, 1);
    CHECK(deploy_signed("r1", mod2, sizeof mod2, NULL, &err) == WBP_FAILED && err == WBP_E_BAD_SIGNATURE,
          "required and missing: bad_signature");
    CHECK(deploy_signed("r1", mod2, sizeof mod2, sig2, &err) == WBP_RECEIVED && err == 0, "required and valid: received");
    /* resume: the signature of the Deploy that completes the transfer counts */
    deploy_sig = bad;
    CHECK(deploy("r2", mod2, sizeof mod2, 8, NULL, NULL) == 0, "r2 deploy");
    send_chunks("r2", mod2, sizeof mod2, 8, 0, 8);
    deploy_sig = sig2;
    CHECK(deploy("r2", mod2, sizeof mod2, 8, NULL, NULL) == 8, "r2 resumed at 8 with a valid signature");
    deploy_sig = NULL;
    send_chunks("r2", mod2, sizeof mod2, 8, 8, sizeof mod2);
    CHECK(expect_status("r2", "resumed") == WBP_RECEIVED, "resumed transfer verified with the latest signature");

    /* No key: a signature is ignored, even a wrong one; requiring signatures then refuses all. */
    restart(NULL, 0);
    CHECK(deploy_signed("n1", mod1, sizeof mod1, bad, &err) == WBP_RECEIVED && err == 0, "no key: signature ignored");
    restart(NULL, 1);
    CHECK(deploy_signed("n1", mod1, sizeof mod1, sig1, &err) == WBP_FAILED && err == WBP_E_BAD_SIGNATURE,
          "no key but required: bad_signature");
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
} boot_info;

/* Reboots the device on the simulated flash (power back, no cut) and welcomes it. */
static void reboot(const uint8_t *key, int require, boot_info *b)
{
    static wbd_config c;
    wbd_config z = {"test/dev-1", "host", "0.1.0", 256 * 1024, 1024 * 1024, 100000, &hal, &io, key, (uint8_t)require,
                    NULL, &sim_store};
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
        }
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
    reboot(NULL, 0, &b);
    CHECK(b.napps == 0 && b.nlogs == 1, "blank flash: no apps, no store lines (%d logs)", b.nlogs);
    CHECK(transfer("ticker", tick, tlen, "period") == WBP_RECEIVED, "ticker received");
    command(WBP_START, "ticker", WBP_RUNNING);
    CHECK(transfer("blinky", blink, blen, NULL) == WBP_RECEIVED, "blinky received");

    /* Power off and on: both apps back, ticker Running (and running), blinky Received. */
    reboot(NULL, 0, &b);
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
    reboot(NULL, 0, &b);
    CHECK(b.napps == 2 && b.state[0] == WBP_STOPPED, "stopped app comes back Stopped (%u)", b.state[0]);
    command(WBP_START, "ticker", WBP_RUNNING);
    command(WBP_REMOVE, "blinky", WBP_REMOVED);
    reboot(NULL, 0, &b);
    CHECK(b.napps == 1 && b.state[0] == WBP_RUNNING && strcmp(b.name[0], "ticker") == 0,
          "started again: Running; removed: gone");
    command(WBP_REMOVE, "ticker", WBP_REMOVED);
    reboot(NULL, 0, &b);
    CHECK(b.napps == 0, "all removed: no apps after reboot");
}

/* Power fails during each single erase/program operation of a save (not done at all,
 * or half done), then the device reboots: it must list the old or the new app, verified,
 * never anything else. */
static void test_store_power_cuts(const uint8_t *tick, uint32_t tlen, const uint8_t *blink, uint32_t blen)
{
    boot_info b;
    memset(flash, 0xff, sizeof flash);
    reboot(NULL, 0, &b);
    CHECK(transfer("a", tick, tlen, "period") == WBP_RECEIVED, "a v1 received");
    command(WBP_START, "a", WBP_RUNNING);
    memcpy(flash_saved, flash, sizeof flash);
    /* how many operations the save of v2 takes */
    reboot(NULL, 0, &b);
    long before = fl_ops;
    CHECK(transfer("a", blink, blen, NULL) == WBP_RECEIVED, "a v2 received");
    long n = fl_ops - before;
    CHECK(n >= 4, "a save takes several operations (%ld)", n);
    int olds = 0, news = 0;
    for (int scenario = 0; scenario < 2; scenario++) /* 0: deploy v2; 1: remove v1 */
        for (long k = 1; k <= n + 1; k++)
            for (int half = 0; half < 2; half++) {
                memcpy(flash, flash_saved, sizeof flash);
                reboot(NULL, 0, &b);
                CHECK(b.napps == 1 && b.state[0] == WBP_RUNNING, "v1 restored before the cut");
                fl_cut = fl_ops + k; /* !half: the cut comes right before operation k */
                fl_half = half;
                if (scenario == 0)
                    CHECK(transfer("a", blink, blen, NULL) == WBP_RECEIVED, "a v2 received (cut at %ld)", k);
                else
                    command(WBP_REMOVE, "a", WBP_REMOVED);
                int cut = fl_dead;
                reboot(NULL, 0, &b);
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

/* A tampered record is refused with a log line; the device comes up without it. */
static void test_store_tamper(const uint8_t *tick, uint32_t tlen)
{
    boot_info b;
    uint8_t bad[64];
    memcpy(bad, sig1, 64);
    bad[40] ^= 0x10;
    const uint32_t mod_at = (uint32_t)sizeof(wbd_rec_hdr) + WBD_ALIGN4(WBD_CONFIG_SIZE);

    for (int what = 0; what < 4; what++) {
        memset(flash, 0xff, sizeof flash);
        reboot(test_key, 0, &b);
        uint16_t err;
        /* signed module (Received, not started: an empty module has nothing to run) and a running app */
        CHECK(deploy_signed("signed", mod1, sizeof mod1, sig1, &err) == WBP_RECEIVED, "signed module received");
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
        case 3: { /* a wrong signature in an otherwise consistent record (checksum recomputed) */
            wbd_rec_hdr h;
            uint8_t full[32];
            wb_sha256_ctx c;
            r = rec_off(0);
            memcpy(&h, flash + r, sizeof h);
            h.sig[5] ^= 0x80;
            wb_sha256_init(&c);
            wb_sha256_update(&c, (const uint8_t *)&h, offsetof(wbd_rec_hdr, sum));
            wb_sha256_update(&c, flash + r + sizeof h, h.config_len);
            wb_sha256_final(&c, full);
            memcpy(h.sum, full, WBD_SUM);
            memcpy(flash + r, &h, sizeof h);
            want = "store: app signed: signature refused, not restored";
            break;
        }
        }
        reboot(test_key, 0, &b);
        if (!want) {
            CHECK(b.napps == 2 && b.state[0] == WBP_RECEIVED && b.state[1] == WBP_RUNNING, "untouched: both restored");
            continue;
        }
        CHECK(has_log(&b, want), "tamper %d: log line \"%s\"", what, want);
        CHECK(has_log(&b, "store: restored 1 app(s)"), "tamper %d: the other app is restored", what);
        CHECK(b.napps == 1 && strcmp(b.name[0], what == 3 ? "ticker" : "signed") == 0,
              "tamper %d: the device comes up without the tampered app", what);
    }

    /* Accepted unsigned-key-less, then the device gets a key: the stored signature is checked
     * again at boot, exactly as for a fresh Deploy. */
    memset(flash, 0xff, sizeof flash);
    reboot(NULL, 0, &b);
    uint16_t err;
    CHECK(deploy_signed("s", mod1, sizeof mod1, bad, &err) == WBP_RECEIVED, "no key: a bad signature is ignored");
    CHECK(deploy_signed("u", mod2, sizeof mod2, NULL, &err) == WBP_RECEIVED, "no key: unsigned accepted");
    reboot(test_key, 0, &b);
    CHECK(b.napps == 1 && strcmp(b.name[0], "u") == 0 && has_log(&b, "store: app s: signature refused, not restored"),
          "with a key the bad signature is refused at boot; the unsigned module stays");
    reboot(test_key, 1, &b);
    CHECK(b.napps == 0 && has_log(&b, "store: app u: signature refused, not restored"),
          "signatures required: the unsigned module is refused at boot");
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

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "build/wat";
    uint32_t blen, slen, tlen;
    uint8_t *blink = load(dir, "app_blink.wasm", &blen), *spin = load(dir, "app_spin.wasm", &slen);
    uint8_t *tick = load(dir, "app_tick.wasm", &tlen);
    if (!blink || !spin || !tick) {
        printf("missing app_blink.wasm / app_spin.wasm in %s\n", dir);
        return 1;
    }
    /* a boot note longer than the ready line holds: cut at 95 bytes */
    wbd_config cfg = {"test/dev-1", "host", "0.1.0", 256 * 1024, 1024 * 1024, 100000, &hal, &io, NULL, 0,
                      "clock test 1 MHz, and a note long enough to be cut where the line ends: 0123456789abcdef", NULL};
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
    test_signatures();
    test_store_round_trip(tick, tlen, blink, blen);
    test_store_power_cuts(tick, tlen, blink, blen);
    test_store_tamper(tick, tlen);
    printf("device_tests: %d checks, %d failures\n", checks, failures);
    free(blink);
    free(spin);
    free(tick);
    return failures ? 1 : 0;
}
