/*
 * Host tests of the UART receive ring (boards/common/uart_ring.h), built with an 8-byte
 * ring: empty, fill, full (bytes counted lost), the peak, wraparound of the slots and of
 * the 32-bit counters, partial reads; then a two-thread hammer, one producer (standing
 * in for the interrupt handler) and one consumer, checking that every byte arrives once
 * and in order.
 */
#define WB_UART_RX_RING 8
#include "../boards/common/uart_ring.h"

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

int main(void)
{
    test_empty_full();
    test_wraparound();
    test_hammer();
    printf("uart ring: %d checks, %d failures\n", checks, failures);
    return failures != 0;
}
