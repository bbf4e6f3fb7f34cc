/* SHA-256 (FIPS 180-4), incremental, no allocation. */
#ifndef WB_SHA256_H
#define WB_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t total;
    uint8_t block[64];
    uint32_t used;
} wb_sha256_ctx;

void wb_sha256_init(wb_sha256_ctx *s);
void wb_sha256_update(wb_sha256_ctx *s, const uint8_t *p, size_t n);
void wb_sha256_final(wb_sha256_ctx *s, uint8_t out[32]);
void wb_sha256(const uint8_t *p, size_t n, uint8_t out[32]);

#endif
