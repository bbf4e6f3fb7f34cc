/*
 * Polled UART read/write with timeouts shared by the boards. A board defines
 * uart_rx_ready(), uart_rx_byte(), uart_tx_ready() and uart_tx_byte() and includes
 * this file once. A read waits up to the timeout for the first byte, then keeps
 * collecting while bytes follow within ~2 ms, so a frame arrives in few reads.
 * (Polling is lossless under QEMU, whose UART models hold input while the data
 * register is full; silicon at high baud rates wants an RX interrupt and a ring.)
 */
#ifndef WB_UART_POLL_H
#define WB_UART_POLL_H

/* What hal_delay does between two looks at the clock: sleep until the next interrupt
 * (SysTick wakes the core every ms). A board whose SysTick stops while the core sleeps
 * (nRF52) defines BOARD_IDLE() as nothing before including this file. */
#ifndef BOARD_IDLE
#define BOARD_IDLE() __asm__ volatile("wfi")
#endif

static int uart_read(void *ctx, uint8_t *buf, uint32_t cap, uint32_t timeout_ms)
{
    (void)ctx;
    uint64_t start = board_millis(), last = 0;
    uint32_t n = 0;
    while (n < cap) {
        if (uart_rx_ready()) {
            buf[n++] = uart_rx_byte();
            last = board_millis();
            continue;
        }
        uint64_t t = board_millis();
        if (n ? t - last >= 2 : t - start >= timeout_ms)
            break;
    }
    return (int)n;
}

static int uart_write(void *ctx, const uint8_t *buf, uint32_t len)
{
    (void)ctx;
    for (uint32_t i = 0; i < len; i++) {
        while (!uart_tx_ready()) {
        }
        uart_tx_byte(buf[i]);
    }
    return 0;
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
    while (board_millis() < end) {
        BOARD_IDLE();
    }
}

#endif
