/*
 * Test-only Ed25519 signing (RFC 8032 section 5.1.6), so host tests can sign deployment
 * manifests the device verifies. Never linked into firmware: devices only verify.
 */
#ifndef WB_TEST_ED25519_SIGN_H
#define WB_TEST_ED25519_SIGN_H

#include <stddef.h>
#include <stdint.h>

/* The public key of a 32-byte private key (seed). */
void wbt_ed25519_public(const uint8_t seed[32], uint8_t pub[32]);
/* The signature (R || S) of msg[0..len) under seed. */
void wbt_ed25519_sign(const uint8_t seed[32], const uint8_t *msg, size_t len, uint8_t sig[64]);

#endif
