/*
 * Arm MPS2 AN386 board support (QEMU mps2-an386): CMSDK APB UART0 at 0x40004000
 * speaks the protocol (receive interrupt UART0 RX, NVIC line 0, into the ring of
 * boards/common/uart.h; polled transmit), the two user LEDs are the FPGA I/O LED register
 * (0x40028000, modelled by QEMU), GPIO pins 0..15 are CMSDK GPIO0 at 0x40010000, the
 * CMSDK watchdog at 0x40008000 raises the NMI.
 */
#include "../common/board.h"
#include "../common/mpu.h"

#define REG(a) (*(volatile uint32_t *)(a))

#define CORE_HZ 25000000u

#define UART0 0x40004000u
#define UART_DATA (UART0 + 0x00u)
#define UART_STATE (UART0 + 0x04u)
#define UART_CTRL (UART0 + 0x08u)
#define UART_INTSTATUS (UART0 + 0x0cu) /* read: status; write 1: clear */
#define UART_BAUDDIV (UART0 + 0x10u)
#define STATE_TXFULL (1u << 0)
#define STATE_RXFULL (1u << 1)
#define STATE_RXOVERRUN (1u << 3) /* write 1: clear */
#define CTRL_TXEN (1u << 0)
#define CTRL_RXEN (1u << 1)
#define CTRL_RXINTEN (1u << 3)
#define INT_RX (1u << 1)
#define UART0_RX_IRQ 0u /* AN386: UART0 RX 0, TX 1, UART0-2 overrun combined 12 */

/* CMSDK APB watchdog (QEMU models it, clocked at the 25 MHz system clock): its interrupt is
 * the NMI, raised when the counter first reaches 0; a second expiry would reset. The NMI
 * handler (fault.c) records it and resets at once. Registers are locked between writes. */
#define WDOG 0x40008000u
#define WDOG_LOAD (WDOG + 0x00u)
#define WDOG_CONTROL (WDOG + 0x08u) /* INTEN 1, RESEN 2 */
#define WDOG_INTCLR (WDOG + 0x0cu)  /* any write: clear the interrupt, reload the counter */
#define WDOG_RIS (WDOG + 0x10u)
#define WDOG_LOCK (WDOG + 0xc00u)
#define WDOG_UNLOCK 0x1acce551u

#define FPGAIO_LED 0x40028000u

#define GPIO0 0x40010000u
#define GPIO_DATA (GPIO0 + 0x00u)
#define GPIO_DATAOUT (GPIO0 + 0x04u)
#define GPIO_OUTENSET (GPIO0 + 0x10u)

const char board_name[] = "mps2-an386";
const uint32_t board_ram = 4u * 1024u * 1024u, board_flash = 4u * 1024u * 1024u;

static int uart_tx_ready(void) { return (REG(UART_STATE) & STATE_TXFULL) == 0; }
static void uart_tx_byte(uint8_t b) { REG(UART_DATA) = b; }

#include "../common/uart.h"

/* UART0 RX: the interrupt status is cleared first, so a byte that arrives after this
 * point raises it again. The overrun flag is read here rather than on its own (combined)
 * interrupt line: it can only be set while a byte waits, which raised this one. */
void uart_irq_handler(void)
{
    REG(UART_INTSTATUS) = INT_RX;
    uint32_t st = REG(UART_STATE);
    if (st & STATE_RXOVERRUN) {
        REG(UART_STATE) = STATE_RXOVERRUN;
        uart_ring_lost(&board_uart_rx, 1);
    }
    if (st & STATE_RXFULL)
        uart_ring_put(&board_uart_rx, (uint8_t)REG(UART_DATA));
}

/* Vector table entries 16.. (external interrupts), after startup.c's. The network image
 * (WB_NET) adds the LAN9118's, external interrupt 13 (net/lan9118.h). */
#ifdef WB_NET
#include "../../net/lan9118.h"
__attribute__((section(".vectors.irq"), used)) const void *const board_irq_vectors[LAN9118_IRQ + 1] = {
    [UART0_RX_IRQ] = (void *)uart_irq_handler,
    [LAN9118_IRQ] = (void *)lan9118_irq_handler,
};
#else
__attribute__((section(".vectors.irq"), used)) const void *const board_irq_vectors[UART0_RX_IRQ + 1] = {
    [UART0_RX_IRQ] = (void *)uart_irq_handler,
};
#endif

static int led_set(void *ctx, int32_t led, int on)
{
    (void)ctx;
    if (led < 0 || led > 1)
        return -1;
    uint32_t v = REG(FPGAIO_LED);
    REG(FPGAIO_LED) = on ? v | (1u << led) : v & ~(1u << led);
    return 0;
}

static int gpio_write(void *ctx, int32_t pin, int high)
{
    (void)ctx;
    if (pin < 0 || pin > 15)
        return -1;
    REG(GPIO_OUTENSET) = 1u << pin;
    uint32_t v = REG(GPIO_DATAOUT);
    REG(GPIO_DATAOUT) = high ? v | (1u << pin) : v & ~(1u << pin);
    return 0;
}

static int gpio_read(void *ctx, int32_t pin, int *high)
{
    (void)ctx;
    if (pin < 0 || pin > 15)
        return -1;
    *high = (int)((REG(GPIO_DATA) >> pin) & 1u);
    return 0;
}

static int sensor_read(void *ctx, int32_t sensor, int32_t *milli)
{
    (void)ctx, (void)sensor, (void)milli;
    return -1; /* no sensors on the MPS2 */
}

#ifdef WB_FAULT_INJECT
#include "../common/inject.h"
/* The fault test image: sensors WB_INJECT_* provoke faults (inject.c). */
static int sensor_or_fault(void *ctx, int32_t sensor, int32_t *milli)
{
    return wb_inject(sensor, milli) ? sensor_read(ctx, sensor, milli) : 0;
}
#define sensor_read sensor_or_fault
#endif

const wbd_hal board_hal = {0,         hal_now,    hal_delay,          gpio_write,
                           gpio_read, led_set,    sensor_read,        &wb_mpu_code_guard,
                           wb_mpu_release};
/* ctx is the protocol UART's base address (not used by the driver; tests read it). */
const wbd_transport board_uart = {(void *)UART0, uart_read, uart_write, uart_rx_stats, uart_tx_free};

const wb_reg_write board_wdt_start[] = {
    {WDOG_LOCK, WDOG_UNLOCK, 4},
    {WDOG_LOAD, CORE_HZ / 1000u * WB_WATCHDOG_MS, 4},
    {WDOG_CONTROL, 3u, 4}, /* INTEN | RESEN */
    {WDOG_LOCK, 0, 4},
    {0, 0, 0},
};
const wb_reg_write board_wdt_feed[] = {
    {WDOG_LOCK, WDOG_UNLOCK, 4},
    {WDOG_INTCLR, 1u, 4},
    {WDOG_LOCK, 0, 4},
    {0, 0, 0},
};

/* The watchdog is the only NMI source of this board. */
uint32_t board_nmi_cause(void)
{
    return REG(WDOG_RIS) & 1u ? WBD_CAUSE_WATCHDOG : WBD_CAUSE_NMI;
}

void board_init(void)
{
    REG(UART_BAUDDIV) = CORE_HZ / 115200u; /* QEMU drops data while BAUDDIV < 16 */
    REG(UART_CTRL) = CTRL_TXEN | CTRL_RXEN | CTRL_RXINTEN;
    cm_irq_enable(UART0_RX_IRQ);
    REG(FPGAIO_LED) = 0;
    cm_systick_start(CORE_HZ);
    wb_reg_writes(board_wdt_start);
}
