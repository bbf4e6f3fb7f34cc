/*
 * Host tests of the UART receive ring (boards/common/uart_ring.h), built with an 8-byte
 * ring: empty, fill, full (bytes counted lost), the peak, wraparound of the slots and of
 * the 32-bit counters, partial reads; then a two-thread hammer, one producer (standing
 * in for the interrupt handler) and one consumer, checking that every byte arrives once
 * and in order. Then the transmit ring (boards/common/uart_tx.h), 16 bytes, against a
 * simulated UART that takes a byte only every few looks.
 */
#define WB_UART_RX_RING 8
#define WB_UART_TX_RING 16
#include "../boards/common/uart_ring.h"
#include "../boards/common/uart_tx.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static uint32_t lost(uart_ring *r) { return atomic_load(&r->lost); }
static uint32_t peak(uart_ring *r) { return atomic_load(&r->peak); }

static void test_empty_full(void)
{
    static uart_ring r;
    uint8_t buf[16];
    CHECK(uart_ring_empty(&r), "new ring is empty");
    CHECK(uart_ring_read(&r, buf, sizeof buf) == 0, "read from an empty ring");
    for (int i = 0; i < 8; i++)
        uart_ring_put(&r, (uint8_t)(10 + i));
    CHECK(!uart_ring_empty(&r) && lost(&r) == 0 && peak(&r) == 8, "8 bytes fit: lost %u peak %u", lost(&r), peak(&r));
    uart_ring_put(&r, 99); /* full: dropped and counted */
    uart_ring_put(&r, 98);
    CHECK(lost(&r) == 2, "2 bytes over a full ring counted lost, got %u", lost(&r));
    CHECK(uart_ring_read(&r, buf, 3) == 3 && buf[0] == 10 && buf[2] == 12, "partial read, first bytes in order");
    CHECK(uart_ring_read(&r, buf, sizeof buf) == 5 && buf[0] == 13 && buf[4] == 17, "the rest, without the dropped ones");
    CHECK(uart_ring_empty(&r) && uart_ring_read(&r, buf, sizeof buf) == 0, "empty again");
    uart_ring_lost(&r, 3); /* the hardware's overrun flag */
    CHECK(lost(&r) == 5 && peak(&r) == 8, "overrun adds to lost (%u), peak kept (%u)", lost(&r), peak(&r));
}

/* Slots wrap every 8 bytes, the counters at 2^32: start just below it. */
static void test_wraparound(void)
{
    static uart_ring r;
    atomic_store(&r.head, UINT32_MAX - 5);
    atomic_store(&r.tail, UINT32_MAX - 5);
    uint8_t buf[8];
    uint32_t next_put = 0, next_get = 0;
    for (int round = 0; round < 40; round++) {
        int n = 1 + round % 8;
        for (int i = 0; i < n; i++)
            uart_ring_put(&r, (uint8_t)next_put++);
        uint32_t got = uart_ring_read(&r, buf, (uint32_t)(round % 3 == 0 ? 8 : n));
        CHECK(got == (uint32_t)n, "round %d: read %u of %d", round, got, n);
        for (uint32_t i = 0; i < got; i++)
            CHECK(buf[i] == (uint8_t)next_get++, "round %d: byte %u out of order", round, i);
    }
    CHECK(atomic_load(&r.head) < 1000, "head wrapped past 2^32 (%u)", atomic_load(&r.head));
    CHECK(uart_ring_empty(&r) && lost(&r) == 0 && peak(&r) == 8, "lost %u peak %u", lost(&r), peak(&r));
    /* full across the counter wrap */
    atomic_store(&r.head, UINT32_MAX - 2);
    atomic_store(&r.tail, UINT32_MAX - 2);
    for (int i = 0; i < 9; i++)
        uart_ring_put(&r, (uint8_t)i);
    CHECK(lost(&r) == 1, "full across the wrap: 1 lost, got %u", lost(&r));
    CHECK(uart_ring_read(&r, buf, 8) == 8 && buf[0] == 0 && buf[7] == 7, "8 bytes back across the wrap");
}

#define HAMMER_BYTES 2000000u
static uart_ring hammer;

static void *producer(void *arg)
{
    (void)arg;
    for (uint32_t i = 0; i < HAMMER_BYTES; i++) {
        while (atomic_load_explicit(&hammer.head, memory_order_relaxed) -
                   atomic_load_explicit(&hammer.tail, memory_order_acquire) == UART_RING_SIZE) {
        } /* a UART cannot wait; this one does, so that the order check sees every byte */
        uart_ring_put(&hammer, (uint8_t)(i * 7u));
    }
    return NULL;
}

static void test_hammer(void)
{
    pthread_t t;
    CHECK(pthread_create(&t, NULL, producer, NULL) == 0, "start the producer");
    uint8_t buf[5];
    uint32_t got = 0, bad = 0;
    while (got < HAMMER_BYTES) {
        uint32_t n = uart_ring_read(&hammer, buf, 1 + got % 5);
        for (uint32_t i = 0; i < n; i++, got++)
            bad += buf[i] != (uint8_t)(got * 7u);
    }
    pthread_join(t, NULL);
    CHECK(bad == 0, "hammer: %u of %u bytes out of order", bad, HAMMER_BYTES);
    CHECK(lost(&hammer) == 0 && uart_ring_empty(&hammer), "hammer: lost %u", lost(&hammer));
}

/* A UART that is ready at every `every`-th look (0: never) and records what it sends. */
static uint32_t looks, every, sent_n;
static uint8_t sent[4096];
static int sim_ready(void) { return every && ++looks % every == 0; }
static void sim_byte(uint8_t b) { sent[sent_n++ % sizeof sent] = b; }

static void test_tx(void)
{
    static uart_tx_ring r;
    uint8_t frame[40];
    for (int i = 0; i < 40; i++)
        frame[i] = (uint8_t)(i + 1);
    CHECK(uart_tx_room(&r) == 16 && uart_tx_idle(&r), "new transmit ring: 16 bytes free");

    every = 0; /* a UART that takes nothing: what fits is queued, nothing waits */
    uart_tx_write(&r, frame, 10, sim_ready, sim_byte);
    CHECK(uart_tx_room(&r) == 6 && sent_n == 0 && !uart_tx_idle(&r), "10 bytes queued, room %u", uart_tx_room(&r));
    uart_tx_pump(&r, sim_ready, sim_byte);
    CHECK(uart_tx_room(&r) == 6, "a pump with the UART busy changes nothing");

    every = 3; /* a frame larger than the room waits for the UART, and goes out whole, in order */
    uart_tx_write(&r, frame + 10, 30, sim_ready, sim_byte);
    for (int i = 0; i < 100 && !uart_tx_idle(&r); i++)
        uart_tx_pump(&r, sim_ready, sim_byte);
    int in_order = sent_n == 40;
    for (uint32_t i = 0; i < sent_n && in_order; i++)
        in_order = sent[i] == frame[i];
    CHECK(in_order && uart_tx_room(&r) == 16, "40 bytes sent in order through a 16-byte ring (%u sent)", sent_n);

    /* slots wrap every 16 bytes, the counters at 2^32 */
    r.head = r.tail = UINT32_MAX - 4;
    sent_n = 0;
    every = 1;
    uart_tx_write(&r, frame, 40, sim_ready, sim_byte);
    CHECK(sent_n == 40 && sent[39] == 40 && uart_tx_idle(&r) && r.head == 35, "across 2^32: %u sent, head %u", sent_n,
          r.head);
}

int main(void)
{
    test_empty_full();
    test_wraparound();
    test_hammer();
    test_tx();
    printf("uart ring: %d checks, %d failures\n", checks, failures);
    return failures != 0;
}
