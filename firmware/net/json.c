/* HTTP and JSON for the enrollment request (net/json.h). */
#include "json.h"

#include <string.h>

size_t wbn_json_put(char *out, size_t at, size_t cap, const char *s)
{
    for (; *s && at + 8 <= cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '\n') {
            out[at++] = '\\';
            out[at++] = 'n';
        } else if (ch == '"' || ch == '\\') {
            out[at++] = '\\';
            out[at++] = (char)ch;
        } else if (ch >= 0x20 && ch < 0x7f) {
            out[at++] = (char)ch;
        }
    }
    return at;
}

static int hex(char h)
{
    return h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
}

/* Unescapes the JSON string whose opening quote is at js[i]: its length, -1 if bad. */
static int string_at(const char *js, size_t n, size_t i, char *out, size_t cap)
{
    size_t o = 0;
    for (i++; i < n && js[i] != '"'; i++) {
        char ch = js[i];
        if ((unsigned char)ch < 0x20)
            return -1; /* JSON strings hold no raw control characters */
        if (ch == '\\') {
            if (++i >= n)
                return -1;
            switch (js[i]) {
            case 'n': ch = '\n'; break;
            case 'r': ch = '\r'; break;
            case 't': ch = '\t'; break;
            case 'b': ch = '\b'; break;
            case 'f': ch = '\f'; break;
            case '/': case '"': case '\\': ch = js[i]; break;
            case 'u': {
                if (n - i < 5)
                    return -1;
                int v = 0;
                for (int k = 1; k <= 4; k++) {
                    int h = hex(js[i + k]);
                    if (h < 0)
                        return -1;
                    v = v * 16 + h;
                }
                if (v == 0 || v > 0x7f)
                    return -1; /* PEM is ASCII; a NUL would cut the value short */
                ch = (char)v;
                i += 4;
                break;
            }
            default: return -1;
            }
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = ch;
    }
    if (i >= n || o >= cap)
        return -1;
    out[o] = 0;
    return (int)o;
}

int wbn_json_get(const char *js, size_t n, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    if (cap == 0)
        return -1;
    /* Only at the object's top level, outside strings: a key is a string followed by ':'. */
    int depth = 0;
    for (size_t i = 0; i < n; i++) {
        char c = js[i];
        if (c == '{' || c == '[') {
            depth++;
            continue;
        }
        if (c == '}' || c == ']') {
            depth--;
            continue;
        }
        if (c != '"')
            continue;
        size_t end = i + 1; /* skip the string */
        while (end < n && js[end] != '"')
            end += js[end] == '\\' ? 2 : 1;
        if (end >= n)
            return -1;
        size_t j = end + 1;
        while (j < n && (js[j] == ' ' || js[j] == '\t' || js[j] == '\r' || js[j] == '\n'))
            j++;
        int is_key = j < n && js[j] == ':';
        if (is_key && depth == 1 && end - i - 1 == nl && memcmp(js + i + 1, name, nl) == 0) {
            for (j++; j < n && (js[j] == ' ' || js[j] == '\t' || js[j] == '\r' || js[j] == '\n'); j++) {
            }
            if (j >= n || js[j] != '"')
                return -1;
            return string_at(js, n, j, out, cap);
        }
        i = end;
    }
    return -1;
}

int wbn_http_response(const char *r, size_t n, int *status, size_t *body)
{
    if (n < 12 || memcmp(r, "HTTP/1.", 7) != 0 || (r[7] != '0' && r[7] != '1') || r[8] != ' ')
        return -1;
    int s = 0;
    for (int k = 9; k < 12; k++) {
        if (r[k] < '0' || r[k] > '9')
            return -1;
        s = s * 10 + (r[k] - '0');
    }
    if (s < 100 || (n > 12 && r[12] != ' ' && r[12] != '\r'))
        return -1;
    for (size_t i = 12; i + 4 <= n; i++)
        if (memcmp(r + i, "\r\n\r\n", 4) == 0) {
            *status = s;
            *body = i + 4;
            return 0;
        }
    return -1;
}
