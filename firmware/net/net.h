/*
 * The mps2-an386 network image (make -C firmware net): the device runtime's transport is
 * a TLS 1.2 connection to the gateway over lwIP and the LAN9118, under a certificate
 * for a P-256 key the board generated itself and enrolled with a bootstrap token. The
 * UART stays the console: the network code's log lines go there, prefixed "net: ".
 * What the factory writes (the .wb_net section, firmware/provision) and the identity
 * store are described in firmware/README.md, "Network image".
 */
#ifndef WB_NET_H
#define WB_NET_H

#include <stddef.h>
#include <stdint.h>

#include "../device/device.h"
#include "mbedtls/ctr_drbg.h"
#include "mbedtls/pk.h"
#include "mbedtls/ssl.h"
#include "mbedtls/x509_crt.h"

/* Brings the network image up: checks the provisioned section, seeds the DRBG, loads or
 * generates the device key, enrolls when no certificate is stored, then returns the
 * transport to the gateway and, in *device_id, the provisioned identity. Without a valid
 * provisioning or certificate it does not return: it says why on the UART every 10 s. */
const wbd_transport *wbn_start(const char **device_id);

/* ---- shared between the network image's files ---- */

/* The provisioned section (.wb_net, 2048 bytes in flash; firmware/provision writes it).
 * Little-endian; strings NUL-padded, their lengths given. */
#define WBN_SECTION 2048u
#define WBN_ID_MAX 128u
#define WBN_HOST_MAX 64u
#define WBN_TOKEN_MAX 64u
#define WBN_CA_MAX 1536u
typedef struct {
    char magic[4];          /* "WBN1" */
    uint8_t ip[4];          /* the gateway's IPv4 address */
    uint16_t port;          /* its device port (mutual TLS) */
    uint16_t enroll_port;   /* its HTTPS port (POST /enroll) */
    uint16_t ca_len;        /* bytes of ca */
    uint8_t token_len, host_len, id_len, pad[3];
    uint8_t seed[32];       /* random, unique per device: the DRBG's main entropy */
    char id[WBN_ID_MAX];    /* "<namespace>/<name>" */
    char host[WBN_HOST_MAX]; /* the DNS name the gateway's certificate must carry */
    char token[WBN_TOKEN_MAX]; /* the bootstrap token */
    uint8_t ca[WBN_CA_MAX]; /* the platform CA certificate, DER */
    uint8_t sum[32];        /* SHA-256 of everything above */
} wbn_prov;
_Static_assert(sizeof(wbn_prov) == 1876, "the .wb_net layout is firmware/provision's");

extern const wbn_prov *wbn_cfg;            /* valid after wbn_start's checks */
extern mbedtls_ctr_drbg_context wbn_drbg;
extern mbedtls_x509_crt wbn_ca;            /* the provisioned CA */

void wbn_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void wbn_poll(void); /* the LAN9118 and lwIP's timers, once */
uint32_t wbn_now(void);
/* Core clocks (25 MHz) since boot, from SysTick: under QEMU -icount shift=0 one clock is
 * 40 instructions, which is how docs/performance.md counts the handshake's cost. */
uint64_t wbn_clocks(void);
void wbn_wait_step(void); /* polls, feeds the watchdog, sleeps until the next tick */

/* One TLS connection over lwIP's raw TCP (net/tls.c). */
enum { WBN_DOWN, WBN_CONNECTING, WBN_UP, WBN_CLOSED };
typedef struct {
    struct tcp_pcb *pcb;
    struct pbuf *rx;
    uint32_t rx_off;
    volatile int state;
    int ssl_ready;
    uint64_t hs_clocks; /* core clocks spent inside the last handshake's calls, not waiting */
    mbedtls_ssl_context ssl;
} wbn_conn;
/* Connects to the provisioned gateway address on port and completes the handshake
 * under conf within timeout_ms: 0, or -1 with why (a sentence) filled in. */
int wbn_conn_open(wbn_conn *c, const mbedtls_ssl_config *conf, uint16_t port, uint32_t timeout_ms, char *why,
                  size_t why_len);
/* Without waiting: >0 bytes read, 0 none yet, <0 the connection is over. */
int wbn_conn_read(wbn_conn *c, uint8_t *buf, uint32_t cap);
/* All len bytes within timeout_ms: 0, or -1 (the connection is then over). */
int wbn_conn_write(wbn_conn *c, const uint8_t *buf, uint32_t len, uint32_t timeout_ms);
/* How many bytes a write takes now without waiting for the network. */
uint32_t wbn_conn_room(const wbn_conn *c);
void wbn_conn_close(wbn_conn *c);
/* A TLS configuration: the TLS 1.2 ECDHE-ECDSA-AES-GCM client verifying the gateway
 * against the provisioned CA and host name, presenting cert and key when given. */
int wbn_tls_config(mbedtls_ssl_config *conf, mbedtls_x509_crt *cert, mbedtls_pk_context *key);

/* The identity (net/ident.c): the key, the certificate, the store. */
int wbn_ident_start(mbedtls_pk_context *key, mbedtls_x509_crt *cert, int *have_cert);
/* Enrolls key with the bootstrap token (HTTPS POST /enroll); on success the verified
 * certificate is stored and parsed into cert. 0, or -1 after saying why on the UART. */
int wbn_enroll(mbedtls_pk_context *key, mbedtls_x509_crt *cert);

#endif
