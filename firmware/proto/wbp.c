/*
 * Wasmbed device protocol v1: strict table-driven decoder, deterministic encoder,
 * frame reader. See wbp.h and docs/protocol.md.
 */
#include "wbp.h"

#include <stddef.h>
#include <string.h>

#include "cbor.h"
#include "../common/utf8.h"

/* ---- field tables ---- */

enum { K_U8, K_U16, K_U32, K_U64, K_TEXT, K_BYTES, K_CAPS, K_APPS, K_CONFIG };

typedef struct {
    uint8_t key, kind, opt;
    uint16_t off;
} field;

#define F(key, kind, opt, member) {key, kind, opt, (uint16_t)offsetof(wbp_msg, u.member)}
#define N(key, kind, type, member) {key, kind, 0, (uint16_t)offsetof(type, member)}

static const field caps_fields[] = {
    N(1, K_U32, wbp_caps, ram),       N(2, K_U32, wbp_caps, flash), N(3, K_U32, wbp_caps, max_module),
    N(4, K_U32, wbp_caps, abi),       N(5, K_U32, wbp_caps, max_frame),
};
static const field app_fields[] = {
    N(1, K_TEXT, wbp_app_info, name), N(2, K_BYTES, wbp_app_info, digest), N(3, K_U8, wbp_app_info, state),
};
static const field hello_f[] = {
    F(1, K_TEXT, 0, hello.device_id), F(2, K_TEXT, 0, hello.board), F(3, K_TEXT, 0, hello.firmware),
    F(4, K_CAPS, 0, hello.caps),      F(5, K_APPS, 0, hello),
};
static const field welcome_f[] = {
    F(1, K_U64, 0, welcome.session_id), F(2, K_U32, 0, welcome.heartbeat_interval),
    F(3, K_U32, 0, welcome.heartbeat_timeout), F(4, K_U64, 0, welcome.server_time),
    F(5, K_U32, 0, welcome.max_frame),
};
static const field heartbeat_f[] = {F(1, K_U32, 0, heartbeat.seq), F(2, K_U64, 0, heartbeat.time)};
static const field deploy_f[] = {
    F(1, K_TEXT, 0, deploy.app),        F(2, K_BYTES, 0, deploy.digest), F(3, K_U32, 0, deploy.size),
    F(4, K_U32, 0, deploy.chunk_size),  F(5, K_CONFIG, 0, deploy),       F(6, K_BYTES, 1, deploy.signature),
    F(7, K_BYTES, 1, deploy.manifest),
};
static const field deploy_ack_f[] = {
    F(1, K_TEXT, 0, deploy_ack.app),   F(2, K_BYTES, 0, deploy_ack.digest),
    F(3, K_U32, 0, deploy_ack.offset), F(4, K_U32, 0, deploy_ack.window),
};
static const field chunk_f[] = {F(1, K_TEXT, 0, chunk.app), F(2, K_U32, 0, chunk.offset), F(3, K_BYTES, 0, chunk.data)};
static const field chunk_ack_f[] = {F(1, K_TEXT, 0, chunk_ack.app), F(2, K_U32, 0, chunk_ack.next)};
static const field cmd_f[] = {F(1, K_TEXT, 0, cmd.app)};
static const field status_f[] = {
    F(1, K_TEXT, 0, app_status.app),  F(2, K_BYTES, 0, app_status.digest), F(3, K_U8, 0, app_status.state),
    F(4, K_TEXT, 1, app_status.error), F(5, K_U64, 0, app_status.loops),   F(6, K_U64, 0, app_status.traps),
    F(7, K_U64, 0, app_status.fuel),
};
static const field telemetry_f[] = {
    F(1, K_TEXT, 0, telemetry.app), F(2, K_TEXT, 0, telemetry.topic), F(3, K_BYTES, 0, telemetry.payload),
    F(4, K_U64, 0, telemetry.time),
};
static const field log_f[] = {F(1, K_U8, 0, log.level), F(2, K_TEXT, 1, log.app), F(3, K_TEXT, 0, log.message)};
static const field error_f[] = {
    F(1, K_U16, 0, error.code), F(2, K_TEXT, 1, error.message), F(3, K_U8, 1, error.related),
    F(4, K_TEXT, 1, error.app),
};

static const field manifest_f[] = {
    N(1, K_TEXT, wbp_manifest, type),       N(2, K_TEXT, wbp_manifest, ns),
    N(3, K_TEXT, wbp_manifest, app),        N(4, K_TEXT, wbp_manifest, uid),
    N(5, K_U64, wbp_manifest, generation),  N(6, K_U64, wbp_manifest, version),
    N(7, K_BYTES, wbp_manifest, digest),    N(8, K_BYTES, wbp_manifest, config_hash),
};
#define MANIFEST_FIELDS ((unsigned)(sizeof manifest_f / sizeof manifest_f[0]))

typedef struct {
    const field *f;
    uint8_t n;
} table;

#define T(a) {a, (uint8_t)(sizeof a / sizeof a[0])}
static const table tables[16] = {
    [WBP_HELLO] = T(hello_f),         [WBP_WELCOME] = T(welcome_f),   [WBP_HEARTBEAT] = T(heartbeat_f),
    [WBP_HEARTBEAT_ACK] = T(heartbeat_f), [WBP_DEPLOY] = T(deploy_f), [WBP_DEPLOY_ACK] = T(deploy_ack_f),
    [WBP_CHUNK] = T(chunk_f),         [WBP_CHUNK_ACK] = T(chunk_ack_f), [WBP_START] = T(cmd_f),
    [WBP_STOP] = T(cmd_f),            [WBP_REMOVE] = T(cmd_f),        [WBP_APP_STATUS] = T(status_f),
    [WBP_TELEMETRY] = T(telemetry_f), [WBP_LOG] = T(log_f),           [WBP_ERROR] = T(error_f),
};

static const table *table_of(unsigned t) { return t < 16 && tables[t].f ? &tables[t] : NULL; }

/* ---- decoding ---- */

static const uint64_t width_max[] = {[K_U8] = 0xff, [K_U16] = 0xffff, [K_U32] = 0xffffffffu, [K_U64] = UINT64_MAX};

/* Has key `key` already appeared among the first `i` pairs of the map whose pairs start at `start`? */
static int dup_uint_key(const uint8_t *start, const uint8_t *end, uint32_t i, uint64_t key)
{
    cbor_dec d;
    cbor_dec_init(&d, start, (size_t)(end - start));
    for (uint32_t j = 0; j < i; j++) {
        cbor_item it;
        if (cbor_read(&d, &it) || cbor_skip(&d, 1))
            return 1; /* already walked once: cannot fail */
        if (it.major == CBOR_UINT && it.val == key)
            return 1;
    }
    return 0;
}

static int decode_map(cbor_dec *d, int depth, const field *f, unsigned nf, void *base);

static int decode_value(cbor_dec *d, int depth, const field *fd, void *base)
{
    uint8_t *dst = (uint8_t *)base + fd->off;
    uint64_t v;
    switch (fd->kind) {
    case K_U8:
    case K_U16:
    case K_U32:
    case K_U64:
        if (cbor_get_uint(d, width_max[fd->kind], &v))
            return -1;
        if (fd->kind == K_U8)
            *dst = (uint8_t)v;
        else if (fd->kind == K_U16)
            *(uint16_t *)(void *)dst = (uint16_t)v;
        else if (fd->kind == K_U32)
            *(uint32_t *)(void *)dst = (uint32_t)v;
        else
            *(uint64_t *)(void *)dst = v;
        return 0;
    case K_TEXT:
    case K_BYTES: {
        wbp_str *s = (wbp_str *)(void *)dst;
        return fd->kind == K_TEXT ? (cbor_get_text(d, (const char **)&s->p, &s->n) ? -1 : 0)
                                  : (cbor_get_bytes(d, &s->p, &s->n) ? -1 : 0);
    }
    case K_CAPS:
        return decode_map(d, depth, caps_fields, 5, dst);
    case K_APPS: {
        wbp_hello *h = (wbp_hello *)(void *)dst;
        uint32_t n;
        if (depth > CBOR_MAX_DEPTH || cbor_get_container(d, CBOR_ARRAY, &n))
            return -1;
        h->napps = n;
        for (uint32_t i = 0; i < n; i++) {
            wbp_app_info scratch;
            wbp_app_info *a = i < WBP_MAX_APPS ? &h->apps[i] : &scratch;
            memset(a, 0, sizeof *a);
            if (decode_map(d, depth + 1, app_fields, 3, a))
                return -1;
        }
        return 0;
    }
    case K_CONFIG: {
        wbp_deploy *dp = (wbp_deploy *)(void *)dst;
        const uint8_t *start = d->p;
        uint32_t n;
        if (depth > CBOR_MAX_DEPTH || cbor_get_container(d, CBOR_MAP, &n))
            return -1;
        const uint8_t *pairs = d->p;
        dp->nconfig = n;
        for (uint32_t i = 0; i < n; i++) {
            wbp_kv kv;
            if (cbor_get_text(d, (const char **)&kv.key.p, &kv.key.n) ||
                cbor_get_text(d, (const char **)&kv.value.p, &kv.value.n))
                return -1;
            cbor_dec r;
            cbor_dec_init(&r, pairs, (size_t)(d->end - pairs));
            for (uint32_t j = 0; j < i; j++) {
                wbp_kv o;
                if (cbor_get_text(&r, (const char **)&o.key.p, &o.key.n) ||
                    cbor_get_text(&r, (const char **)&o.value.p, &o.value.n))
                    return -1;
                if (wbp_str_eq(o.key, kv.key))
                    return -1; /* duplicate key */
            }
            if (i < WBP_MAX_CONFIG)
                dp->config[i] = kv;
        }
        dp->config_raw.p = start;
        dp->config_raw.n = (uint32_t)(d->p - start);
        return 0;
    }
    }
    return -1;
}

/* Decodes a map of unsigned keys: known fields into base, unknown ones skipped (still checked). */
static int decode_map(cbor_dec *d, int depth, const field *f, unsigned nf, void *base)
{
    uint32_t n;
    if (depth > CBOR_MAX_DEPTH || cbor_get_container(d, CBOR_MAP, &n))
        return -1;
    const uint8_t *pairs = d->p;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < n; i++) {
        cbor_item k;
        if (cbor_read(d, &k) || k.major != CBOR_UINT)
            return -1;
        if (k.val < 64) {
            if (seen & (1ull << k.val))
                return -1;
            seen |= 1ull << k.val;
        } else if (dup_uint_key(pairs, d->end, i, k.val)) {
            return -1;
        }
        const field *fd = NULL;
        for (unsigned j = 0; j < nf; j++)
            if (f[j].key == k.val)
                fd = &f[j];
        if (fd ? decode_value(d, depth + 1, fd, base) : (int)cbor_skip(d, depth + 1))
            return -1;
    }
    for (unsigned j = 0; j < nf; j++)
        if (!f[j].opt && !(seen & (1ull << f[j].key)))
            return -1; /* required field missing */
    return 0;
}

wbp_err wbp_decode(const uint8_t *body, size_t n, wbp_msg *m, uint8_t *related)
{
    cbor_dec d;
    uint32_t npairs;
    *related = 0;
    memset(m, 0, sizeof *m);
    if (n == 0)
        return WBP_E_MALFORMED;
    /* Pass 1: the whole body is one well-formed map with unsigned keys; find the type. */
    cbor_dec_init(&d, body, n);
    if (cbor_get_container(&d, CBOR_MAP, &npairs))
        return WBP_E_MALFORMED;
    const uint8_t *pairs = d.p;
    uint64_t seen = 0, type = 0;
    int have_type = 0;
    for (uint32_t i = 0; i < npairs; i++) {
        cbor_item k;
        if (cbor_read(&d, &k) || k.major != CBOR_UINT)
            return WBP_E_MALFORMED;
        if (k.val < 64 ? (seen & (1ull << k.val)) != 0 : dup_uint_key(pairs, d.end, i, k.val))
            return WBP_E_MALFORMED;
        if (k.val < 64)
            seen |= 1ull << k.val;
        if (k.val == 0) {
            cbor_dec v = d;
            if (cbor_get_uint(&v, UINT64_MAX, &type))
                return WBP_E_MALFORMED;
            have_type = 1;
        }
        if (cbor_skip(&d, 2))
            return WBP_E_MALFORMED;
    }
    if (d.p != d.end || !have_type)
        return WBP_E_MALFORMED;
    const table *t = table_of(type > 0xff ? 0 : (unsigned)type);
    if (!t)
        return WBP_E_UNKNOWN_MESSAGE;
    /* Pass 2: typed fields. */
    m->type = (uint8_t)type;
    *related = m->type;
    cbor_dec_init(&d, body, n);
    field f[10];
    _Static_assert(sizeof deploy_f / sizeof deploy_f[0] < 10, "field tables fit f with key 0");
    memcpy(f, t->f, t->n * sizeof f[0]);
    f[t->n] = (field){0, K_U8, 0, offsetof(wbp_msg, type)}; /* key 0 again, same value */
    if (decode_map(&d, 1, f, t->n + 1u, m))
        return WBP_E_MALFORMED;
    return wbp_validate(m);
}

/* ---- validation ---- */

static int text_ok(wbp_str s, uint32_t min, uint32_t max)
{
    return s.n >= min && s.n <= max && (s.n == 0 || s.p) && (s.n == 0 || wb_utf8_valid(s.p, s.n));
}

int wbp_app_name_valid(wbp_str s)
{
    if (s.n == 0 || s.n > WBP_MAX_APP_NAME || !s.p)
        return 0;
    for (uint32_t i = 0; i < s.n; i++) {
        uint8_t c = s.p[i];
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
            continue;
        if (c == '-' && i > 0 && i + 1 < s.n)
            continue;
        return 0;
    }
    return 1;
}

static int digest_ok(wbp_str s) { return s.n == WBP_DIGEST && s.p; }
static int frame_ok(uint32_t n) { return n >= WBP_MIN_MAX_FRAME && n <= WBP_HARD_MAX_FRAME; }
static int state_ok(uint8_t s) { return s >= WBP_RECEIVING && s <= WBP_REMOVED; }

wbp_err wbp_validate(const wbp_msg *m)
{
    const wbp_err bad = WBP_E_INVALID_VALUE;
    const uint32_t max_chunk = WBP_HARD_MAX_FRAME - WBP_CHUNK_OVERHEAD;
    switch (m->type) {
    case WBP_HELLO: {
        const wbp_hello *h = &m->u.hello;
        if (!text_ok(h->device_id, 1, WBP_MAX_DEVICE_ID) || !text_ok(h->board, 1, WBP_MAX_BOARD) ||
            !text_ok(h->firmware, 1, WBP_MAX_FIRMWARE) || h->caps.abi == 0 || !frame_ok(h->caps.max_frame) ||
            h->napps > WBP_MAX_APPS)
            return bad;
        for (uint32_t i = 0; i < h->napps; i++) {
            if (!wbp_app_name_valid(h->apps[i].name) || !digest_ok(h->apps[i].digest) || !state_ok(h->apps[i].state))
                return bad;
            for (uint32_t j = 0; j < i; j++)
                if (wbp_str_eq(h->apps[i].name, h->apps[j].name))
                    return bad;
        }
        return WBP_OK;
    }
    case WBP_WELCOME: {
        const wbp_welcome *w = &m->u.welcome;
        if (w->session_id == 0 || w->heartbeat_interval == 0 || w->heartbeat_interval > WBP_MAX_HEARTBEAT_S ||
            w->heartbeat_timeout <= w->heartbeat_interval || w->heartbeat_timeout > WBP_MAX_HEARTBEAT_S ||
            !frame_ok(w->max_frame))
            return bad;
        return WBP_OK;
    }
    case WBP_HEARTBEAT:
    case WBP_HEARTBEAT_ACK:
        return WBP_OK;
    case WBP_DEPLOY: {
        const wbp_deploy *p = &m->u.deploy;
        if (!wbp_app_name_valid(p->app) || !digest_ok(p->digest) || p->size == 0 || p->size > WBP_MAX_MODULE ||
            p->chunk_size == 0 || p->chunk_size > max_chunk || p->nconfig > WBP_MAX_CONFIG ||
            (p->signature.n != 0 && p->signature.n != WBP_SIGNATURE) || p->manifest.n > WBP_MAX_MANIFEST ||
            (p->signature.n == 0) != (p->manifest.n == 0))
            return bad;
        for (uint32_t i = 0; i < p->nconfig; i++)
            if (!text_ok(p->config[i].key, 1, WBP_MAX_CONFIG_KEY) ||
                !text_ok(p->config[i].value, 0, WBP_MAX_CONFIG_VALUE))
                return bad;
        return WBP_OK;
    }
    case WBP_DEPLOY_ACK: {
        const wbp_deploy_ack *a = &m->u.deploy_ack;
        if (!wbp_app_name_valid(a->app) || !digest_ok(a->digest) || a->offset > WBP_MAX_MODULE || a->window == 0 ||
            a->window > WBP_MAX_WINDOW)
            return bad;
        return WBP_OK;
    }
    case WBP_CHUNK: {
        const wbp_chunk *c = &m->u.chunk;
        if (!wbp_app_name_valid(c->app) || c->offset >= WBP_MAX_MODULE || c->data.n == 0 || c->data.n > max_chunk)
            return bad;
        return WBP_OK;
    }
    case WBP_CHUNK_ACK:
        return wbp_app_name_valid(m->u.chunk_ack.app) && m->u.chunk_ack.next <= WBP_MAX_MODULE ? WBP_OK : bad;
    case WBP_START:
    case WBP_STOP:
    case WBP_REMOVE:
        return wbp_app_name_valid(m->u.cmd.app) ? WBP_OK : bad;
    case WBP_APP_STATUS: {
        const wbp_app_status *s = &m->u.app_status;
        if (!wbp_app_name_valid(s->app) || !digest_ok(s->digest) || !state_ok(s->state) ||
            !text_ok(s->error, 0, WBP_MAX_ERROR_MSG))
            return bad;
        return WBP_OK;
    }
    case WBP_TELEMETRY: {
        const wbp_telemetry *t = &m->u.telemetry;
        if (!wbp_app_name_valid(t->app) || !text_ok(t->topic, 1, WBP_MAX_TOPIC) || t->payload.n > WBP_MAX_PAYLOAD ||
            (t->payload.n && !t->payload.p))
            return bad;
        return WBP_OK;
    }
    case WBP_LOG: {
        const wbp_log *l = &m->u.log;
        if (l->level > 3 || (l->app.n && !wbp_app_name_valid(l->app)) || !text_ok(l->message, 0, WBP_MAX_LOG))
            return bad;
        return WBP_OK;
    }
    case WBP_ERROR: {
        const wbp_error *e = &m->u.error;
        if (e->code == 0 || !text_ok(e->message, 0, WBP_MAX_ERROR_MSG) || (e->app.n && !wbp_app_name_valid(e->app)))
            return bad;
        return WBP_OK;
    }
    }
    return WBP_E_UNKNOWN_MESSAGE;
}

/* ---- encoding ---- */

/* Canonical order of text keys: shorter first, then bytewise. */
static int key_less(wbp_str a, wbp_str b)
{
    if (a.n != b.n)
        return a.n < b.n;
    return memcmp(a.p, b.p, a.n) < 0;
}

static int present(const field *fd, const void *base)
{
    const uint8_t *src = (const uint8_t *)base + fd->off;
    if (!fd->opt)
        return 1;
    switch (fd->kind) {
    case K_U8: return *src != 0;
    case K_U16: return *(const uint16_t *)(const void *)src != 0;
    case K_U32: return *(const uint32_t *)(const void *)src != 0;
    case K_U64: return *(const uint64_t *)(const void *)src != 0;
    case K_TEXT:
    case K_BYTES: return ((const wbp_str *)(const void *)src)->n != 0;
    }
    return 1;
}

static void encode_fields(cbor_enc *e, const field *f, unsigned nf, const void *base);

static void encode_value(cbor_enc *e, const field *fd, const void *base)
{
    const uint8_t *src = (const uint8_t *)base + fd->off;
    switch (fd->kind) {
    case K_U8: cbor_put_uint(e, *src); break;
    case K_U16: cbor_put_uint(e, *(const uint16_t *)(const void *)src); break;
    case K_U32: cbor_put_uint(e, *(const uint32_t *)(const void *)src); break;
    case K_U64: cbor_put_uint(e, *(const uint64_t *)(const void *)src); break;
    case K_TEXT: {
        const wbp_str *s = (const wbp_str *)(const void *)src;
        cbor_put_text(e, (const char *)s->p, s->n);
        break;
    }
    case K_BYTES: {
        const wbp_str *s = (const wbp_str *)(const void *)src;
        cbor_put_bytes(e, s->p, s->n);
        break;
    }
    case K_CAPS: encode_fields(e, caps_fields, 5, src); break;
    case K_APPS: {
        const wbp_hello *h = (const wbp_hello *)(const void *)src;
        cbor_put_array(e, h->napps);
        for (uint32_t i = 0; i < h->napps; i++)
            encode_fields(e, app_fields, 3, &h->apps[i]);
        break;
    }
    case K_CONFIG: {
        const wbp_deploy *p = (const wbp_deploy *)(const void *)src;
        uint8_t order[WBP_MAX_CONFIG];
        for (uint32_t i = 0; i < p->nconfig; i++) {
            uint32_t j = i;
            for (; j > 0 && key_less(p->config[i].key, p->config[order[j - 1]].key); j--)
                order[j] = order[j - 1];
            order[j] = (uint8_t)i;
        }
        cbor_put_map(e, p->nconfig);
        for (uint32_t i = 0; i < p->nconfig; i++) {
            const wbp_kv *kv = &p->config[order[i]];
            cbor_put_text(e, (const char *)kv->key.p, kv->key.n);
            cbor_put_text(e, (const char *)kv->value.p, kv->value.n);
        }
        break;
    }
    }
}

static void encode_fields(cbor_enc *e, const field *f, unsigned nf, const void *base)
{
    unsigned n = 0;
    for (unsigned i = 0; i < nf; i++)
        n += (unsigned)present(&f[i], base);
    cbor_put_map(e, n);
    for (unsigned i = 0; i < nf; i++) {
        if (!present(&f[i], base))
            continue;
        cbor_put_uint(e, f[i].key);
        encode_value(e, &f[i], base);
    }
}

wbp_err wbp_encode(const wbp_msg *m, uint8_t *buf, size_t cap, size_t *len)
{
    const table *t = table_of(m->type);
    if (!t)
        return WBP_E_UNKNOWN_MESSAGE;
    wbp_err err = wbp_validate(m);
    if (err)
        return err;
    if (m->type == WBP_DEPLOY) {
        /* duplicate config keys cannot be encoded deterministically */
        const wbp_deploy *p = &m->u.deploy;
        for (uint32_t i = 0; i < p->nconfig; i++)
            for (uint32_t j = 0; j < i; j++)
                if (wbp_str_eq(p->config[i].key, p->config[j].key))
                    return WBP_E_INVALID_VALUE;
    }
    cbor_enc e;
    cbor_enc_init(&e, buf, cap);
    unsigned n = 1;
    for (unsigned i = 0; i < t->n; i++)
        n += (unsigned)present(&t->f[i], m);
    cbor_put_map(&e, n);
    cbor_put_uint(&e, 0);
    cbor_put_uint(&e, m->type);
    for (unsigned i = 0; i < t->n; i++) {
        if (!present(&t->f[i], m))
            continue;
        cbor_put_uint(&e, t->f[i].key);
        encode_value(&e, &t->f[i], m);
    }
    if (e.err)
        return WBP_E_FRAME_TOO_LARGE;
    *len = e.len;
    return WBP_OK;
}

wbp_err wbp_encode_frame(const wbp_msg *m, uint8_t *buf, size_t cap, size_t limit, size_t *len)
{
    size_t n;
    if (cap < WBP_HEADER)
        return WBP_E_FRAME_TOO_LARGE;
    size_t room = cap - WBP_HEADER;
    if (limit > WBP_HARD_MAX_FRAME)
        limit = WBP_HARD_MAX_FRAME;
    wbp_err err = wbp_encode(m, buf + WBP_HEADER, room < limit ? room : limit, &n);
    if (err)
        return err;
    buf[0] = WBP_VERSION;
    buf[1] = (uint8_t)(n >> 8);
    buf[2] = (uint8_t)n;
    *len = n + WBP_HEADER;
    return WBP_OK;
}

/* ---- frames ---- */

wbp_err wbp_check_header(const uint8_t h[WBP_HEADER], size_t limit, size_t *n)
{
    if (h[0] != WBP_VERSION)
        return WBP_E_UNSUPPORTED_VERSION;
    *n = (size_t)h[1] << 8 | h[2];
    if (*n == 0)
        return WBP_E_MALFORMED;
    if (*n > limit)
        return WBP_E_FRAME_TOO_LARGE;
    return WBP_OK;
}

wbp_err wbp_decode_frame(const uint8_t *b, size_t n, size_t limit, wbp_msg *m, uint8_t *related)
{
    size_t body;
    *related = 0;
    if (n < WBP_HEADER)
        return WBP_E_TRUNCATED;
    wbp_err err = wbp_check_header(b, limit, &body);
    if (err)
        return err;
    if (n - WBP_HEADER < body)
        return WBP_E_TRUNCATED;
    if (n - WBP_HEADER > body)
        return WBP_E_MALFORMED;
    return wbp_decode(b + WBP_HEADER, body, m, related);
}

void wbp_reader_init(wbp_reader *r, uint8_t *buf, size_t cap, size_t limit)
{
    r->buf = buf;
    r->cap = cap;
    wbp_reader_set_limit(r, limit);
    wbp_reader_reset(r);
}

void wbp_reader_set_limit(wbp_reader *r, size_t limit)
{
    if (limit > WBP_HARD_MAX_FRAME)
        limit = WBP_HARD_MAX_FRAME;
    r->limit = limit < r->cap ? limit : r->cap;
}

void wbp_reader_reset(wbp_reader *r)
{
    r->got = 0;
    r->need = WBP_HEADER;
    r->in_body = 0;
}

int wbp_reader_mid_frame(const wbp_reader *r) { return r->in_body || r->got > 0; }

wbp_err wbp_reader_push(wbp_reader *r, const uint8_t *p, size_t n, size_t *used, size_t *body_len)
{
    size_t i = 0;
    *body_len = 0;
    while (i < n) {
        size_t k = r->need - r->got;
        if (k > n - i)
            k = n - i;
        memcpy((r->in_body ? r->buf : r->hdr) + r->got, p + i, k);
        r->got += k;
        i += k;
        if (r->got < r->need)
            break;
        if (!r->in_body) {
            size_t len;
            wbp_err err = wbp_check_header(r->hdr, r->limit, &len);
            if (err) {
                wbp_reader_reset(r);
                *used = i;
                return err;
            }
            r->in_body = 1;
            r->got = 0;
            r->need = len;
        } else {
            *body_len = r->need;
            wbp_reader_reset(r);
            break;
        }
    }
    *used = i;
    return WBP_OK;
}

/* ---- helpers ---- */

wbp_str wbp_cstr(const char *s) { return (wbp_str){(const uint8_t *)s, s ? (uint32_t)strlen(s) : 0}; }
wbp_str wbp_mem(const void *p, size_t n) { return (wbp_str){(const uint8_t *)p, (uint32_t)n}; }
int wbp_str_eq(wbp_str a, wbp_str b) { return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0); }

wbp_str wbp_truncate(wbp_str s, uint32_t n)
{
    if (s.n <= n)
        return s;
    while (n > 0 && (s.p[n] & 0xc0) == 0x80)
        n--;
    s.n = n;
    return s;
}

int wbp_config_find(wbp_str raw, const uint8_t *key, uint32_t klen, wbp_str *val)
{
    cbor_dec d;
    uint32_t n;
    cbor_dec_init(&d, raw.p, raw.n);
    if (!raw.n || cbor_get_container(&d, CBOR_MAP, &n))
        return 0;
    for (uint32_t i = 0; i < n; i++) {
        wbp_str k, v;
        if (cbor_get_text(&d, (const char **)&k.p, &k.n) || cbor_get_text(&d, (const char **)&v.p, &v.n))
            return 0;
        if (k.n == klen && (klen == 0 || memcmp(k.p, key, klen) == 0)) {
            *val = v;
            return 1;
        }
    }
    return 0;
}

const char *wbp_err_name(wbp_err e)
{
    static const char *const names[] = {
        "ok", "malformed", "unsupported_version", "frame_too_large", "unknown_message", "unexpected_message",
        "invalid_value", "unauthorized", "not_found", "bad_state", "no_space", "too_large", "bad_offset",
        "digest_mismatch", "bad_signature", "busy", "heartbeat_timeout", "internal", "going_away",
    };
    if ((unsigned)e < sizeof names / sizeof names[0])
        return names[e];
    if (e == WBP_E_TRUNCATED)
        return "truncated";
    if (e == WBP_E_CLOSED)
        return "closed";
    return "internal";
}

const char *wbp_type_name(unsigned t)
{
    static const char *const names[] = {
        "?", "hello", "welcome", "heartbeat", "heartbeat-ack", "deploy", "deploy-ack", "chunk",
        "chunk-ack", "start", "stop", "remove", "app-status", "telemetry", "log", "error",
    };
    return t < 16 ? names[t] : "?";
}

/* ---- deployment manifest ---- */

static int manifest_ok(const wbp_manifest *m)
{
    static const char type[] = WBP_MANIFEST_TYPE;
    if (!wbp_str_eq(m->type, wbp_mem(type, sizeof type - 1)) || !wbp_app_name_valid(m->ns) ||
        !wbp_app_name_valid(m->app) || m->uid.n == 0 || m->uid.n > WBP_MAX_UID || m->generation == 0 ||
        m->version == 0 || !digest_ok(m->digest) || !digest_ok(m->config_hash))
        return 0; /* a namespace is a label of at most 63 bytes, as an app name is */
    for (uint32_t i = 0; i < m->uid.n; i++)
        if (m->uid.p[i] < 0x21 || m->uid.p[i] > 0x7e)
            return 0;
    return 1;
}

wbp_err wbp_manifest_decode(const uint8_t *p, size_t n, wbp_manifest *m)
{
    cbor_dec d;
    memset(m, 0, sizeof *m);
    if (n == 0 || n > WBP_MAX_MANIFEST)
        return WBP_E_INVALID_VALUE;
    cbor_dec_init(&d, p, n);
    /* the manifest is the value of Deploy key 7: whatever is wrong with it is a bad value */
    if (decode_map(&d, 1, manifest_f, MANIFEST_FIELDS, m) || d.p != d.end)
        return WBP_E_INVALID_VALUE;
    return manifest_ok(m) ? WBP_OK : WBP_E_INVALID_VALUE;
}

size_t wbp_manifest_encode(const wbp_manifest *m, uint8_t *buf, size_t cap)
{
    cbor_enc e;
    if (!manifest_ok(m))
        return 0;
    cbor_enc_init(&e, buf, cap);
    encode_fields(&e, manifest_f, MANIFEST_FIELDS, m);
    return e.err ? 0 : e.len;
}
