/* CBOR subset codec: see cbor.h. */
#include "cbor.h"
#include "../common/utf8.h"

#include <string.h>

void cbor_enc_init(cbor_enc *e, uint8_t *buf, size_t cap)
{
    e->buf = buf;
    e->cap = cap;
    e->len = 0;
    e->err = CBOR_OK;
}

void cbor_put_raw(cbor_enc *e, const uint8_t *p, size_t n)
{
    if (e->err)
        return;
    if (n > e->cap - e->len) {
        e->err = CBOR_E_FULL;
        return;
    }
    if (n)
        memcpy(e->buf + e->len, p, n);
    e->len += n;
}

void cbor_put_head(cbor_enc *e, unsigned major, uint64_t v)
{
    uint8_t h[9];
    size_t n;
    uint8_t m = (uint8_t)(major << 5);
    if (v < 24) {
        h[0] = (uint8_t)(m | v);
        n = 1;
    } else if (v <= 0xff) {
        h[0] = m | 24;
        n = 2;
    } else if (v <= 0xffff) {
        h[0] = m | 25;
        n = 3;
    } else if (v <= 0xffffffffu) {
        h[0] = m | 26;
        n = 5;
    } else {
        h[0] = m | 27;
        n = 9;
    }
    for (size_t i = n - 1; i >= 1 && n > 1; i--, v >>= 8)
        h[i] = (uint8_t)v;
    cbor_put_raw(e, h, n);
}

void cbor_put_uint(cbor_enc *e, uint64_t v) { cbor_put_head(e, CBOR_UINT, v); }

void cbor_put_int(cbor_enc *e, int64_t v)
{
    if (v >= 0)
        cbor_put_head(e, CBOR_UINT, (uint64_t)v);
    else
        cbor_put_head(e, CBOR_NINT, (uint64_t)(-(v + 1)));
}

void cbor_put_bytes(cbor_enc *e, const uint8_t *p, size_t n)
{
    cbor_put_head(e, CBOR_BYTES, n);
    cbor_put_raw(e, p, n);
}

void cbor_put_text(cbor_enc *e, const char *p, size_t n)
{
    cbor_put_head(e, CBOR_TEXT, n);
    cbor_put_raw(e, (const uint8_t *)p, n);
}

void cbor_put_array(cbor_enc *e, size_t n) { cbor_put_head(e, CBOR_ARRAY, n); }
void cbor_put_map(cbor_enc *e, size_t n) { cbor_put_head(e, CBOR_MAP, n); }

void cbor_put_bool(cbor_enc *e, int b)
{
    uint8_t v = b ? 0xf5 : 0xf4;
    cbor_put_raw(e, &v, 1);
}

void cbor_dec_init(cbor_dec *d, const uint8_t *p, size_t n)
{
    d->p = p;
    d->end = p + n;
}

cbor_err cbor_read(cbor_dec *d, cbor_item *it)
{
    if (d->p >= d->end)
        return CBOR_E_EOF;
    uint8_t ib = *d->p++;
    uint8_t ai = ib & 0x1f;
    it->major = ib >> 5;
    it->simple = 0;
    it->ptr = NULL;
    uint64_t v;
    if (ai < 24) {
        v = ai;
    } else if (ai <= 27) {
        size_t n = (size_t)1 << (ai - 24);
        if ((size_t)(d->end - d->p) < n)
            return CBOR_E_EOF;
        v = 0;
        for (size_t i = 0; i < n; i++)
            v = (v << 8) | *d->p++;
    } else if (ai == 31) {
        return it->major == CBOR_SIMPLE ? CBOR_E_SYNTAX : (it->major >= CBOR_BYTES && it->major <= CBOR_MAP)
                                                              ? CBOR_E_INDEFINITE
                                                              : CBOR_E_SYNTAX;
    } else {
        return CBOR_E_SYNTAX;
    }
    it->val = v;
    switch (it->major) {
    case CBOR_TAG:
        return CBOR_E_TAG;
    case CBOR_BYTES:
    case CBOR_TEXT:
        if (v > (uint64_t)(d->end - d->p))
            return CBOR_E_EOF;
        it->ptr = d->p;
        d->p += v;
        if (it->major == CBOR_TEXT && !wb_utf8_valid(it->ptr, (size_t)v))
            return CBOR_E_UTF8;
        break;
    case CBOR_ARRAY:
    case CBOR_MAP:
        if (v > CBOR_MAX_ITEMS)
            return CBOR_E_ITEMS;
        break;
    case CBOR_SIMPLE:
        it->simple = ai;
        /* one-byte simple values below 32 are not well-formed (RFC 8949 3.3) */
        if (ai == 24 && v < 32)
            return CBOR_E_SYNTAX;
        break;
    default:
        break;
    }
    return CBOR_OK;
}

cbor_err cbor_skip(cbor_dec *d, int depth)
{
    cbor_item it;
    cbor_err e = cbor_read(d, &it);
    if (e)
        return e;
    if (it.major != CBOR_ARRAY && it.major != CBOR_MAP)
        return CBOR_OK;
    if (depth > CBOR_MAX_DEPTH)
        return CBOR_E_DEPTH;
    uint64_t n = it.major == CBOR_MAP ? 2 * it.val : it.val;
    for (uint64_t i = 0; i < n; i++)
        if ((e = cbor_skip(d, depth + 1)) != CBOR_OK)
            return e;
    return CBOR_OK;
}

cbor_err cbor_get_uint(cbor_dec *d, uint64_t max, uint64_t *v)
{
    cbor_item it;
    cbor_err e = cbor_read(d, &it);
    if (e)
        return e;
    if (it.major != CBOR_UINT)
        return CBOR_E_TYPE;
    if (it.val > max)
        return CBOR_E_RANGE;
    *v = it.val;
    return CBOR_OK;
}

cbor_err cbor_get_int(cbor_dec *d, int64_t *v)
{
    cbor_item it;
    cbor_err e = cbor_read(d, &it);
    if (e)
        return e;
    if (it.major != CBOR_UINT && it.major != CBOR_NINT)
        return CBOR_E_TYPE;
    if (it.val > (uint64_t)INT64_MAX)
        return CBOR_E_RANGE;
    *v = it.major == CBOR_UINT ? (int64_t)it.val : -1 - (int64_t)it.val;
    return CBOR_OK;
}

static cbor_err get_string(cbor_dec *d, unsigned major, const uint8_t **p, uint32_t *n)
{
    cbor_item it;
    cbor_err e = cbor_read(d, &it);
    if (e)
        return e;
    if (it.major != major)
        return CBOR_E_TYPE;
    *p = it.ptr;
    *n = (uint32_t)it.val; /* bounded by the input length */
    return CBOR_OK;
}

cbor_err cbor_get_bytes(cbor_dec *d, const uint8_t **p, uint32_t *n) { return get_string(d, CBOR_BYTES, p, n); }

cbor_err cbor_get_text(cbor_dec *d, const char **p, uint32_t *n)
{
    return get_string(d, CBOR_TEXT, (const uint8_t **)p, n);
}

cbor_err cbor_get_bool(cbor_dec *d, int *b)
{
    cbor_item it;
    cbor_err e = cbor_read(d, &it);
    if (e)
        return e;
    if (it.major != CBOR_SIMPLE || (it.simple != 20 && it.simple != 21))
        return CBOR_E_TYPE;
    *b = it.simple == 21;
    return CBOR_OK;
}

cbor_err cbor_get_container(cbor_dec *d, unsigned major, uint32_t *n)
{
    cbor_item it;
    cbor_err e = cbor_read(d, &it);
    if (e)
        return e;
    if (it.major != major)
        return CBOR_E_TYPE;
    *n = (uint32_t)it.val;
    return CBOR_OK;
}

const char *cbor_err_str(cbor_err e)
{
    switch (e) {
    case CBOR_OK: return "ok";
    case CBOR_E_EOF: return "unexpected end of cbor data";
    case CBOR_E_SYNTAX: return "cbor syntax error";
    case CBOR_E_INDEFINITE: return "indefinite length";
    case CBOR_E_TAG: return "cbor tag";
    case CBOR_E_UTF8: return "invalid utf-8 text";
    case CBOR_E_DEPTH: return "nesting too deep";
    case CBOR_E_ITEMS: return "too many items";
    case CBOR_E_TYPE: return "wrong type";
    case CBOR_E_RANGE: return "integer out of range";
    case CBOR_E_FULL: return "buffer full";
    }
    return "cbor error";
}
