/*
 * The little HTTP and JSON the network image's enrollment needs (net/ident.c): the
 * request body's JSON strings, and reading the gateway's answer, hostile bytes even
 * after TLS (fuzzed: tests/fuzz/fuzz_json.c). No allocation, bounded by the buffers given.
 */
#ifndef WB_NET_JSON_H
#define WB_NET_JSON_H

#include <stddef.h>

/* Appends s (NUL-terminated) to out at `at` as the inside of a JSON string: quote,
 * backslash and newline escaped, other control and non-ASCII bytes dropped. Stops
 * once fewer than 8 bytes of cap are left. Returns the new end. */
size_t wbn_json_put(char *out, size_t at, size_t cap, const char *s);
/* The string value of "name" in the JSON object js (n bytes, no NUL needed), unescaped
 * into out and NUL-terminated: its length, or -1 when missing, malformed, holding a NUL
 * or a non-ASCII \u escape, or not fitting cap - 1 bytes. */
int wbn_json_get(const char *js, size_t n, const char *name, char *out, size_t cap);
/* An HTTP/1.x response of n bytes: 0 with its status and the offset of its body, or -1
 * when it is not one (or its head is cut short). */
int wbn_http_response(const char *r, size_t n, int *status, size_t *body);

#endif
