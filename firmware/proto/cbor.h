/*
 * A small CBOR (RFC 8949) codec for the subset the Wasmbed device protocol uses:
 * unsigned and negative integers, byte and text strings, arrays, maps and the two
 * booleans, all with definite lengths.
 *
 * The encoder always writes Core Deterministic Encoding heads (shortest form);
 * ordering map keys is the caller's job. The decoder is strict: it refuses
 * indefinite lengths, tags, reserved additional-information values and invalid
 * UTF-8, and bounds nesting and container sizes. Every read is bounds-checked
 * against the input; nothing is allocated.
 */
#ifndef WB_CBOR_H
#define WB_CBOR_H

#include <stddef.h>
#include <stdint.h>

enum {
    CBOR_UINT = 0,
    CBOR_NINT = 1,
    CBOR_BYTES = 2,
    CBOR_TEXT = 3,
    CBOR_ARRAY = 4,
    CBOR_MAP = 5,
    CBOR_TAG = 6,
    CBOR_SIMPLE = 7,
};

#define CBOR_MAX_DEPTH 8    /* nesting levels, the top-level item is level 1 */
#define CBOR_MAX_ITEMS 256u /* entries of one array or pairs of one map */

typedef enum {
    CBOR_OK = 0,
    CBOR_E_EOF,        /* input ends inside an item */
    CBOR_E_SYNTAX,     /* reserved additional information, break outside indefinite item */
    CBOR_E_INDEFINITE, /* indefinite length */
    CBOR_E_TAG,        /* tags are forbidden */
    CBOR_E_UTF8,       /* text string is not valid UTF-8 */
    CBOR_E_DEPTH,      /* nesting over CBOR_MAX_DEPTH */
    CBOR_E_ITEMS,      /* container over CBOR_MAX_ITEMS */
    CBOR_E_TYPE,       /* item of another type than asked */
    CBOR_E_RANGE,      /* integer does not fit the asked width */
    CBOR_E_FULL,       /* encoder: output buffer too small */
} cbor_err;

/* Encoder over a caller's buffer. After an overflow every put is a no-op and err stays set. */
typedef struct {
    uint8_t *buf;
    size_t cap, len;
    cbor_err err;
} cbor_enc;

void cbor_enc_init(cbor_enc *e, uint8_t *buf, size_t cap);
void cbor_put_head(cbor_enc *e, unsigned major, uint64_t v);
void cbor_put_uint(cbor_enc *e, uint64_t v);
void cbor_put_int(cbor_enc *e, int64_t v);
void cbor_put_bytes(cbor_enc *e, const uint8_t *p, size_t n);
void cbor_put_text(cbor_enc *e, const char *p, size_t n);
void cbor_put_array(cbor_enc *e, size_t n);
void cbor_put_map(cbor_enc *e, size_t n);
void cbor_put_bool(cbor_enc *e, int b);
void cbor_put_raw(cbor_enc *e, const uint8_t *p, size_t n);

/* Decoder: a cursor over [p, end). */
typedef struct {
    const uint8_t *p, *end;
} cbor_dec;

/* One decoded head. For strings ptr/val give the content and its length. */
typedef struct {
    uint8_t major;
    uint8_t simple; /* major 7: the additional information (20 false, 21 true, 22 null, ...) */
    uint64_t val;   /* integer value, string length, item count, or simple value */
    const uint8_t *ptr; /* string content */
} cbor_item;

void cbor_dec_init(cbor_dec *d, const uint8_t *p, size_t n);
/* Reads one head (and a string's content); refuses tags and indefinite lengths. */
cbor_err cbor_read(cbor_dec *d, cbor_item *it);
/* Skips one complete well-formed item, checking nesting (depth = level of the item), sizes and UTF-8. */
cbor_err cbor_skip(cbor_dec *d, int depth);
/* Typed reads of one item. */
cbor_err cbor_get_uint(cbor_dec *d, uint64_t max, uint64_t *v);
cbor_err cbor_get_int(cbor_dec *d, int64_t *v);
cbor_err cbor_get_bytes(cbor_dec *d, const uint8_t **p, uint32_t *n);
cbor_err cbor_get_text(cbor_dec *d, const char **p, uint32_t *n);
cbor_err cbor_get_bool(cbor_dec *d, int *b);
cbor_err cbor_get_container(cbor_dec *d, unsigned major, uint32_t *n);

const char *cbor_err_str(cbor_err e);

#endif
