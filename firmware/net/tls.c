/*
 * One TLS 1.2 client connection over lwIP's raw TCP API (net/net.h, wbn_conn): lwIP's
 * callbacks queue what arrives, Mbed TLS reads it through the BIO below, and the window
 * opens as the records are consumed. Everything runs in the main loop (NO_SYS).
 */
#include <stdio.h>
#include <string.h>

#include "../boards/common/board.h"
#include "lwip/ip_addr.h"
#include "lwip/pbuf.h"
#include "lwip/tcp.h"
#include "mbedtls/ssl.h"
#include "net.h"

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
    (void)pcb;
    wbn_conn *c = arg;
    if (!p || err != ERR_OK) { /* FIN from the peer */
        if (p)
            pbuf_free(p);
        c->state = WBN_CLOSED;
        return ERR_OK;
    }
    if (c->rx)
        pbuf_cat(c->rx, p);
    else
        c->rx = p;
    return ERR_OK;
}

static void on_err(void *arg, err_t err)
{
    (void)err;
    wbn_conn *c = arg;
    c->pcb = NULL; /* lwIP freed it */
    c->state = WBN_CLOSED;
}

static err_t on_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
    (void)pcb;
    wbn_conn *c = arg;
    c->state = err == ERR_OK ? WBN_UP : WBN_CLOSED;
    return ERR_OK;
}

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    wbn_conn *c = ctx;
    if (!c->pcb || c->state == WBN_CLOSED)
        return MBEDTLS_ERR_SSL_CONN_EOF;
    u16_t room = tcp_sndbuf(c->pcb);
    if (room == 0 || tcp_sndqueuelen(c->pcb) >= TCP_SND_QUEUELEN - 1) {
        tcp_output(c->pcb);
        return MBEDTLS_ERR_SSL_WANT_WRITE;
    }
    if (len > room)
        len = room;
    err_t e = tcp_write(c->pcb, buf, (u16_t)len, TCP_WRITE_FLAG_COPY);
    if (e == ERR_MEM) {
        tcp_output(c->pcb);
        return MBEDTLS_ERR_SSL_WANT_WRITE;
    }
    if (e != ERR_OK)
        return MBEDTLS_ERR_SSL_CONN_EOF;
    tcp_output(c->pcb);
    return (int)len;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    wbn_conn *c = ctx;
    if (!c->rx)
        return c->state == WBN_CLOSED ? MBEDTLS_ERR_SSL_CONN_EOF : MBEDTLS_ERR_SSL_WANT_READ;
    size_t n = 0;
    while (c->rx && n < len) {
        struct pbuf *p = c->rx;
        u16_t take = (u16_t)(p->len - c->rx_off < len - n ? p->len - c->rx_off : len - n);
        memcpy(buf + n, (const uint8_t *)p->payload + c->rx_off, take);
        n += take;
        c->rx_off += take;
        if (c->rx_off == p->len) { /* the first buffer is used up: unlink and free it alone */
            c->rx = p->next; /* the chain's reference to the rest passes to c->rx */
            p->next = NULL;
            p->tot_len = p->len;
            pbuf_free(p);
            c->rx_off = 0;
        }
    }
    if (c->pcb)
        tcp_recved(c->pcb, (u16_t)n);
    return (int)n;
}

int wbn_tls_config(mbedtls_ssl_config *conf, mbedtls_x509_crt *cert, mbedtls_pk_context *key)
{
    static const int suites[] = {MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                                 MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, 0};
    static const mbedtls_ecp_group_id curves[] = {MBEDTLS_ECP_DP_SECP256R1, MBEDTLS_ECP_DP_NONE};
    mbedtls_ssl_config_init(conf);
    if (mbedtls_ssl_config_defaults(conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT))
        return -1;
    mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_max_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_ciphersuites(conf, suites);
    mbedtls_ssl_conf_curves(conf, curves);
    mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(conf, &wbn_ca, NULL);
    mbedtls_ssl_conf_rng(conf, mbedtls_ctr_drbg_random, &wbn_drbg);
    if (cert && key && mbedtls_ssl_conf_own_cert(conf, cert, key))
        return -1;
    return 0;
}

void wbn_conn_close(wbn_conn *c)
{
    if (c->ssl_ready && c->state == WBN_UP && c->pcb)
        (void)mbedtls_ssl_close_notify(&c->ssl); /* best effort, not waited for */
    if (c->pcb) {
        tcp_arg(c->pcb, NULL);
        tcp_recv(c->pcb, NULL);
        tcp_err(c->pcb, NULL);
        if (tcp_close(c->pcb) != ERR_OK)
            tcp_abort(c->pcb);
        c->pcb = NULL;
    }
    if (c->rx)
        pbuf_free(c->rx);
    c->rx = NULL;
    c->rx_off = 0;
    if (c->ssl_ready)
        mbedtls_ssl_free(&c->ssl);
    c->ssl_ready = 0;
    c->state = WBN_DOWN;
}

static void explain(int r, const mbedtls_ssl_context *ssl, char *why, size_t n)
{
    uint32_t flags = mbedtls_ssl_get_verify_result(ssl);
    if (r == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED || (flags && flags != (uint32_t)-1)) {
        snprintf(why, n, "TLS handshake failed: the gateway's certificate %s (verify flags 0x%lx)",
                 flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED ? "is not signed by the platform CA"
                 : flags & MBEDTLS_X509_BADCERT_CN_MISMATCH ? "does not name the provisioned host"
                                                            : "is not valid",
                 (unsigned long)flags);
    } else if (r == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE) {
        snprintf(why, n, "TLS handshake failed: the gateway sent an alert (refused our certificate or version)");
    } else if (r == MBEDTLS_ERR_SSL_CONN_EOF) {
        snprintf(why, n, "connection closed during the TLS handshake");
    } else {
        snprintf(why, n, "TLS handshake failed: -0x%04x", (unsigned)-r);
    }
}

int wbn_conn_open(wbn_conn *c, const mbedtls_ssl_config *conf, uint16_t port, uint32_t timeout_ms, char *why,
                  size_t why_len)
{
    wbn_conn_close(c);
    uint32_t start = wbn_now();
    c->pcb = tcp_new();
    if (!c->pcb) {
        snprintf(why, why_len, "no TCP connection left");
        return -1;
    }
    tcp_arg(c->pcb, c);
    tcp_recv(c->pcb, on_recv);
    tcp_err(c->pcb, on_err);
    tcp_nagle_disable(c->pcb);
    ip_addr_t dst;
    IP_ADDR4(&dst, wbn_cfg->ip[0], wbn_cfg->ip[1], wbn_cfg->ip[2], wbn_cfg->ip[3]);
    c->state = WBN_CONNECTING;
    if (tcp_connect(c->pcb, &dst, port, on_connected) != ERR_OK) {
        wbn_conn_close(c);
        snprintf(why, why_len, "TCP connect failed");
        return -1;
    }
    while (c->state == WBN_CONNECTING && wbn_now() - start < timeout_ms)
        wbn_wait_step();
    if (c->state != WBN_UP) {
        snprintf(why, why_len, c->state == WBN_CONNECTING ? "TCP connect timed out" : "TCP connection refused");
        wbn_conn_close(c);
        return -1;
    }
    mbedtls_ssl_init(&c->ssl);
    c->ssl_ready = 1;
    int r = mbedtls_ssl_setup(&c->ssl, conf);
    if (r == 0)
        r = mbedtls_ssl_set_hostname(&c->ssl, wbn_cfg->host);
    if (r) {
        snprintf(why, why_len, "TLS set-up failed: -0x%04x (out of TLS heap?)", (unsigned)-r);
        wbn_conn_close(c);
        return -1;
    }
    mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);
    /* Step by step, feeding the watchdog between steps: on a 25 MHz core one step (the
     * key exchange after ServerHelloDone) takes seconds of CPU. */
    c->hs_clocks = 0;
    r = 0;
    while (c->ssl.state != MBEDTLS_SSL_HANDSHAKE_OVER) {
        uint64_t t0 = wbn_clocks();
        r = mbedtls_ssl_handshake_step(&c->ssl);
        c->hs_clocks += wbn_clocks() - t0;
        board_watchdog_feed();
        if (r == 0)
            continue;
        if (r != MBEDTLS_ERR_SSL_WANT_READ && r != MBEDTLS_ERR_SSL_WANT_WRITE)
            break;
        if (wbn_now() - start >= timeout_ms)
            break;
        wbn_wait_step();
    }
    if (r) {
        if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
            snprintf(why, why_len, "TLS handshake timed out");
        else
            explain(r, &c->ssl, why, why_len);
        wbn_conn_close(c);
        return -1;
    }
    return 0;
}

int wbn_conn_read(wbn_conn *c, uint8_t *buf, uint32_t cap)
{
    if (c->state != WBN_UP && c->state != WBN_CLOSED)
        return -1;
    int r = mbedtls_ssl_read(&c->ssl, buf, cap);
    if (r > 0)
        return r;
    if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
        return c->state == WBN_CLOSED && !c->rx ? -1 : 0;
    return -1; /* close_notify (0), EOF, a bad record */
}

int wbn_conn_write(wbn_conn *c, const uint8_t *buf, uint32_t len, uint32_t timeout_ms)
{
    uint32_t start = wbn_now();
    while (len) {
        if (c->state != WBN_UP)
            return -1;
        int r = mbedtls_ssl_write(&c->ssl, buf, len);
        if (r > 0) {
            buf += r;
            len -= (uint32_t)r;
            continue;
        }
        if (r != MBEDTLS_ERR_SSL_WANT_WRITE && r != MBEDTLS_ERR_SSL_WANT_READ)
            return -1;
        if (wbn_now() - start >= timeout_ms)
            return -1;
        wbn_wait_step();
    }
    return 0;
}

uint32_t wbn_conn_room(const wbn_conn *c)
{
    if (!c->pcb)
        return 0;
    uint32_t room = tcp_sndbuf(c->pcb);
    return room > 64u ? room - 64u : 0; /* a record's header and tag */
}
