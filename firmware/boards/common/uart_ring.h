/*
 * Receive ring of the protocol UART: a lock-free single-producer / single-consumer byte
 * queue. The producer is the UART's receive interrupt handler (uart_ring_put,
 * uart_ring_lost), the consumer is the main loop (uart_ring_read). No lock and no
 * interrupt masking: each index is written by one side only.
 *
 * head and tail count the bytes ever put and taken (free-running, they wrap at 2^32), so
 * head - tail is the fill level and all WB_UART_RX_RING bytes are usable. The size is a
 * power of two, a divisor of 2^32, so index % size stays right across the wrap.
 * Ordering: the producer writes the byte, then publishes head with a release store; the
 * consumer reads head with an acquire load before it reads the bytes, and hands the
 * slots back with a release store of tail, which the producer reads with an acquire
 * load before it reuses them. On the Cortex-M4 (one core, interrupts) that is a DMB per
 * put and per read; what matters most there is that the compiler may not move the byte
 * accesses across the index accesses.
 *
 * Header only (static inline), so the host unit test (tests/uart_ring_tests.c) runs this
 * exact code.
 */
#ifndef WB_UART_RING_H
#define WB_UART_RING_H

#include <stdatomic.h>
#include <stdint.h>

#ifndef WB_UART_RX_RING
#define WB_UART_RX_RING 1024 /* bytes; set per board in boards/<board>/board.mk */
#endif
#define UART_RING_SIZE ((uint32_t)(WB_UART_RX_RING))
_Static_assert(UART_RING_SIZE >= 2 && (UART_RING_SIZE & (UART_RING_SIZE - 1)) == 0,
               "WB_UART_RX_RING must be a power of two");

typedef struct {
    _Atomic uint32_t head; /* bytes put; written by the producer only */
    _Atomic uint32_t tail; /* bytes taken; written by the consumer only */
    _Atomic uint32_t lost; /* bytes dropped (ring full, hardware overrun); producer only */
    _Atomic uint32_t peak; /* most bytes held at once; producer only */
    uint8_t buf[UART_RING_SIZE];
} uart_ring;

/* Producer: n more bytes lost (ring full, or the UART's overrun flag). */
static inline void uart_ring_lost(uart_ring *r, uint32_t n)
{
    atomic_store_explicit(&r->lost, atomic_load_explicit(&r->lost, memory_order_relaxed) + n, memory_order_relaxed);
}

/* Producer: queues b, or counts it lost when the ring is full. */
static inline void uart_ring_put(uart_ring *r, uint8_t b)
{
    uint32_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint32_t n = h - atomic_load_explicit(&r->tail, memory_order_acquire);
    if (n >= UART_RING_SIZE) {
        uart_ring_lost(r, 1);
        return;
    }
    r->buf[h % UART_RING_SIZE] = b;
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
    if (n + 1 > atomic_load_explicit(&r->peak, memory_order_relaxed))
        atomic_store_explicit(&r->peak, n + 1, memory_order_relaxed);
}

/* Consumer: 1 when no byte is held. */
static inline int uart_ring_empty(uart_ring *r)
{
    return atomic_load_explicit(&r->head, memory_order_relaxed) ==
           atomic_load_explicit(&r->tail, memory_order_relaxed);
}

/* Consumer: takes up to cap bytes into buf; returns how many. */
static inline uint32_t uart_ring_read(uart_ring *r, uint8_t *buf, uint32_t cap)
{
    uint32_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint32_t n = atomic_load_explicit(&r->head, memory_order_acquire) - t;
    if (n > cap)
        n = cap;
    for (uint32_t i = 0; i < n; i++)
        buf[i] = r->buf[(t + i) % UART_RING_SIZE];
    atomic_store_explicit(&r->tail, t + n, memory_order_release);
    return n;
}

#endif
