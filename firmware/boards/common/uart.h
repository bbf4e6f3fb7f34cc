/*
 * The protocol UART's transport and the HAL clock shared by the boards. Reception is
 * interrupt-driven: the board's receive interrupt handler (uart_irq_handler, in its
 * board_irq_vectors) puts every byte into board_uart_rx, and uart_read takes them from
 * there, so bytes that arrive while an application call keeps the main loop busy (up
 * to 1,000,000 fuel, tens of ms) wait in the ring instead of overrunning the UART's one
 * or two bytes of buffer. Transmission goes through the transmit ring of uart_tx.h,
 * drained by the main loop (no interrupt): a board defines uart_tx_ready() and
 * uart_tx_byte() and includes this file once. The receive ring's counters reach the device
 * runtime through uart_rx_stats (wbd_transport.rx_stats), which logs them, and the
 * transmit ring's room through uart_tx_free (wbd_transport.tx_room).
 */
#ifndef WB_UART_H
#define WB_UART_H

#include "uart_tx.h"

/* What the waits do between two looks at the clock or the ring: sleep until the next
 * interrupt (SysTick wakes the core every ms, the UART on every byte). A board whose
 * SysTick stops while the core sleeps (nRF52) defines BOARD_IDLE() as nothing first. */
#ifndef BOARD_IDLE
#define BOARD_IDLE() __asm__ volatile("wfi")
#endif

uart_ring board_uart_rx;
static uart_tx_ring board_uart_tx;

/* One step of a wait: sends what is queued; sleeps until the next interrupt only when
 * nothing is left to send (the UART raises none when it can take a byte). */
static void uart_wait_step(void)
{
    uart_tx_pump(&board_uart_tx, uart_tx_ready, uart_tx_byte);
    if (!uart_tx_idle(&board_uart_tx))
        return;
    /* Interrupts masked between the look and the WFI: a byte that arrives in between
     * still wakes the core (WFI wakes on a pending interrupt even when masked), and its
     * handler runs as soon as they are unmasked. */
    __asm__ volatile("cpsid i" ::: "memory");
    if (uart_ring_empty(&board_uart_rx))
        BOARD_IDLE();
    __asm__ volatile("cpsie i" ::: "memory");
}

/* Waits up to timeout_ms for the first byte, then returns what the ring holds (up to cap). */
static int uart_read(void *ctx, uint8_t *buf, uint32_t cap, uint32_t timeout_ms)
{
    (void)ctx;
    uint32_t start = (uint32_t)board_millis(); /* 32 bits: a wait is far below 49 days */
    while (uart_ring_empty(&board_uart_rx) && (uint32_t)board_millis() - start < timeout_ms)
        uart_wait_step();
    uart_tx_pump(&board_uart_tx, uart_tx_ready, uart_tx_byte);
    return (int)uart_ring_read(&board_uart_rx, buf, cap);
}

static int uart_write(void *ctx, const uint8_t *buf, uint32_t len)
{
    (void)ctx;
    uart_tx_write(&board_uart_tx, buf, len, uart_tx_ready, uart_tx_byte);
    return 0;
}

static uint32_t uart_tx_free(void *ctx)
{
    (void)ctx;
    uart_tx_pump(&board_uart_tx, uart_tx_ready, uart_tx_byte);
    return uart_tx_room(&board_uart_tx);
}

static void uart_rx_stats(void *ctx, wbd_rx_stats *out)
{
    (void)ctx;
    out->lost = atomic_load_explicit(&board_uart_rx.lost, memory_order_relaxed);
    out->peak = atomic_load_explicit(&board_uart_rx.peak, memory_order_relaxed);
    out->size = UART_RING_SIZE;
}

static uint64_t hal_now(void *ctx)
{
    (void)ctx;
    return board_millis();
}

static void hal_delay(void *ctx, uint32_t ms)
{
    (void)ctx;
    uint64_t end = board_millis() + ms;
    while (board_millis() < end)
        uart_wait_step();
}

#endif
