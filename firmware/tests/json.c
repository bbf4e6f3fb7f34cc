/* Minimal recursive-descent JSON reader: enough for wast2json output. */
#include "json.h"

#include <stdlib.h>
#include <string.h>

typedef struct { const char *p, *end; } jr;

static void ws(jr *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t')) r->p++;
}

static jval *mk(jtype t)
{
    jval *v = calloc(1, sizeof *v);
    if (v) v->t = t;
    return v;
}

static int hex4(jr *r, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        if (r->p >= r->end) return 0;
        char c = *r->p++;
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

static void put_utf8(char *o, size_t *n, unsigned cp)
{
    if (cp < 0x80) o[(*n)++] = (char)cp;
    else if (cp < 0x800) { o[(*n)++] = (char)(0xc0 | cp >> 6); o[(*n)++] = (char)(0x80 | (cp & 0x3f)); }
    else if (cp < 0x10000) {
        o[(*n)++] = (char)(0xe0 | cp >> 12); o[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        o[(*n)++] = (char)(0xf0 | cp >> 18); o[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
        o[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f)); o[(*n)++] = (char)(0x80 | (cp & 0x3f));
    }
}

static char *str(jr *r, size_t *len)
{
    const char *s = ++r->p;
    while (r->p < r->end && *r->p != '"') r->p += (*r->p == '\\') ? 2 : 1;
    if (r->p >= r->end) return NULL;
    char *o = malloc((size_t)(r->p - s) + 1);
    size_t n = 0;
    jr in = {s, r->p};
    r->p++;
    while (in.p < in.end) {
        char c = *in.p++;
        if (c != '\\') { o[n++] = c; continue; }
        c = *in.p++;
        switch (c) {
        case 'n': o[n++] = '\n'; break;
        case 't': o[n++] = '\t'; break;
        case 'r': o[n++] = '\r'; break;
        case 'b': o[n++] = '\b'; break;
        case 'f': o[n++] = '\f'; break;
        case 'u': {
            unsigned cp, lo;
            if (!hex4(&in, &cp)) { free(o); return NULL; }
            if (cp >= 0xd800 && cp < 0xdc00 && in.end - in.p >= 6 && in.p[0] == '\\' && in.p[1] == 'u') {
                in.p += 2;
                if (!hex4(&in, &lo)) { free(o); return NULL; }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            put_utf8(o, &n, cp);
            break;
        }
        default: o[n++] = c; break;
        }
    }
    o[n] = 0;
    *len = n;
    return o;
}

static jval *val(jr *r, int depth);

static int push(jval *v, jval *item, char *key)
{
    jval **ni = realloc(v->items, (v->n + 1) * sizeof *ni);
    if (!ni) return 0;
    v->items = ni;
    if (v->t == J_OBJ) {
        char **nk = realloc(v->keys, (v->n + 1) * sizeof *nk);
        if (!nk) return 0;
        v->keys = nk;
        v->keys[v->n] = key;
    }
    v->items[v->n++] = item;
    return 1;
}

static jval *val(jr *r, int depth)
{
    jval *v;
    if (depth > 64) return NULL;
    ws(r);
    if (r->p >= r->end) return NULL;
    switch (*r->p) {
    case '{':
    case '[': {
        int obj = *r->p == '{';
        char close = obj ? '}' : ']';
        v = mk(obj ? J_OBJ : J_ARR);
        r->p++;
        ws(r);
        if (r->p < r->end && *r->p == close) { r->p++; return v; }
        for (;;) {
            char *key = NULL;
            size_t kl;
            ws(r);
            if (obj) {
                if (r->p >= r->end || *r->p != '"' || !(key = str(r, &kl))) goto bad;
                ws(r);
                if (r->p >= r->end || *r->p != ':') { free(key); goto bad; }
                r->p++;
            }
            jval *it = val(r, depth + 1);
            if (!it || !push(v, it, key)) { free(key); json_free(it); goto bad; }
            ws(r);
            if (r->p < r->end && *r->p == ',') { r->p++; continue; }
            if (r->p < r->end && *r->p == close) { r->p++; return v; }
            goto bad;
        }
    bad:
        json_free(v);
        return NULL;
    }
    case '"':
        v = mk(J_STR);
        if (!(v->s = str(r, &v->slen))) { free(v); return NULL; }
        return v;
    case 't': case 'f': case 'n': {
        const char *w = *r->p == 't' ? "true" : *r->p == 'f' ? "false" : "null";
        size_t wl = strlen(w);
        if ((size_t)(r->end - r->p) < wl || memcmp(r->p, w, wl)) return NULL;
        r->p += wl;
        v = mk(*w == 'n' ? J_NULL : J_BOOL);
        return v;
    }
    default: {
        const char *s = r->p;
        while (r->p < r->end && strchr("+-0123456789.eE", *r->p)) r->p++;
        if (r->p == s) return NULL;
        v = mk(J_NUM);
        v->s = malloc((size_t)(r->p - s) + 1);
        memcpy(v->s, s, (size_t)(r->p - s));
        v->s[r->p - s] = 0;
        v->slen = (size_t)(r->p - s);
        return v;
    }
    }
}

jval *json_parse(const char *text, size_t len)
{
    jr r = {text, text + len};
    return val(&r, 0);
}

void json_free(jval *v)
{
    if (!v) return;
    for (size_t i = 0; i < v->n; i++) {
        json_free(v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->s);
    free(v);
}

jval *json_get(const jval *o, const char *key)
{
    if (!o || o->t != J_OBJ) return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (!strcmp(o->keys[i], key)) return o->items[i];
    return NULL;
}

const char *json_str(const jval *o, const char *key)
{
    jval *v = json_get(o, key);
    return v && v->t == J_STR ? v->s : NULL;
}
