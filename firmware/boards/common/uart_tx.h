/*
 * Transmit ring of the protocol UART. Frames are queued here and moved into the UART
 * whenever it takes a byte: at every write and all the time the main loop waits (for
 * input, or in an app's sleep_ms), so the device never spins on a busy UART for an app's
 * Log or Telemetry frame; the device runtime sends those only when uart_tx_room says
 * they fit, and drops (and counts) them otherwise (device.h, tx_room). Protocol frames
 * wait for room, which the UART frees at its baud rate.
 *
 * Both ends run in the main loop (no interrupt), so the indices need no atomics. head and
 * tail count bytes ever queued and sent (free-running, wrapping at 2^32); the size is a
 * power of two, a divisor of 2^32, so index % size stays right across the wrap.
 *
 * Header only (static inline), so the host unit test (tests/uart_ring_tests.c) runs this
 * exact code with a simulated UART.
 */
#ifndef WB_UART_TX_H
#define WB_UART_TX_H

#include <stdint.h>

#ifndef WB_UART_TX_RING
#define WB_UART_TX_RING 1024 /* bytes; set per board in boards/<board>/board.mk */
#endif
#define UART_TX_SIZE ((uint32_t)(WB_UART_TX_RING))
_Static_assert(UART_TX_SIZE >= 2 && (UART_TX_SIZE & (UART_TX_SIZE - 1)) == 0,
               "WB_UART_TX_RING must be a power of two");

typedef struct {
    uint32_t head; /* bytes queued */
    uint32_t tail; /* bytes handed to the UART */
    uint8_t buf[UART_TX_SIZE];
} uart_tx_ring;

/* The UART: whether it takes a byte now, and taking one. */
typedef int (*uart_tx_ready_fn)(void);
typedef void (*uart_tx_byte_fn)(uint8_t b);

static inline uint32_t uart_tx_room(const uart_tx_ring *r) { return UART_TX_SIZE - (r->head - r->tail); }

static inline int uart_tx_idle(const uart_tx_ring *r) { return r->head == r->tail; }

/* Hands queued bytes to the UART while it takes them; never waits. */
static inline void uart_tx_pump(uart_tx_ring *r, uart_tx_ready_fn ready, uart_tx_byte_fn put)
{
    while (r->head != r->tail && ready()) {
        put(r->buf[r->tail % UART_TX_SIZE]);
        r->tail++;
    }
}

/* Queues len bytes, handing bytes to the UART while the ring is full (a protocol frame
 * must go out whole: the wait lasts as long as the UART needs for the excess). */
static inline void uart_tx_write(uart_tx_ring *r, const uint8_t *p, uint32_t len, uart_tx_ready_fn ready,
                                 uart_tx_byte_fn put)
{
    for (uint32_t i = 0; i < len; i++) {
        while (uart_tx_room(r) == 0)
            uart_tx_pump(r, ready, put);
        r->buf[r->head % UART_TX_SIZE] = p[i];
        r->head++;
    }
    uart_tx_pump(r, ready, put);
}

#endif
