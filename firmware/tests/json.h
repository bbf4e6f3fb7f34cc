/* Minimal JSON reader for the spec runner (host only; uses malloc). */
#ifndef WASMBED_TEST_JSON_H
#define WASMBED_TEST_JSON_H

#include <stddef.h>

typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype;

typedef struct jval {
    jtype t;
    char *s;           /* J_STR (decoded, NUL-terminated; slen bytes), J_NUM (raw text) */
    size_t slen;
    struct jval **items; /* J_ARR / J_OBJ values */
    char **keys;         /* J_OBJ */
    size_t n;
} jval;

jval *json_parse(const char *text, size_t len); /* NULL on syntax error */
void json_free(jval *v);
jval *json_get(const jval *obj, const char *key); /* NULL if missing */
const char *json_str(const jval *obj, const char *key); /* NULL if missing / not a string */

#endif
