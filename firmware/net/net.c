/*
 * The network image's bring-up and its transport to the gateway (net/net.h): the
 * LAN9118 under lwIP with QEMU user networking's guest address, the console on the UART,
 * and the wbd_transport over one TLS connection that is opened when the device runtime
 * says Hello and reported closed (read < 0) once when it breaks.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../boards/common/board.h"
#include "lan9118.h"
#include "lwip/etharp.h"
#include "lwip/init.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "mbedtls/memory_buffer_alloc.h"
#include "net.h"
#include "netif/ethernet.h"

#define CONNECT_MS 20000u /* TCP connect and TLS handshake */
#define WRITE_MS 10000u

/* Mbed TLS's heap: the TLS context's 16 KiB input and 4 KiB output records, certificates,
 * ECP temporaries (peak logged after each handshake). */
static uint8_t tls_heap[64 * 1024] __attribute__((aligned(8)));

static struct netif nif;
static uint32_t rx_dropped;
static uint8_t frame[LAN9118_MAX_FRAME + 2] __attribute__((aligned(4)));

uint32_t wbn_now(void) { return (uint32_t)board_millis(); }
u32_t sys_now(void) { return (u32_t)board_millis(); }

uint64_t wbn_clocks(void)
{
    for (;;) {
        uint64_t ms = board_millis();
        uint32_t v = *(volatile uint32_t *)0xe000e018u; /* SYST_CVR: counts down from 24999 */
        if (board_millis() == ms && !(*(volatile uint32_t *)0xe000e010u & (1u << 16)))
            return ms * 25000u + (24999u - v);
    }
}

void wbn_log(const char *fmt, ...)
{
    char line[200];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 2, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 3)
        n = (int)sizeof line - 3;
    line[n++] = '\r';
    line[n++] = '\n';
    board_uart.write(board_uart.ctx, (const uint8_t *)"net: ", 5);
    board_uart.write(board_uart.ctx, (const uint8_t *)line, (uint32_t)n);
}

void *wbn_calloc_none(size_t n, size_t size)
{
    (void)n, (void)size;
    return NULL;
}
void wbn_free_none(void *p) { (void)p; }

/* picolibc's stderr, which Mbed TLS's heap checks write to: the console. */
static int console_putc(char ch, FILE *f)
{
    (void)f;
    board_uart.write(board_uart.ctx, (const uint8_t *)&ch, 1);
    return (unsigned char)ch;
}
static FILE console = FDEV_SETUP_STREAM(console_putc, NULL, NULL, _FDEV_SETUP_WRITE);
FILE *const stderr = &console;

/* exit(), which a corrupted Mbed TLS heap calls: reset. */
void _exit(int code);
void _exit(int code)
{
    (void)code;
    cm_reset();
}

void wbn_assert(const char *msg)
{
    wbn_log("lwIP assertion: %s", msg);
    cm_reset();
}

/* lwIP's pbuf chain as lan9118_send's parts. */
static const uint8_t *next_part(void *ctx, uint32_t *n)
{
    struct pbuf **q = ctx;
    if (!*q)
        return NULL;
    const uint8_t *p = (*q)->payload;
    *n = (*q)->len;
    *q = (*q)->next;
    return p;
}

static err_t linkoutput(struct netif *n, struct pbuf *p)
{
    (void)n;
    for (int tries = 0; tries < 1000; tries++) { /* a full TX FIFO drains in microseconds */
        struct pbuf *q = p;
        if (lan9118_send(p->tot_len, next_part, &q) == 0)
            return ERR_OK;
    }
    return ERR_IF;
}

static err_t nif_init(struct netif *n)
{
    n->name[0] = 'e';
    n->name[1] = '0';
    n->output = etharp_output;
    n->linkoutput = linkoutput;
    n->mtu = 1500;
    n->hwaddr_len = ETH_HWADDR_LEN;
    n->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET | NETIF_FLAG_LINK_UP;
    return ERR_OK;
}

void wbn_poll(void)
{
    uint32_t len;
    while ((len = lan9118_recv(frame, sizeof frame, &rx_dropped)) != 0) {
        struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_POOL);
        if (!p) {
            rx_dropped++;
            continue;
        }
        pbuf_take(p, frame, (u16_t)len);
        if (nif.input(p, &nif) != ERR_OK)
            pbuf_free(p);
    }
    sys_check_timeouts();
}

void wbn_wait_step(void)
{
    wbn_poll();
    board_watchdog_feed();
    __asm__ volatile("wfi"); /* SysTick wakes the core every ms */
}

/* ---- the transport ---- */

static wbn_conn session;
static mbedtls_ssl_config session_conf;
static int lost; /* the connection broke: read says so once, before a new one is made */

static void drop(wbn_conn *c, const char *why)
{
    if (c->state == WBN_DOWN)
        return;
    wbn_log("gateway: %s", why);
    wbn_conn_close(c);
    lost = 1;
}

static int t_read(void *ctx, uint8_t *buf, uint32_t cap, uint32_t timeout_ms)
{
    wbn_conn *c = ctx;
    uint32_t start = wbn_now();
    for (;;) {
        wbn_poll();
        if (c->state == WBN_UP) {
            int r = wbn_conn_read(c, buf, cap);
            if (r > 0)
                return r;
            if (r < 0)
                drop(c, "connection closed");
        }
        if (lost) {
            lost = 0;
            return -1;
        }
        if (wbn_now() - start >= timeout_ms)
            return 0;
        board_watchdog_feed();
        __asm__ volatile("wfi");
    }
}

static int t_write(void *ctx, const uint8_t *buf, uint32_t len)
{
    wbn_conn *c = ctx;
    if (c->state != WBN_UP) {
        if (lost) /* the device has not been told yet: its frame belongs to the old session */
            return -1;
        char why[120];
        if (wbn_conn_open(c, &session_conf, wbn_cfg->port, CONNECT_MS, why, sizeof why)) {
            wbn_log("gateway %u.%u.%u.%u:%u: %s", wbn_cfg->ip[0], wbn_cfg->ip[1], wbn_cfg->ip[2], wbn_cfg->ip[3],
                    wbn_cfg->port, why);
            return -1;
        }
        size_t cur = 0, peak = 0, cnt = 0;
        mbedtls_memory_buffer_alloc_max_get(&peak, &cnt);
        mbedtls_memory_buffer_alloc_cur_get(&cur, &cnt);
        wbn_log("gateway: connected, %s, %s; handshake %lu core clocks of CPU; TLS heap %u B in use, peak %u B; "
                "%lu ethernet interrupts",
                mbedtls_ssl_get_version(&c->ssl), mbedtls_ssl_get_ciphersuite(&c->ssl), (unsigned long)c->hs_clocks,
                (unsigned)cur, (unsigned)peak, (unsigned long)lan9118_irqs);
    }
    if (wbn_conn_write(c, buf, len, WRITE_MS)) {
        drop(c, "connection lost while sending");
        return -1;
    }
    return 0;
}

static uint32_t t_room(void *ctx)
{
    const wbn_conn *c = ctx;
    return c->state == WBN_UP ? wbn_conn_room(c) : 0xffffu; /* no session: frames are dropped anyway */
}

static const wbd_transport tls_transport = {&session, t_read, t_write, NULL, t_room};

static mbedtls_pk_context dev_key;
static mbedtls_x509_crt dev_cert;

static void halt(const char *why)
{
    for (;;) {
        wbn_log("%s", why);
        uint32_t t = wbn_now();
        while (wbn_now() - t < 10000u) {
            board_watchdog_feed();
            __asm__ volatile("wfi");
        }
    }
}

const wbd_transport *wbn_start(const char **device_id)
{
    mbedtls_memory_buffer_alloc_init(tls_heap, sizeof tls_heap);
    int have_cert = 0;
    if (wbn_ident_start(&dev_key, &dev_cert, &have_cert))
        halt("not provisioned for the network (firmware/provision writes .wb_net): nothing to do");
    *device_id = wbn_cfg->id;

    uint8_t mac[6];
    if (lan9118_init(mac))
        halt("no LAN9118 at 0x40200000: run QEMU with a network device (-nic user,...)");
    lan9118_irq_on();
    cm_irq_enable(LAN9118_IRQ);
    lwip_init();
    ip4_addr_t ip, mask, gw;
    IP4_ADDR(&ip, 10, 0, 2, 15); /* QEMU user networking (slirp): the guest, its /24, the host side */
    IP4_ADDR(&mask, 255, 255, 255, 0);
    IP4_ADDR(&gw, 10, 0, 2, 2);
    memcpy(nif.hwaddr, mac, 6);
    netif_add(&nif, &ip, &mask, &gw, NULL, nif_init, ethernet_input);
    netif_set_default(&nif);
    netif_set_up(&nif);
    wbn_log("up: %02x:%02x:%02x:%02x:%02x:%02x 10.0.2.15, gateway %u.%u.%u.%u port %u, enrollment port %u",
            mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], wbn_cfg->ip[0], wbn_cfg->ip[1], wbn_cfg->ip[2],
            wbn_cfg->ip[3], wbn_cfg->port, wbn_cfg->enroll_port);

    while (!have_cert) {
        int r = wbn_enroll(&dev_key, &dev_cert);
        if (r == 0) {
            have_cert = 1;
            break;
        }
        if (r == -2) /* the token was refused: asking again spends the gateway's patience, not ours */
            halt("enroll: refused; provision a new bootstrap token");
        uint32_t t = wbn_now(); /* the gateway may not be up yet: try again in 5 s */
        while (wbn_now() - t < 5000u)
            wbn_wait_step();
    }
    if (wbn_tls_config(&session_conf, &dev_cert, &dev_key))
        halt("TLS configuration failed");
    return &tls_transport;
}
