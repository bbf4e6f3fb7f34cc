/*
 * Arduino Nano 33 BLE board support (Nordic nRF52840, Cortex-M4F at 64 MHz), written for
 * Wasmbed from the register descriptions of the nRF52840 Product Specification:
 *
 * - UARTE0 at 0x40002000 speaks the protocol at 115200 8N1 on the header's TX (D0, P1.03)
 *   and RX (D1, P1.10) pins. The UART0 instance at the same address has plain RXD/TXD
 *   registers, but Renode's NRF52840_UART with easyDMA (emulation/platforms/
 *   arduino_nano_33_ble.repl) models only the EasyDMA registers, so the driver receives
 *   one byte per EasyDMA transfer: RXD.MAXCNT = 1, the ENDRX interrupt (UARTE0_UART0,
 *   NVIC line 2) takes the byte from rx_buf into the ring of boards/common/uart.h and
 *   STARTRX re-arms (bytes arriving meanwhile wait in the UARTE's 6-byte RX FIFO); the
 *   ERROR interrupt counts overruns. Each sent byte is one polled 1-byte EasyDMA
 *   transfer from RAM (tx_buf).
 * - The user LED ("L", D13) is P0.13, active high.
 * - GPIO pins 0..13 are the header's D0..D13; D0 and D1 carry the protocol UART and are
 *   refused.
 * - SysTick on the 64 MHz core clock counts milliseconds. It stops while the core sleeps
 *   (WFI), so this board waits busily (BOARD_IDLE) instead of sleeping.
 * - The high-frequency crystal (HFXO, 32 MHz) is started for an accurate baud rate; if
 *   it does not report started, the internal oscillator (HFINT) stays in use.
 * - The watchdog (WDT) counts the 32.768 kHz low-frequency clock, which starting it
 *   starts, and also while the core sleeps; it resets the chip when it expires, and
 *   POWER.RESETREAS.DOG tells the next boot.
 *
 * The image is linked at 0 and replaces the Arduino bootloader (flash it over SWD).
 */
#include "../common/board.h"
#include "../common/mpu.h"

#define REG(a) (*(volatile uint32_t *)(a))

#define CORE_HZ 64000000u

/* WDT and the reset reason */
#define WDT 0x40010000u
#define WDT_TASKS_START (WDT + 0x000u)
#define WDT_CRV (WDT + 0x504u)    /* timeout = (CRV + 1) / 32768 s */
#define WDT_RREN (WDT + 0x508u)   /* reload requests enabled: RR[0] only */
#define WDT_CONFIG (WDT + 0x50cu) /* SLEEP 1: keep counting while the core sleeps */
#define WDT_RR0 (WDT + 0x600u)
#define WDT_RELOAD 0x6e524635u
#define LFCLK_HZ 32768u
#define POWER_RESETREAS 0x40000400u
#define RESETREAS_DOG (1u << 1)

/* CLOCK */
#define CLOCK 0x40000000u
#define CLOCK_TASKS_HFCLKSTART (CLOCK + 0x000u)
#define CLOCK_EVENTS_HFCLKSTARTED (CLOCK + 0x100u)
#define HFXO_WAIT_LOOPS 2000000u /* ~100 ms at 64 MHz; start-up is typically < 1 ms */

/* UARTE0 */
#define UARTE0 0x40002000u
#define UARTE_TASKS_STARTRX (UARTE0 + 0x000u)
#define UARTE_TASKS_STARTTX (UARTE0 + 0x008u)
#define UARTE_EVENTS_ENDRX (UARTE0 + 0x110u)
#define UARTE_EVENTS_ENDTX (UARTE0 + 0x120u)
#define UARTE_EVENTS_ERROR (UARTE0 + 0x124u)
#define UARTE_INTENSET (UARTE0 + 0x304u)
#define UARTE_ERRORSRC (UARTE0 + 0x480u)
#define UARTE_ENABLE (UARTE0 + 0x500u)
#define UARTE_PSEL_TXD (UARTE0 + 0x50cu)
#define UARTE_PSEL_RXD (UARTE0 + 0x514u)
#define UARTE_BAUDRATE (UARTE0 + 0x524u)
#define UARTE_RXD_PTR (UARTE0 + 0x534u)
#define UARTE_RXD_MAXCNT (UARTE0 + 0x538u)
#define UARTE_TXD_PTR (UARTE0 + 0x544u)
#define UARTE_TXD_MAXCNT (UARTE0 + 0x548u)
#define UARTE_CONFIG (UARTE0 + 0x56cu)
#define ENABLE_UARTE 8u
#define INT_ENDRX (1u << 4)  /* event offset 0x110 */
#define INT_ERROR (1u << 9)  /* event offset 0x124 */
#define ERRORSRC_OVERRUN 1u
#define UARTE0_IRQ 2u        /* peripheral ID of 0x40002000 */
#define BAUD_115200 0x01d60000u /* UARTE value (115108 baud actual) */
#define PSEL(port, pin) ((uint32_t)(port) << 5 | (uint32_t)(pin)) /* CONNECT (bit 31) = 0 */

/* GPIO ports P0 and P1 */
#define GPIO_P0 0x50000000u
#define GPIO_P1 0x50000300u
#define GPIO_OUTSET 0x508u
#define GPIO_OUTCLR 0x50cu
#define GPIO_IN 0x510u
#define GPIO_PIN_CNF(n) (0x700u + 4u * (uint32_t)(n))
#define CNF_OUTPUT 0x1u           /* DIR output, input buffer connected */
#define CNF_INPUT 0x0u            /* DIR input, input buffer connected, no pull */
#define CNF_INPUT_PULLUP 0xcu     /* DIR input, input buffer connected, pull-up */
#define CNF_OUTPUT_NO_INPUT 0x3u  /* DIR output, input buffer disconnected */

#define UART_TX_PORT 1u
#define UART_TX_PIN 3u
#define UART_RX_PORT 1u
#define UART_RX_PIN 10u
#define LED_PORT 0u
#define LED_PIN 13u

const char board_name[] = "nrf52840-nano33ble";
const uint32_t board_ram = 256u * 1024u, board_flash = 1024u * 1024u;

static uint32_t port_base(uint8_t port) { return port ? GPIO_P1 : GPIO_P0; }

/* Arduino header D0..D13 -> nRF52840 port and pin (Nano 33 BLE schematic). */
static const struct {
    uint8_t port, pin;
} header[14] = {
    {1, 3},  {1, 10}, {1, 11}, {1, 12}, {1, 15}, {1, 13}, {1, 14},
    {0, 23}, {0, 21}, {0, 27}, {1, 2},  {1, 1},  {1, 8},  {0, 13},
};

/* EasyDMA reads and writes Data RAM only: both buffers are in .bss. The receive buffer
 * has room to spare so that a byte delivered past MAXCNT lands in it, not next to it. */
static volatile uint8_t rx_buf[4];
static volatile uint8_t tx_buf;
static volatile int tx_busy;

static void uarte_start_rx(void)
{
    REG(UARTE_RXD_PTR) = (uint32_t)(uintptr_t)rx_buf;
    REG(UARTE_RXD_MAXCNT) = 1;
    REG(UARTE_EVENTS_ENDRX) = 0;
    REG(UARTE_TASKS_STARTRX) = 1;
}

static int uart_tx_ready(void)
{
    if (tx_busy && REG(UARTE_EVENTS_ENDTX)) {
        REG(UARTE_EVENTS_ENDTX) = 0;
        tx_busy = 0;
    }
    return !tx_busy;
}

static void uart_tx_byte(uint8_t b)
{
    tx_buf = b;
    REG(UARTE_TXD_PTR) = (uint32_t)(uintptr_t)&tx_buf;
    REG(UARTE_TXD_MAXCNT) = 1;
    REG(UARTE_EVENTS_ENDTX) = 0;
    tx_busy = 1;
    REG(UARTE_TASKS_STARTTX) = 1;
}

#define BOARD_IDLE() \
    do {             \
    } while (0)
#include "../common/uart.h"

/* ENDRX: the byte is in rx_buf; take it and re-arm before anything else. ERROR: framing,
 * parity, overrun or break; overruns are counted. Each event is cleared and read back, so
 * the write has reached the peripheral before the handler returns (else the interrupt,
 * still asserted, would be taken again). */
void uart_irq_handler(void)
{
    if (REG(UARTE_EVENTS_ENDRX)) {
        uint8_t b = rx_buf[0];
        uarte_start_rx(); /* clears ENDRX, then re-arms for the next byte */
        (void)REG(UARTE_EVENTS_ENDRX);
        uart_ring_put(&board_uart_rx, b);
    }
    if (REG(UARTE_EVENTS_ERROR)) {
        uint32_t src = REG(UARTE_ERRORSRC);
        REG(UARTE_ERRORSRC) = src; /* write 1 to clear */
        REG(UARTE_EVENTS_ERROR) = 0;
        (void)REG(UARTE_EVENTS_ERROR);
        if (src & ERRORSRC_OVERRUN)
            uart_ring_lost(&board_uart_rx, 1);
    }
}

/* Vector table entries 16.. (external interrupts), after startup.c's. */
__attribute__((section(".vectors.irq"), used)) const void *const board_irq_vectors[UARTE0_IRQ + 1] = {
    [UARTE0_IRQ] = (void *)uart_irq_handler,
};

static int header_pin(int32_t pin)
{
    return pin >= 2 && pin <= 13; /* D0/D1 are the protocol UART */
}

static int led_set(void *ctx, int32_t led, int on)
{
    (void)ctx;
    if (led != 0)
        return -1;
    REG(port_base(LED_PORT) + (on ? GPIO_OUTSET : GPIO_OUTCLR)) = 1u << LED_PIN;
    return 0;
}

static int gpio_write(void *ctx, int32_t pin, int high)
{
    (void)ctx;
    if (!header_pin(pin))
        return -1;
    uint32_t base = port_base(header[pin].port), bit = 1u << header[pin].pin;
    REG(base + (high ? GPIO_OUTSET : GPIO_OUTCLR)) = bit;
    REG(base + GPIO_PIN_CNF(header[pin].pin)) = CNF_OUTPUT;
    return 0;
}

static int gpio_read(void *ctx, int32_t pin, int *high)
{
    (void)ctx;
    if (!header_pin(pin))
        return -1;
    uint32_t base = port_base(header[pin].port);
    volatile uint32_t *cnf = &REG(base + GPIO_PIN_CNF(header[pin].pin));
    if ((*cnf & 1u) == 0) /* not an output: make sure the input buffer is connected */
        *cnf = CNF_INPUT;
    *high = (int)((REG(base + GPIO_IN) >> header[pin].pin) & 1u);
    return 0;
}

static int sensor_read(void *ctx, int32_t sensor, int32_t *milli)
{
    (void)ctx, (void)sensor, (void)milli;
    return -1; /* the on-board sensors (IMU, ...) sit on I2C: not wired up yet */
}

const wbd_hal board_hal = {0,         hal_now, hal_delay,   gpio_write,        gpio_read,
                           led_set,   sensor_read, &wb_mpu_code_guard, wb_mpu_release};

/* CRV, RREN and CONFIG are writable until the start only. */
const wb_reg_write board_wdt_start[] = {
    {WDT_CRV, LFCLK_HZ / 1000u * WB_WATCHDOG_MS - 1u, 4},
    {WDT_RREN, 1u, 4},
    {WDT_CONFIG, 1u, 4},
    {WDT_TASKS_START, 1u, 4},
    {0, 0, 0},
};
const wb_reg_write board_wdt_feed[] = {{WDT_RR0, WDT_RELOAD, 4}, {0, 0, 0}};

uint32_t board_reset_flags(void)
{
    uint32_t r = REG(POWER_RESETREAS);
    REG(POWER_RESETREAS) = r; /* cleared by writing 1s: next time they are news */
    return r & RESETREAS_DOG ? WBD_CAUSE_WATCHDOG : 0;
}
/* ctx is the protocol UART's base address (not used by the driver; tests read it). */
const wbd_transport board_uart = {(void *)UARTE0, uart_read, uart_write, uart_rx_stats, uart_tx_free};

void board_init(void)
{
    REG(CLOCK_EVENTS_HFCLKSTARTED) = 0;
    REG(CLOCK_TASKS_HFCLKSTART) = 1;
    for (uint32_t i = 0; i < HFXO_WAIT_LOOPS && !REG(CLOCK_EVENTS_HFCLKSTARTED); i++) {
    }

    /* LED off, output */
    REG(port_base(LED_PORT) + GPIO_OUTCLR) = 1u << LED_PIN;
    REG(port_base(LED_PORT) + GPIO_PIN_CNF(LED_PIN)) = CNF_OUTPUT_NO_INPUT;

    /* UARTE0: pins are configurable only while it is disabled. TXD idles high as an
     * output, RXD is an input with a pull-up so an open line does not read as a break. */
    REG(UARTE_ENABLE) = 0;
    REG(port_base(UART_TX_PORT) + GPIO_OUTSET) = 1u << UART_TX_PIN;
    REG(port_base(UART_TX_PORT) + GPIO_PIN_CNF(UART_TX_PIN)) = CNF_OUTPUT_NO_INPUT;
    REG(port_base(UART_RX_PORT) + GPIO_PIN_CNF(UART_RX_PIN)) = CNF_INPUT_PULLUP;
    REG(UARTE_PSEL_TXD) = PSEL(UART_TX_PORT, UART_TX_PIN);
    REG(UARTE_PSEL_RXD) = PSEL(UART_RX_PORT, UART_RX_PIN);
    REG(UARTE_BAUDRATE) = BAUD_115200;
    REG(UARTE_CONFIG) = 0; /* no flow control, no parity, one stop bit */
    REG(UARTE_ENABLE) = ENABLE_UARTE;
    REG(UARTE_INTENSET) = INT_ENDRX | INT_ERROR;
    uarte_start_rx();
    cm_irq_enable(UARTE0_IRQ);

    cm_systick_start(CORE_HZ);
    wb_reg_writes(board_wdt_start);
}
