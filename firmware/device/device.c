/* Wasmbed device runtime: see device.h and docs/protocol.md sections 5 and 6. */
#include "device.h"

#include <stddef.h>
#include <string.h>

#include "../common/utf8.h"
#include "../proto/cbor.h"
#include "sha256.h"

/* The Ed25519 verifier: every build links crypto/ed25519.c and crypto/sha512.c. */
#include "../crypto/ed25519.h"


static uint64_t now(wbd_device *d) { return d->cfg.hal->now_ms(d->cfg.hal->ctx); }

static wbp_str app_str(const wbd_app *a) { return wbp_mem(a->name, a->name_len); }

/* ---- sending ---- */

static int send(wbd_device *d, const wbp_msg *m)
{
    size_t len;
    if (wbp_encode_frame(m, d->tx, sizeof d->tx, d->limit, &len))
        return -1;
    return d->cfg.io->write(d->cfg.io->ctx, d->tx, (uint32_t)len);
}

/* An app's Log or Telemetry frame: dropped (-1) rather than waited for when the transport
 * has no room for it now, so that an app never stalls the device on a full UART. */
static int send_if_room(wbd_device *d, const wbp_msg *m)
{
    const wbd_transport *io = d->cfg.io;
    size_t len;
    if (wbp_encode_frame(m, d->tx, sizeof d->tx, d->limit, &len))
        return -1;
    if (io->tx_room && io->tx_room(io->ctx) < len)
        return -1;
    return io->write(io->ctx, d->tx, (uint32_t)len);
}

static void send_error(wbd_device *d, wbp_err code, uint8_t related, wbp_str app, const char *msg)
{
    wbp_msg *m = &d->out;
    memset(m, 0, sizeof *m);
    m->type = WBP_ERROR;
    m->u.error.code = (uint16_t)code;
    m->u.error.related = related;
    m->u.error.message = wbp_truncate(wbp_cstr(msg), WBP_MAX_ERROR_MSG);
    if (wbp_app_name_valid(app))
        m->u.error.app = app;
    send(d, m);
}

static const uint8_t zero_digest[WBP_DIGEST];

static void send_status(wbd_device *d, const wbd_app *a, uint8_t state, const uint8_t *digest)
{
    if (d->session != WBD_WELCOMED)
        return;
    wbp_msg *m = &d->out;
    memset(m, 0, sizeof *m);
    m->type = WBP_APP_STATUS;
    m->u.app_status.app = app_str(a);
    m->u.app_status.digest = wbp_mem(digest ? digest : zero_digest, WBP_DIGEST);
    m->u.app_status.state = state;
    m->u.app_status.error = wbp_cstr(a->error);
    m->u.app_status.loops = a->loops;
    m->u.app_status.traps = a->traps;
    m->u.app_status.fuel = a->fuel;
    send(d, m);
}

static void report(wbd_device *d, const wbd_app *a)
{
    send_status(d, a, a->state, a->slot >= 0 ? a->digest : a->pend_slot >= 0 ? a->pend_digest : NULL);
}

/* Copies s into dst (cap bytes), replacing bytes that do not start a valid UTF-8 sequence with '?'. */
static uint32_t utf8_clean(uint8_t *dst, uint32_t cap, const uint8_t *s, uint32_t n)
{
    uint32_t i = 0, o = 0;
    while (i < n && o < cap) {
        uint32_t k = s[i] < 0x80 ? 1 : (s[i] & 0xe0) == 0xc0 ? 2 : (s[i] & 0xf0) == 0xe0 ? 3 : 4;
        if (k <= n - i && wb_utf8_valid(s + i, k)) {
            if (k > cap - o)
                break;
            memcpy(dst + o, s + i, k);
            o += k, i += k;
        } else {
            dst[o++] = '?';
            i++;
        }
    }
    return o;
}

/* Writes v in decimal at p; returns the end. */
static char *put_u32(char *p, uint32_t v)
{
    char num[10];
    int k = 0;
    do
        num[k++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (k)
        *p++ = num[--k];
    return p;
}

static char *put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* Writes " <label>0x" and v in 8 hex digits at p; returns the end. */
static char *put_hex(char *p, const char *label, uint32_t v)
{
    p = put_str(put_str(p, label), "0x");
    for (int i = 7; i >= 0; i--)
        *p++ = "0123456789abcdef"[(v >> (4 * i)) & 15u];
    return p;
}

void wbd_log(wbd_device *d, uint8_t level, const char *msg)
{
    if (d->session != WBD_WELCOMED)
        return;
    wbp_msg *m = &d->out;
    memset(m, 0, sizeof *m);
    m->type = WBP_LOG;
    m->u.log.level = level > 3 ? 1 : level;
    m->u.log.message = wbp_truncate(wbp_cstr(msg), WBP_MAX_LOG);
    send(d, m);
}

/* The firmware's line after Welcome, with the board's boot note (device.h, boot_note),
 * cut at 95 bytes. */
static void log_ready(wbd_device *d)
{
    char line[96], *p = put_str(line, "wasmbed firmware ready");
    const char *n = d->cfg.boot_note;
    if (n && *n)
        for (p = put_str(p, "; "); *n && p < line + sizeof line - 1;)
            *p++ = *n++;
    *p = 0;
    wbd_log(d, 1, line);
}

/* ---- board callbacks for the ABI layer (ctx is the wbd_app) ---- */

static int serve(wbd_device *d, uint32_t max_wait_ms);

/* 0 sent (or no session: dropped as the protocol allows, not counted), -1 no room. */
static int b_log(void *ctx, int32_t level, const uint8_t *msg, uint32_t len)
{
    wbd_app *a = ctx;
    wbd_device *d = a->dev;
    uint8_t line[WBP_MAX_LOG];
    if (d->session != WBD_WELCOMED)
        return 0;
    uint32_t n = utf8_clean(line, sizeof line, msg, len);
    wbp_msg *m = &d->out;
    memset(m, 0, sizeof *m);
    m->type = WBP_LOG;
    m->u.log.level = level >= 0 && level <= 3 ? (uint8_t)level : 1;
    m->u.log.app = app_str(a);
    m->u.log.message = wbp_mem(line, n);
    return send_if_room(d, m);
}

static uint64_t b_clock(void *ctx)
{
    wbd_app *a = ctx;
    return now(a->dev);
}

/* sleep_ms serves the session until the sleep ends (device.h, busy); -1 when a Stop or
 * Remove of this app arrived, which ends the call. */
static int b_sleep(void *ctx, uint32_t ms)
{
    wbd_app *a = ctx;
    wbd_device *d = a->dev;
    uint64_t end = now(d) + ms;
    for (uint64_t t = now(d); t < end && !d->stop_busy; t = now(d))
        if (serve(d, (uint32_t)(end - t)) < 0) /* no transport: just wait */
            d->cfg.hal->delay_ms(d->cfg.hal->ctx, (uint32_t)(end - t));
    return d->stop_busy ? -1 : 0;
}

/* yield serves the session once, without waiting. */
static int b_yield(void *ctx)
{
    wbd_app *a = ctx;
    serve(a->dev, 0);
    return a->dev->stop_busy ? -1 : 0;
}

static int b_gpio_write(void *ctx, int32_t pin, int high)
{
    const wbd_hal *h = ((wbd_app *)ctx)->dev->cfg.hal;
    return h->gpio_write ? h->gpio_write(h->ctx, pin, high) : -1;
}

static int b_gpio_read(void *ctx, int32_t pin, int *high)
{
    const wbd_hal *h = ((wbd_app *)ctx)->dev->cfg.hal;
    return h->gpio_read ? h->gpio_read(h->ctx, pin, high) : -1;
}

static int b_led(void *ctx, int32_t led, int on)
{
    const wbd_hal *h = ((wbd_app *)ctx)->dev->cfg.hal;
    return h->led_set ? h->led_set(h->ctx, led, on) : -1;
}

static int b_sensor(void *ctx, int32_t sensor, int32_t *milli)
{
    const wbd_hal *h = ((wbd_app *)ctx)->dev->cfg.hal;
    return h->sensor_read ? h->sensor_read(h->ctx, sensor, milli) : -1;
}

static int b_publish(void *ctx, const uint8_t *topic, uint32_t tlen, const uint8_t *data, uint32_t dlen)
{
    wbd_app *a = ctx;
    wbd_device *d = a->dev;
    if (d->session != WBD_WELCOMED)
        return 0; /* no session: the record is dropped, as the protocol allows */
    wbp_msg *m = &d->out;
    memset(m, 0, sizeof *m);
    m->type = WBP_TELEMETRY;
    m->u.telemetry.app = app_str(a);
    m->u.telemetry.topic = wbp_mem(topic, tlen);
    m->u.telemetry.payload = wbp_mem(data, dlen);
    m->u.telemetry.time = d->time_offset ? d->time_offset + now(d) : 0;
    return send_if_room(d, m) ? -1 : 0;
}

static int b_config(void *ctx, const uint8_t *key, uint32_t klen, const uint8_t **val, uint32_t *vlen)
{
    wbd_app *a = ctx;
    wbp_str v;
    if (!wbp_config_find(wbp_mem(a->config, a->config_len), key, klen, &v))
        return -1;
    *val = v.p;
    *vlen = v.n;
    return 0;
}

/* ---- applications ---- */

static wbd_app *find_app(wbd_device *d, wbp_str name)
{
    for (int i = 0; i < WBD_MAX_APPS; i++)
        if (d->apps[i].used && wbp_str_eq(app_str(&d->apps[i]), name))
            return &d->apps[i];
    return NULL;
}

static int8_t take_slot(wbd_device *d)
{
    for (int i = 0; i < WBD_SLOTS; i++)
        if (!d->slot_used[i]) {
            d->slot_used[i] = 1;
            return (int8_t)i;
        }
    return -1;
}

static void free_slot(wbd_device *d, int8_t *slot)
{
    if (*slot >= 0)
        d->slot_used[*slot] = 0;
    *slot = -1;
}

static void set_error(wbd_app *a, const char *msg)
{
    wbp_str s = wbp_truncate(wbp_cstr(msg), WBP_MAX_ERROR_MSG);
    memcpy(a->error, s.p, s.n);
    a->error[s.n] = 0;
}

static void stop_app(wbd_app *a)
{
    if (a->state == WBP_RUNNING)
        a->state = WBP_STOPPED;
}

static void delete_app(wbd_device *d, wbd_app *a)
{
    d->crash_named = NULL; /* the slot may hold another app next */
    free_slot(d, &a->slot);
    free_slot(d, &a->pend_slot);
    memset(a, 0, sizeof *a);
    a->slot = a->pend_slot = -1;
}

/* ---- the crash record (device.h, wbd_crash): which app a fault interrupts ---- */

/* Before a call into app a: the record names it. The name and digest are copied only when
 * another app (or another module of it: crash_named is cleared then) was named last, so a
 * call costs two stores. */
static void crash_enter(wbd_device *d, const wbd_app *a)
{
    wbd_crash *c = d->cfg.crash;
    if (!c)
        return;
    if (d->crash_named != a) {
        c->name_len = a->name_len;
        memcpy(c->name, a->name, a->name_len);
        memcpy(c->digest, a->digest, WBP_DIGEST);
        d->crash_named = a;
    }
    c->app = (int32_t)(a - d->apps);
}

static void crash_leave(wbd_device *d)
{
    if (d->cfg.crash)
        d->cfg.crash->app = -1;
}

static void on_frame(wbd_device *d, size_t n);

/* Applies the frame held during an app call (device.h, busy). A frame held when the
 * session ended is dropped: it was meant for a session that no longer is. */
static void apply_held(wbd_device *d)
{
    uint32_t n = d->held;
    d->held = 0;
    d->stop_busy = 0;
    if (n && d->session == WBD_WELCOMED)
        on_frame(d, n);
}

/* After a call of app a: the Stop or Remove that cut it short is applied first. Returns 1
 * when a no longer runs (stopped or removed meanwhile): the call's result does not count. */
static int stopped_during_call(wbd_device *d, wbd_app *a)
{
    d->busy = NULL;
    if (d->stop_busy) {
        apply_held(d);
        if (a->used && a->state == WBP_RUNNING) { /* its Stop was dropped with its session */
            a->state = WBP_STOPPED;
            report(d, a);
        }
    }
    return !a->used || a->state != WBP_RUNNING;
}

static void start_app(wbd_device *d, wbd_app *a)
{
    int idx = (int)(a - d->apps);
    const wbd_hal *h = d->cfg.hal;
    a->board = (wb_board){a,           b_log, b_clock,  b_sleep,   b_yield,  b_gpio_write,
                          b_gpio_read, b_led, b_sensor, b_publish, b_config, h->code_guard};
    a->loops = 0;
    a->fuel = 0;
    a->error[0] = 0;
    a->state = WBP_RUNNING; /* so that log lines from start/setup carry the app */
    if (h->code_release) /* the arena's code from the last start is sealed read-only */
        h->code_release(d->arenas[idx], WBD_ARENA_SIZE);
    const wb_limits lim = {d->cfg.fuel, 0};
    d->busy = a;
    crash_enter(d, a);
    wasm_err e = wb_app_start(&a->rt, &a->board, d->slots[a->slot], a->size, d->arenas[idx], WBD_ARENA_SIZE,
                              WBD_MEM_CAP, &lim);
    crash_leave(d);
    if (stopped_during_call(d, a))
        return;
    if (e) {
        a->state = WBP_FAILED;
        a->traps++;
        set_error(a, wb_app_reason(&a->rt, e));
    } else {
        a->next_loop_ms = now(d);
#if defined(WASM_JIT)
        uint32_t own, bytes, native = wasm_instance_native_funcs(a->rt.inst, &own, &bytes);
        char line[64], *p = put_str(put_u32(put_str(line, "native code: "), native), " of ");
        p = put_str(put_u32(put_str(put_u32(p, own), " functions, "), bytes), " bytes");
        b_log(a, 0, (const uint8_t *)line, (uint32_t)(p - line));
#endif
    }
    report(d, a);
}

static void run_due(wbd_device *d, uint64_t t)
{
    for (int i = 0; i < WBD_MAX_APPS; i++) {
        wbd_app *a = &d->apps[i];
        if (!a->used || a->state != WBP_RUNNING || t < a->next_loop_ms)
            continue;
        int32_t delay = 0;
        d->busy = a;
        crash_enter(d, a);
        wasm_err e = wb_app_loop(&a->rt, &delay);
        crash_leave(d);
        a->loops++;
        a->fuel += a->rt.fuel - wasm_get_fuel(a->rt.inst);
        if (stopped_during_call(d, a))
            continue;
        if (e) {
            a->state = WBP_FAILED;
            a->traps++;
            set_error(a, wb_app_reason(&a->rt, e));
            report(d, a);
        } else if (delay < 0) {
            a->state = WBP_EXITED;
            report(d, a);
        } else {
            a->next_loop_ms = now(d) + (uint32_t)delay;
        }
        apply_held(d); /* before the next app's call, which could hold another */
    }
}

static void persist(wbd_device *d);

/* Boot: a sealed record is kept for the first session and the record rearmed. */
static void crash_take(wbd_device *d)
{
    wbd_crash *c = d->cfg.crash;
    if (!c)
        return;
    if (c->magic == WBD_CRASH_MAGIC && c->sum == wbd_crash_sum(c) && c->cause >= WBD_CAUSE_HARDFAULT &&
        c->cause <= WBD_CAUSE_WATCHDOG && c->name_len <= WBP_MAX_APP_NAME)
        d->fault = *c;
    c->magic = 0;
    c->app = -1;
}

/* The fault as an error (at most 80 bytes): "fault: MemManage pc=0x... addr=0x... cfsr=0x...",
 * "watchdog reset pc=0x...": what the handler knew. */
static void crash_text(const wbd_crash *c, char *out)
{
    static const char *const what[] = {"HardFault", "MemManage", "BusFault", "UsageFault", "NMI"};
    char *p = c->cause == WBD_CAUSE_WATCHDOG ? put_str(out, "watchdog reset")
                                             : put_str(put_str(out, "fault: "), what[c->cause - 1]);
    if (c->flags & WBD_CRASH_PC)
        p = put_hex(p, " pc=", c->pc);
    if (c->flags & WBD_CRASH_ADDR)
        p = put_hex(p, " addr=", c->addr);
    if (c->cfsr)
        p = put_hex(p, " cfsr=", c->cfsr);
    if (c->hfsr)
        p = put_hex(p, " hfsr=", c->hfsr);
    *p = 0;
}

/* The app the fault interrupted, if the device still holds it (restored from the store):
 * Failed with the fault, and kept so across resets until a Start or a new module. */
static void crash_blame(wbd_device *d)
{
    const wbd_crash *c = &d->fault;
    if (c->magic != WBD_CRASH_MAGIC || c->app < 0)
        return;
    wbd_app *a = find_app(d, wbp_mem(c->name, c->name_len));
    if (!a || a->slot < 0 || memcmp(a->digest, c->digest, WBP_DIGEST) != 0)
        return;
    char why[96];
    crash_text(c, why);
    a->state = WBP_FAILED;
    a->traps++;
    set_error(a, why);
#if WBD_STORE
    a->run = 0;
#endif
    persist(d);
}

/* After the first Welcome: a firmware Log line (error) for every fault, and the AppStatus
 * Failed of an app the device no longer holds (no store), which the record still names;
 * one it holds was reported Failed with the session's other apps (on_welcome). */
static void crash_report(wbd_device *d)
{
    const wbd_crash *c = &d->fault;
    if (c->magic != WBD_CRASH_MAGIC || d->fault_told)
        return;
    d->fault_told = 1;
    char line[96 + 16 + WBP_MAX_APP_NAME];
    crash_text(c, line);
    char *p = put_str(line + strlen(line), c->app >= 0 ? " in app " : " in the firmware");
    if (c->app >= 0)
        memcpy(p, c->name, c->name_len), p += c->name_len;
    *p = 0;
    wbd_log(d, 3, line);
    wbd_app *a = c->app >= 0 ? find_app(d, wbp_mem(c->name, c->name_len)) : NULL;
    if (c->app < 0 || (a && a->slot >= 0 && memcmp(a->digest, c->digest, WBP_DIGEST) == 0))
        return;
    wbd_app gone; /* only what send_status reads */
    memset(&gone, 0, sizeof gone);
    gone.name_len = c->name_len;
    memcpy(gone.name, c->name, c->name_len);
    crash_text(c, gone.error);
    gone.traps = 1;
    send_status(d, &gone, WBP_FAILED, c->digest);
}

/* ---- persistence (WBD_STORE): firmware/README.md, "Persistence" ---- */

#if WBD_STORE
static const char *manifest_check(const wbd_device *d, const wbd_manifest *man, wbp_str app, const uint8_t *digest,
                                  wbp_str config);
#endif
static const char *manifest_of(const wbd_device *d, const wbp_deploy *m, const wbd_app *a, wbd_app_manifest *man);

#if WBD_STORE
_Static_assert(sizeof(wbd_area_hdr) == 32 && sizeof(wbd_rec_hdr) == 408, "store headers have no padding");
/* Store offsets are uint32 sums within size = 2 areas, each checked to hold WBD_AREA_NEED (store_restore). */
_Static_assert(WBD_AREA_NEED <= 0xffffffffu / 2, "two store areas must be addressable with 32-bit offsets");

/* First WBD_SUM bytes of sha256(a || b). */
static void store_sum(const void *a, uint32_t an, const void *b, uint32_t bn, uint8_t out[WBD_SUM])
{
    wb_sha256_ctx c;
    uint8_t full[32];
    wb_sha256_init(&c);
    wb_sha256_update(&c, a, an);
    wb_sha256_update(&c, b, bn);
    wb_sha256_final(&c, full);
    memcpy(out, full, WBD_SUM);
}

/* A restore line for the first session: level ('i' info, 'w' warn) then the text. */
static void store_note(wbd_device *d, char level, const char *what, const char *name, const char *why)
{
    if (d->store_nlog >= sizeof d->store_log / sizeof d->store_log[0])
        return;
    char *p = d->store_log[d->store_nlog++];
    *p++ = level;
    p = put_str(put_str(put_str(p, "store: "), what), name);
    *put_str(p, why) = 0;
}

/* The area holding the newest snapshot is left alone; the other one is erased and
 * written, its header last: until that header is programmed the area does not count. */
static int store_program(const wbd_store *s, uint32_t off, const uint8_t *p, uint32_t n)
{
    uint32_t body = n & ~3u;
    if (body && s->program(s->ctx, off, p, body))
        return -1;
    if (n == body)
        return 0;
    uint8_t tail[4] = {0xff, 0xff, 0xff, 0xff};
    memcpy(tail, p + body, n - body);
    return s->program(s->ctx, off + body, tail, 4);
}

static int store_save(wbd_device *d)
{
    const wbd_store *s = d->cfg.store;
    int area = d->store_area == 0;
    uint32_t base = (uint32_t)area * (s->size / 2);
    for (uint32_t o = 0; o < WBD_AREA_NEED; o += s->sector)
        if (s->erase(s->ctx, base + o))
            return -1;
    for (int i = 0; i < WBD_MAX_APPS; i++) {
        const wbd_app *a = &d->apps[i];
        if (!a->used || a->slot < 0)
            continue;
        uint32_t r = base + (uint32_t)sizeof(wbd_area_hdr) + (uint32_t)i * (uint32_t)WBD_REC_STRIDE;
        wbd_rec_hdr h;
        memset(&h, 0, sizeof h);
        h.magic = WBD_REC_MAGIC;
        h.size = a->size;
        h.config_len = a->config_len;
        h.name_len = a->name_len;
        h.state = a->run ? WBP_RUNNING : a->state == WBP_STOPPED || a->state == WBP_FAILED ? a->state : WBP_RECEIVED;
        if (h.state == WBP_FAILED)
            memcpy(h.error, a->error, strlen(a->error));
        memcpy(h.name, a->name, a->name_len);
        memcpy(h.digest, a->digest, WBP_DIGEST);
        h.man = a->man;
        store_sum(&h, offsetof(wbd_rec_hdr, sum), a->config, a->config_len, h.sum);
        if (store_program(s, r + sizeof h + WBD_ALIGN4(WBD_CONFIG_SIZE), d->slots[a->slot], a->size) ||
            store_program(s, r + sizeof h, a->config, a->config_len) ||
            s->program(s->ctx, r, &h, sizeof h))
            return -1;
    }
    wbd_area_hdr ah = {WBD_AREA_MAGIC, d->store_seq + 1, WBD_MAX_APPS, (uint32_t)WBD_REC_STRIDE, {0}};
    store_sum(&ah, offsetof(wbd_area_hdr, sum), NULL, 0, ah.sum);
    if (s->program(s->ctx, base, &ah, sizeof ah)) /* the commit */
        return -1;
    d->store_seq = ah.seq;
    d->store_area = (int8_t)area;
    return 0;
}

/* After every change of what the store holds: verified modules, their configuration,
 * signature and run state. */
static void persist(wbd_device *d)
{
    if (d->cfg.store && store_save(d))
        wbd_log(d, 2, "store: save failed; the apps run from RAM until the next save");
}

static void set_run(wbd_device *d, wbd_app *a, uint8_t run)
{
    if (a->run != run) {
        a->run = run;
        persist(d);
    }
}

/* Record i of the area at base, if valid, into app i (a->run: start it). */
static void store_load(wbd_device *d, uint32_t base, int i)
{
    const wbd_store *s = d->cfg.store;
    wbd_app *a = &d->apps[i];
    wbd_rec_hdr h;
    uint8_t sum[32];
    char rec[] = "record 0";
    rec[7] = (char)('0' + i % 10);
    uint32_t r = base + (uint32_t)sizeof(wbd_area_hdr) + (uint32_t)i * (uint32_t)WBD_REC_STRIDE;
    if (s->read(s->ctx, r, &h, sizeof h)) {
        store_note(d, 'w', rec, "", ": read failed, not restored");
        return;
    }
    if (h.magic == 0xffffffffu)
        return; /* empty */
    h.name[sizeof h.name - 1] = 0;
    if (h.magic != WBD_REC_MAGIC || h.size == 0 || h.size > WBD_SLOT_SIZE || h.config_len > WBD_CONFIG_SIZE ||
        s->read(s->ctx, r + sizeof h, a->config, h.config_len)) {
        store_note(d, 'w', rec, "", ": bad header, not restored");
        return;
    }
    store_sum(&h, offsetof(wbd_rec_hdr, sum), a->config, h.config_len, sum);
    if (memcmp(sum, h.sum, WBD_SUM) != 0 || !wbp_app_name_valid(wbp_mem(h.name, h.name_len)) ||
        (h.state != WBP_RECEIVED && h.state != WBP_STOPPED && h.state != WBP_RUNNING && h.state != WBP_FAILED) ||
        h.man.uid_len > WBP_MAX_UID) {
        store_note(d, 'w', rec, "", ": header checksum mismatch, not restored");
        return;
    }
    const char *why = NULL;
    int8_t slot = take_slot(d);
    if (slot < 0 || s->read(s->ctx, r + sizeof h + WBD_ALIGN4(WBD_CONFIG_SIZE), d->slots[slot], h.size))
        why = ": module read failed, not restored";
    else {
        wb_sha256(d->slots[slot], h.size, sum);
        if (memcmp(sum, h.digest, WBP_DIGEST) != 0)
            why = ": module sha256 differs from its digest, not restored";
        else if (manifest_check(d, &h.man, wbp_mem(h.name, h.name_len), h.digest, wbp_mem(a->config, h.config_len)))
            why = ": manifest refused, not restored";
    }
    if (why) {
        free_slot(d, &slot);
        store_note(d, 'w', "app ", h.name, why);
        return;
    }
    a->dev = d;
    a->used = 1;
    a->slot = slot;
    a->name_len = h.name_len;
    memcpy(a->name, h.name, h.name_len);
    memcpy(a->digest, h.digest, WBP_DIGEST);
    a->size = h.size;
    a->config_len = h.config_len;
    a->state = h.state == WBP_STOPPED || h.state == WBP_FAILED ? h.state : WBP_RECEIVED;
    a->run = h.state == WBP_RUNNING;
    h.error[sizeof h.error - 1] = 0;
    set_error(a, h.state == WBP_FAILED ? h.error : "");
    a->man = h.man;
}

/* Boot: the newest valid area's apps, verified as a completed transfer is, started if
 * they were running. What it finds is logged once the first session opens. */
static void store_restore(wbd_device *d)
{
    const wbd_store *s = d->cfg.store;
    d->store_area = -1;
    if (!s)
        return;
    uint32_t half = s->size / 2;
    if (!s->sector || half % s->sector || half < WBD_AREA_NEED) {
        store_note(d, 'w', "too small for ", "this budget", ", not used");
        d->cfg.store = NULL;
        return;
    }
    for (int k = 0; k < 2; k++) {
        wbd_area_hdr h;
        uint8_t sum[WBD_SUM];
        if (s->read(s->ctx, (uint32_t)k * half, &h, sizeof h))
            continue;
        store_sum(&h, offsetof(wbd_area_hdr, sum), NULL, 0, sum);
        if (h.magic != WBD_AREA_MAGIC || h.napps != WBD_MAX_APPS || h.stride != WBD_REC_STRIDE ||
            memcmp(sum, h.sum, WBD_SUM) != 0)
            continue;
        if (d->store_area < 0 || (int32_t)(h.seq - d->store_seq) > 0) {
            d->store_area = (int8_t)k;
            d->store_seq = h.seq;
        }
    }
    if (d->store_area < 0)
        return;
    int n = 0;
    for (int i = 0; i < WBD_MAX_APPS; i++) {
        store_load(d, (uint32_t)d->store_area * half, i);
        n += d->apps[i].used;
    }
    crash_blame(d);
    for (int i = 0; i < WBD_MAX_APPS; i++)
        if (d->apps[i].used && d->apps[i].run)
            start_app(d, &d->apps[i]);
    char num[12];
    *put_u32(num, (uint32_t)n) = 0;
    store_note(d, 'i', "restored ", num, " app(s)");
}
#else
static void persist(wbd_device *d) { (void)d; }
static void set_run(wbd_device *d, wbd_app *a, uint8_t run) { (void)d, (void)a, (void)run; }
static void store_restore(wbd_device *d) { crash_blame(d); } /* no app is held at boot: finds none */
#endif

/* ---- message handlers ---- */

static void on_deploy(wbd_device *d, const wbp_deploy *m)
{
    if (m->size > WBD_SLOT_SIZE) {
        send_error(d, WBP_E_TOO_LARGE, WBP_DEPLOY, m->app, "module larger than max_module");
        return;
    }
    if (m->config_raw.n > WBD_CONFIG_SIZE) {
        send_error(d, WBP_E_NO_SPACE, WBP_DEPLOY, m->app, "config too large");
        return;
    }
    wbd_app *a = find_app(d, m->app);
    wbd_app_manifest man;
    const char *why = manifest_of(d, m, a, &man);
    if (why) {
        /* Nothing changes: the app keeps what it holds, and only the Error answers. */
        send_error(d, WBP_E_BAD_SIGNATURE, WBP_DEPLOY, m->app, why);
        return;
    }
    if (!a) {
        for (int i = 0; i < WBD_MAX_APPS && !a; i++)
            if (!d->apps[i].used)
                a = &d->apps[i];
        if (!a) {
            send_error(d, WBP_E_NO_SPACE, WBP_DEPLOY, m->app, "no room for another app");
            return;
        }
        memset(a, 0, sizeof *a);
        a->dev = d;
        a->slot = a->pend_slot = -1;
        memcpy(a->name, m->app.p, m->app.n);
        a->name_len = (uint8_t)m->app.n;
        a->used = 1;
    }
    uint32_t offset = 0;
    int have = a->slot >= 0 && memcmp(a->digest, m->digest.p, WBP_DIGEST) == 0, changed = 0, config_changed = 0;
    if (have) {
        /* Senders encode canonically, so equal configurations have equal bytes. */
        config_changed = a->config_len != m->config_raw.n || memcmp(a->config, m->config_raw.p, m->config_raw.n) != 0;
        changed = config_changed;
        memcpy(a->config, m->config_raw.p, m->config_raw.n);
        a->config_len = (uint16_t)m->config_raw.n;
        changed |= a->man.version != man.version;
        a->man = man;
        free_slot(d, &a->pend_slot);
        offset = m->size;
    } else if (a->pend_slot >= 0 && memcmp(a->pend_digest, m->digest.p, WBP_DIGEST) == 0 &&
               a->pend_chunk == m->chunk_size && a->pend_size == m->size) {
        offset = a->pend_held;
    } else {
        if (a->pend_slot < 0 && (a->pend_slot = take_slot(d)) < 0) {
            int busy = a->state == WBP_RUNNING;
            if (a->slot < 0)
                delete_app(d, a);
            send_error(d, busy ? WBP_E_BUSY : WBP_E_NO_SPACE, WBP_DEPLOY, m->app, "no free module buffer");
            return;
        }
        memcpy(a->pend_digest, m->digest.p, WBP_DIGEST);
        a->pend_size = m->size;
        a->pend_chunk = m->chunk_size;
        a->pend_held = 0;
    }
    if (!have) {
        memcpy(a->pend_config, m->config_raw.p, m->config_raw.n);
        a->pend_config_len = (uint16_t)m->config_raw.n;
        a->pend_man = man; /* the latest Deploy's manifest counts */
    }
    wbp_msg *o = &d->out;
    memset(o, 0, sizeof *o);
    o->type = WBP_DEPLOY_ACK;
    o->u.deploy_ack.app = app_str(a);
    o->u.deploy_ack.digest = wbp_mem(m->digest.p, WBP_DIGEST);
    o->u.deploy_ack.offset = offset;
    o->u.deploy_ack.window = WBD_WINDOW;
    /* the digest view points into rx, which stays untouched while we answer */
    send(d, o);
    if (config_changed && a->state == WBP_RUNNING)
        start_app(d, a); /* protocol section 6 rule 7: restart with the new configuration */
    else if (have)
        report(d, a);
    if (have && changed)
        persist(d);
}

static void send_chunk_ack(wbd_device *d, const wbd_app *a, uint32_t next)
{
    wbp_msg *o = &d->out;
    memset(o, 0, sizeof *o);
    o->type = WBP_CHUNK_ACK;
    o->u.chunk_ack.app = app_str(a);
    o->u.chunk_ack.next = next;
    send(d, o);
}

/* The completed transfer is refused: Error, AppStatus Failed; the held version (if any) stays. */
static void fail_transfer(wbd_device *d, wbd_app *a, wbp_err code, const char *msg, const char *status)
{
    uint8_t digest[WBP_DIGEST];
    memcpy(digest, a->pend_digest, WBP_DIGEST);
    free_slot(d, &a->pend_slot);
    send_error(d, code, WBP_CHUNK, app_str(a), msg);
    set_error(a, status);
    send_status(d, a, WBP_FAILED, digest);
    if (a->slot < 0)
        delete_app(d, a);
    else
        a->error[0] = 0;
}

/* The device's namespace: device_id up to its '/'. */
static wbp_str dev_namespace(const wbd_device *d)
{
    const char *id = d->cfg.device_id ? d->cfg.device_id : "";
    uint32_t n = 0;
    while (id[n] && id[n] != '/' && n <= WBP_MAX_NAMESPACE)
        n++;
    return wbp_mem(id, n);
}

#if WBD_STORE
/* NULL when a module may run under man on this device (the signature and the fields
 * the Deploy does not carry are in man; the rest is the Deploy's or the store's), else
 * why not. The manifest is encoded again from those parts and its signature checked,
 * so what was verified is exactly what the device holds. Without a key, everything may. */
static const char *manifest_check(const wbd_device *d, const wbd_manifest *man, wbp_str app, const uint8_t *digest,
                                  wbp_str config)
{
    static const char type[] = WBP_MANIFEST_TYPE;
    const uint8_t *key = d->cfg.deploy_key;
    if (!key)
        return NULL;
    if (man->version == 0)
        return "not signed: the device requires a deployment manifest";
    uint8_t hash[WBP_DIGEST], buf[WBP_MAX_MANIFEST];
    wb_sha256(config.p, config.n, hash);
    wbp_manifest m = {
        .type = wbp_mem(type, sizeof type - 1), .ns = dev_namespace(d), .app = app,
        .uid = wbp_mem(man->uid, man->uid_len), .generation = man->generation, .version = man->version,
        .digest = wbp_mem(digest, WBP_DIGEST), .config_hash = wbp_mem(hash, WBP_DIGEST),
    };
    size_t n = wbp_manifest_encode(&m, buf, sizeof buf);
    if (n == 0 || wb_ed25519_verify(man->sig, buf, n, key) != 0)
        return "manifest signature does not verify";
    return NULL;
}
#endif

/* NULL when Deploy m may proceed for app a (NULL: not on the device), with *man set to
 * its manifest; else why it is refused (docs/protocol.md, "Deployment manifest": the
 * device rule). Without a key nothing is refused, but a manifest that decodes is still
 * kept, so a key provisioned later verifies it at boot like any other. */
static const char *manifest_of(const wbd_device *d, const wbp_deploy *m, const wbd_app *a, wbd_app_manifest *man)
{
    const uint8_t *key = d->cfg.deploy_key;
    wbp_manifest v;
    memset(man, 0, sizeof *man);
    if (m->signature.n == 0)
        return key ? "not signed: the device requires a deployment manifest" : NULL;
    if (key && wb_ed25519_verify(m->signature.p, m->manifest.p, m->manifest.n, key) != 0)
        return "manifest signature does not verify";
    if (wbp_manifest_decode(m->manifest.p, m->manifest.n, &v) != WBP_OK)
        return key ? "manifest malformed or out of range" : NULL;
    man->version = v.version;
#if WBD_STORE
    man->generation = v.generation;
    man->uid_len = (uint8_t)v.uid.n;
    memcpy(man->uid, v.uid.p, v.uid.n);
    memcpy(man->sig, m->signature.p, WBP_SIGNATURE);
#endif
    if (!key)
        return NULL;
    uint8_t hash[WBP_DIGEST];
    wb_sha256(m->config_raw.p, m->config_raw.n, hash);
    if (!wbp_str_eq(v.ns, dev_namespace(d)))
        return "manifest for another namespace";
    if (!wbp_str_eq(v.app, m->app))
        return "manifest for another app";
    if (memcmp(v.digest.p, m->digest.p, WBP_DIGEST) != 0)
        return "manifest for another module digest";
    if (memcmp(v.config_hash.p, hash, WBP_DIGEST) != 0)
        return "manifest for another configuration";
    if (a && a->slot >= 0 && a->man.version != 0 &&
        (v.version < a->man.version ||
         (v.version == a->man.version && (memcmp(a->digest, m->digest.p, WBP_DIGEST) != 0 ||
                                          a->config_len != m->config_raw.n ||
                                          memcmp(a->config, m->config_raw.p, m->config_raw.n) != 0))))
        return "manifest version below the held one: a rollback needs a newer manifest";
    return NULL;
}

static void on_chunk(wbd_device *d, const wbp_chunk *m)
{
    wbd_app *a = find_app(d, m->app);
    if (!a || a->pend_slot < 0) {
        send_error(d, WBP_E_BAD_STATE, WBP_CHUNK, m->app, "no transfer in progress");
        return;
    }
    uint32_t held = a->pend_held, rest = a->pend_size - held;
    uint32_t want = a->pend_chunk < rest ? a->pend_chunk : rest;
    if (m->offset != held || m->data.n != want) {
        char msg[40] = "expected offset ";
        *put_u32(msg + 16, held) = 0;
        send_error(d, WBP_E_BAD_OFFSET, WBP_CHUNK, m->app, msg);
        return;
    }
    memcpy(d->slots[a->pend_slot] + held, m->data.p, m->data.n);
    a->pend_held = held += m->data.n;
    if (held < a->pend_size) {
        send_chunk_ack(d, a, held);
        return;
    }
    uint8_t sum[WBP_DIGEST];
    wb_sha256(d->slots[a->pend_slot], a->pend_size, sum);
    if (memcmp(sum, a->pend_digest, WBP_DIGEST) != 0) {
        fail_transfer(d, a, WBP_E_DIGEST_MISMATCH, "sha256 differs", "digest mismatch");
        return;
    }
    /* verified: the new module replaces the old one, which stops */
    stop_app(a);
    d->crash_named = NULL; /* another digest to name */
    free_slot(d, &a->slot);
    a->slot = a->pend_slot;
    a->pend_slot = -1;
    memcpy(a->digest, a->pend_digest, WBP_DIGEST);
    a->size = a->pend_size;
    memcpy(a->config, a->pend_config, a->pend_config_len);
    a->config_len = a->pend_config_len;
    a->state = WBP_RECEIVED;
    a->error[0] = 0;
    a->loops = a->traps = a->fuel = 0;
    a->man = a->pend_man;
#if WBD_STORE
    a->run = 0;
#endif
    send_chunk_ack(d, a, held);
    report(d, a);
    persist(d);
}

static void on_command(wbd_device *d, uint8_t type, wbp_str name)
{
    wbd_app *a = find_app(d, name);
    if (!a || (type != WBP_REMOVE && a->slot < 0)) {
        send_error(d, WBP_E_NOT_FOUND, type, name, "no such app");
        return;
    }
    switch (type) {
    case WBP_START:
        if (a->state == WBP_RUNNING)
            report(d, a);
        else
            start_app(d, a);
        if (a->used && a->state != WBP_STOPPED) /* not stopped or removed during its setup */
            set_run(d, a, 1);
        break;
    case WBP_STOP:
        if (a->state != WBP_RUNNING) {
            send_error(d, WBP_E_BAD_STATE, type, name, "not running");
            break;
        }
        stop_app(a);
        report(d, a);
        set_run(d, a, 0);
        break;
    case WBP_REMOVE: {
        uint8_t digest[WBP_DIGEST];
        memcpy(digest, a->slot >= 0 ? a->digest : a->pend_slot >= 0 ? a->pend_digest : zero_digest, WBP_DIGEST);
        stop_app(a);
        a->error[0] = 0;
        send_status(d, a, WBP_REMOVED, digest);
        int held = a->slot >= 0;
        delete_app(d, a);
        if (held)
            persist(d);
        break;
    }
    }
}

/* ---- session ---- */

static void end_session(wbd_device *d)
{
    uint64_t t = now(d);
    d->session = WBD_IDLE;
    wbp_reader_reset(&d->reader);
    d->stage_pos = d->stage_len = 0;
    d->retry_ms = t + d->backoff_ms / 2 + (t * 7919u) % (d->backoff_ms / 2 + 1); /* jitter */
    d->backoff_ms = d->backoff_ms * 2 > WBD_MAX_BACKOFF_MS ? WBD_MAX_BACKOFF_MS : d->backoff_ms * 2;
}

static void send_hello(wbd_device *d)
{
    wbp_msg *m = &d->out;
    memset(m, 0, sizeof *m);
    m->type = WBP_HELLO;
    wbp_hello *h = &m->u.hello;
    h->device_id = wbp_cstr(d->cfg.device_id);
    h->board = wbp_cstr(d->cfg.board);
    h->firmware = wbp_cstr(d->cfg.firmware);
    h->caps = (wbp_caps){d->cfg.ram, d->cfg.flash, WBD_SLOT_SIZE, WB_ABI_VERSION, WBD_MAX_FRAME};
    for (int i = 0; i < WBD_MAX_APPS; i++) {
        const wbd_app *a = &d->apps[i];
        if (!a->used)
            continue;
        wbp_app_info *ai = &h->apps[h->napps++];
        ai->name = app_str(a);
        if (a->slot >= 0) {
            ai->digest = wbp_mem(a->digest, WBP_DIGEST);
            ai->state = a->state;
        } else {
            ai->digest = wbp_mem(a->pend_digest, WBP_DIGEST);
            ai->state = WBP_RECEIVING;
        }
    }
    d->limit = WBP_DEFAULT_MAX_FRAME;
    wbp_reader_set_limit(&d->reader, WBP_DEFAULT_MAX_FRAME);
    d->session = WBD_WAIT_WELCOME;
    d->hello_ms = now(d);
    if (send(d, m))
        end_session(d);
}

static void on_welcome(wbd_device *d, const wbp_welcome *w)
{
    uint64_t t = now(d);
    d->session = WBD_WELCOMED;
    d->sessions++;
    d->session_id = w->session_id;
    d->limit = w->max_frame < WBD_MAX_FRAME ? w->max_frame : WBD_MAX_FRAME;
    wbp_reader_set_limit(&d->reader, d->limit);
    d->hb_interval_ms = (uint64_t)w->heartbeat_interval * 1000u;
    d->hb_timeout_ms = (uint64_t)w->heartbeat_timeout * 1000u;
    d->next_hb_ms = t + d->hb_interval_ms;
    d->time_offset = w->server_time ? w->server_time - t : 0;
    d->backoff_ms = WBD_MIN_BACKOFF_MS;
    for (int i = 0; i < WBD_MAX_APPS; i++) /* a Failed app again with its error: Hello carries none */
        if (d->apps[i].used && (d->apps[i].state == WBP_RUNNING || d->apps[i].state == WBP_FAILED))
            report(d, &d->apps[i]);
}

static void on_frame(wbd_device *d, size_t n)
{
    wbp_msg *m = &d->msg;
    uint8_t related;
    wbp_err e = wbp_decode(d->rx, n, m, &related);
    if (d->session == WBD_WAIT_WELCOME) {
        if (e == WBP_OK && m->type == WBP_WELCOME) {
            on_welcome(d, &m->u.welcome);
            log_ready(d);
#if WBD_STORE
            for (int i = 0; i < d->store_nlog; i++) /* what the restore at boot found, once */
                wbd_log(d, d->store_log[i][0] == 'w' ? 2 : 1, d->store_log[i] + 1);
            d->store_nlog = 0;
#endif
            crash_report(d);
            return;
        }
        if (e)
            send_error(d, e, related, (wbp_str){0, 0}, "bad frame before welcome");
        else if (m->type != WBP_ERROR)
            send_error(d, WBP_E_UNEXPECTED_MESSAGE, m->type, (wbp_str){0, 0}, "expected welcome");
        end_session(d);
        return;
    }
    if (e) {
        send_error(d, e, related, (wbp_str){0, 0}, e == WBP_E_UNKNOWN_MESSAGE ? "unknown message type" : "bad message");
        return;
    }
    switch (m->type) {
    case WBP_HEARTBEAT_ACK:
        break;
    case WBP_DEPLOY:
        on_deploy(d, &m->u.deploy);
        break;
    case WBP_CHUNK:
        on_chunk(d, &m->u.chunk);
        break;
    case WBP_START:
    case WBP_STOP:
    case WBP_REMOVE:
        on_command(d, m->type, m->u.cmd.app);
        break;
    case WBP_ERROR: {
        uint16_t c = m->u.error.code;
        if (c == WBP_E_UNSUPPORTED_VERSION || c == WBP_E_FRAME_TOO_LARGE || c == WBP_E_UNAUTHORIZED ||
            c == WBP_E_HEARTBEAT_TIMEOUT || c == WBP_E_GOING_AWAY)
            end_session(d);
        break;
    }
    default:
        send_error(d, WBP_E_UNEXPECTED_MESSAGE, m->type, (wbp_str){0, 0}, "not expected from a gateway");
    }
}

void wbd_init(wbd_device *d, const wbd_config *cfg)
{
    for (int i = 0; i < WBD_MAX_APPS; i++) /* wiped below: plain memory again (ASan builds poison arenas) */
        wasm_arena_release(d->arenas[i], sizeof d->arenas[i]);
    memset(d, 0, sizeof *d);
    d->cfg = *cfg;
    for (int i = 0; i < WBD_MAX_APPS; i++)
        d->apps[i].slot = d->apps[i].pend_slot = -1;
    d->limit = WBP_DEFAULT_MAX_FRAME;
    d->backoff_ms = WBD_MIN_BACKOFF_MS;
    wbp_reader_init(&d->reader, d->rx, sizeof d->rx, WBP_DEFAULT_MAX_FRAME);
    crash_take(d);
    store_restore(d); /* blames the app a fault interrupted before starting the others */
}

/* The transport's receive counters as a firmware Log line (device.h, rx_stats). */
static void report_rx(wbd_device *d)
{
    wbd_rx_stats st;
    if (!d->cfg.io->rx_stats || d->session != WBD_WELCOMED)
        return;
    d->cfg.io->rx_stats(d->cfg.io->ctx, &st);
    int lost = st.lost != d->rx_lost;
    if (!lost && (st.peak < 32 || st.peak < 2 * d->rx_peak))
        return;
    char line[64], *e = put_u32(put_str(line, "rx: "), st.lost);
    e = put_u32(put_str(e, " lost, peak "), st.peak);
    *put_str(put_u32(put_str(e, " of "), st.size), " bytes") = 0;
    wbd_log(d, lost ? 2 : 0, line);
    d->rx_lost = st.lost;
    d->rx_peak = st.peak;
}

static uint64_t min64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* A Deploy, Chunk, Start, Stop or Remove received during an app call waits for the call
 * to end (device.h, busy): it may replace, restart or delete the app under the running
 * engine. Returns 1 when the frame of n bytes is held. */
static int hold(wbd_device *d, size_t n)
{
    wbp_msg *m = &d->msg;
    uint8_t related;
    if (!d->busy || d->session != WBD_WELCOMED || wbp_decode(d->rx, n, m, &related) != WBP_OK)
        return 0;
    switch (m->type) {
    case WBP_STOP:
    case WBP_REMOVE:
        if (wbp_str_eq(m->u.cmd.app, app_str(d->busy)))
            d->stop_busy = 1;
        break;
    case WBP_DEPLOY:
    case WBP_CHUNK:
    case WBP_START:
        break;
    default:
        return 0;
    }
    d->held = (uint32_t)n;
    return 1;
}

/* Waits up to wait_ms for input and takes at most one frame from it. While a frame is held
 * no input is read (its body is in rx): the wait is a plain delay, bytes wait in the
 * transport. <0 when the transport is closed. */
static int take_input(wbd_device *d, uint32_t wait_ms)
{
    if (d->held) {
        if (wait_ms)
            d->cfg.hal->delay_ms(d->cfg.hal->ctx, wait_ms);
        return 0;
    }
    if (d->stage_pos == d->stage_len) {
        int r = d->cfg.io->read(d->cfg.io->ctx, d->stage, sizeof d->stage, wait_ms);
        if (r < 0) {
#if WBD_END_ON_CLOSE
            if (d->session != WBD_IDLE) /* the stream is gone, and the session with it */
                end_session(d);
#endif
            return -1;
        }
        d->stage_pos = 0;
        d->stage_len = (uint32_t)r;
        if (r > 0)
            d->last_rx_ms = now(d);
    }
    while (d->stage_pos < d->stage_len) {
        size_t used, body;
        wbp_err e = wbp_reader_push(&d->reader, d->stage + d->stage_pos, d->stage_len - d->stage_pos, &used, &body);
        d->stage_pos += (uint32_t)used;
        if (e) { /* framing error: the stream cannot be resynchronised */
            send_error(d, e, 0, (wbp_str){0, 0}, "bad frame header");
            end_session(d);
            break;
        }
        if (body) {
            if (d->session != WBD_IDLE && !hold(d, body))
                on_frame(d, body);
            break; /* one frame per poll: heartbeats and loops stay on time */
        }
    }
    return 0;
}

/* Timeouts and heartbeats of the session. */
static void keep_session(wbd_device *d)
{
    uint64_t t = now(d);
    switch (d->session) {
    case WBD_WAIT_WELCOME:
        if (t >= d->hello_ms + WBD_HELLO_TIMEOUT_MS)
            end_session(d);
        break;
    case WBD_WELCOMED:
        /* While a frame is held no input is read: bytes waiting are no sign of silence. */
        if (!d->held && t >= d->last_rx_ms + d->hb_timeout_ms && t >= d->next_hb_ms) {
            end_session(d); /* the gateway is gone: say Hello again */
            break;
        }
        if (t >= d->next_hb_ms) {
            wbp_msg *m = &d->out;
            memset(m, 0, sizeof *m);
            m->type = WBP_HEARTBEAT;
            m->u.heartbeat.seq = ++d->hb_seq;
            m->u.heartbeat.time = t;
            send(d, m);
            d->next_hb_ms = t + d->hb_interval_ms;
            if (d->hb_seq % 4 == 0)
                for (int i = 0; i < WBD_MAX_APPS; i++)
                    if (d->apps[i].used && d->apps[i].state == WBP_RUNNING)
                        report(d, &d->apps[i]);
        }
        break;
    }
}

/* Serves the session for at most max_wait_ms: says Hello when due, takes input, keeps the
 * session. Outside an app call the wait also ends when an app is due. */
static int serve(wbd_device *d, uint32_t max_wait_ms)
{
    uint64_t t = now(d);
    if (d->session == WBD_IDLE && t >= d->retry_ms)
        send_hello(d);
    /* how long we may wait for input */
    uint64_t until = t + max_wait_ms;
    if (d->session == WBD_WELCOMED)
        until = min64(until, d->next_hb_ms);
    else if (d->session == WBD_IDLE)
        until = min64(until, d->retry_ms);
    else
        until = min64(until, d->hello_ms + WBD_HELLO_TIMEOUT_MS);
    for (int i = 0; i < WBD_MAX_APPS && !d->busy; i++)
        if (d->apps[i].used && d->apps[i].state == WBP_RUNNING)
            until = min64(until, d->apps[i].next_loop_ms);
    if (take_input(d, until > t ? (uint32_t)(until - t) : 0) < 0)
        return -1;
    keep_session(d);
    return 0;
}

int wbd_poll(wbd_device *d, uint32_t max_wait_ms)
{
    apply_held(d);
    if (serve(d, max_wait_ms) < 0)
        return -1;
    run_due(d, now(d));
    report_rx(d);
    return 0;
}
