/* SHA-512 (FIPS 180-4), incremental, no allocation. Used by the Ed25519 verifier. */
#ifndef WB_SHA512_H
#define WB_SHA512_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t h[8];
    uint64_t total; /* bytes hashed so far (messages < 2^61 bytes) */
    uint8_t block[128];
    uint32_t used;
} wb_sha512_ctx;

void wb_sha512_init(wb_sha512_ctx *s);
void wb_sha512_update(wb_sha512_ctx *s, const uint8_t *p, size_t n);
void wb_sha512_final(wb_sha512_ctx *s, uint8_t out[64]);
void wb_sha512(const uint8_t *p, size_t n, uint8_t out[64]);

#endif
