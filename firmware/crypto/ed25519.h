/*
 * Ed25519 signature verification (RFC 8032 section 5.1.7, pure Ed25519, no prehash, no
 * context). Verification only: the device never signs. Variable time (all inputs are
 * public). No allocation, no global state; about 1.9 KiB of stack on a Cortex-M4 (see ed25519.c).
 */
#ifndef WB_ED25519_H
#define WB_ED25519_H

#include <stddef.h>
#include <stdint.h>

#define WB_ED25519_KEY_SIZE 32
#define WB_ED25519_SIG_SIZE 64

/*
 * 0 when sig (R || S) is a valid signature of msg[0..len) under the public key pub, -1
 * otherwise. Cofactorless check [S]B == R + [k]A with k = SHA-512(R || A || msg) mod L.
 * Refused: S >= L, a key or R that is not the canonical encoding of a curve point
 * (y >= p, x = 0 with the sign bit set, no square root), a key of small order.
 */
int wb_ed25519_verify(const uint8_t sig[WB_ED25519_SIG_SIZE], const uint8_t *msg, size_t len,
                      const uint8_t pub[WB_ED25519_KEY_SIZE]);

/* 1 when pub decodes to a curve point that is not of small order (a usable verification key). */
int wb_ed25519_key_ok(const uint8_t pub[WB_ED25519_KEY_SIZE]);

#endif
