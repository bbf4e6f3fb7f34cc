/*
 * Mbed TLS 2.28 configuration of the mps2-an386 network image (-DMBEDTLS_CONFIG_FILE):
 * a TLS 1.2 client with ECDHE-ECDSA and AES-GCM on P-256 only (what the gateway's
 * --tls12 accepts), X.509 certificate parsing and verification, the CSR writer, P-256
 * key generation, and CTR_DRBG over the entropy module fed only by the board's own
 * sources (net/ident.c). Memory comes from one static heap (memory_buffer_alloc), so
 * nothing depends on the C library's malloc. No clock: certificate validity dates are
 * not checked (docs/security.md, "Devices on the network").
 */
#ifndef WB_MBEDTLS_CONFIG_H
#define WB_MBEDTLS_CONFIG_H

/* System */
#define MBEDTLS_HAVE_ASM
#define MBEDTLS_NO_PLATFORM_ENTROPY
#define MBEDTLS_PLATFORM_C
#define MBEDTLS_PLATFORM_MEMORY
#define MBEDTLS_MEMORY_BUFFER_ALLOC_C
#define MBEDTLS_MEMORY_DEBUG /* peak heap use, for docs/performance.md */
/* Before memory_buffer_alloc_init: no C library heap to fall back on. */
#include <stddef.h>
void *wbn_calloc_none(size_t n, size_t size);
void wbn_free_none(void *p);
#define MBEDTLS_PLATFORM_STD_CALLOC wbn_calloc_none
#define MBEDTLS_PLATFORM_STD_FREE wbn_free_none
#define MBEDTLS_DEPRECATED_REMOVED

/* Hashes, ciphers, randomness */
#define MBEDTLS_MD_C
#define MBEDTLS_SHA256_C
#define MBEDTLS_SHA256_SMALLER
#define MBEDTLS_SHA512_C /* SHA-384 of the AES-256-GCM suite */
#define MBEDTLS_AES_C
#define MBEDTLS_AES_FEWER_TABLES
#define MBEDTLS_GCM_C
#define MBEDTLS_CIPHER_C
#define MBEDTLS_ENTROPY_C
#define MBEDTLS_CTR_DRBG_C

/* Public keys: P-256 only */
#define MBEDTLS_BIGNUM_C
#define MBEDTLS_ECP_C
#define MBEDTLS_ECP_DP_SECP256R1_ENABLED
#define MBEDTLS_ECP_NIST_OPTIM
#define MBEDTLS_ECP_WINDOW_SIZE 4
#define MBEDTLS_ECP_FIXED_POINT_OPTIM 1
#define MBEDTLS_ECDH_C
#define MBEDTLS_ECDSA_C
#define MBEDTLS_PK_C
#define MBEDTLS_PK_PARSE_C
#define MBEDTLS_PK_WRITE_C
#define MBEDTLS_ASN1_PARSE_C
#define MBEDTLS_ASN1_WRITE_C
#define MBEDTLS_OID_C
#define MBEDTLS_BASE64_C
#define MBEDTLS_PEM_PARSE_C
#define MBEDTLS_PEM_WRITE_C

/* X.509 */
#define MBEDTLS_X509_USE_C
#define MBEDTLS_X509_CRT_PARSE_C
#define MBEDTLS_X509_CREATE_C
#define MBEDTLS_X509_CSR_WRITE_C
#define MBEDTLS_X509_MAX_INTERMEDIATE_CA 2

/* TLS 1.2 client, ECDHE-ECDSA with AES-GCM */
#define MBEDTLS_SSL_TLS_C
#define MBEDTLS_SSL_CLI_C
#define MBEDTLS_SSL_PROTO_TLS1_2
#define MBEDTLS_KEY_EXCHANGE_ECDHE_ECDSA_ENABLED
#define MBEDTLS_SSL_SERVER_NAME_INDICATION
#define MBEDTLS_SSL_EXTENDED_MASTER_SECRET
#define MBEDTLS_SSL_CIPHERSUITES \
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
/* The gateway (Go) sends records of up to 16 KiB and cannot be asked for less; what the
 * device sends fits 4 KiB records. */
#define MBEDTLS_SSL_IN_CONTENT_LEN 16384
#define MBEDTLS_SSL_OUT_CONTENT_LEN 4096

#include "mbedtls/check_config.h"

#endif
