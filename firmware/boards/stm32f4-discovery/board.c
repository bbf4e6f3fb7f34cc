/*
 * STM32F4 Discovery board support (STM32F407VG; QEMU netduinoplus2 is an STM32F405
 * with the same core, memory map and USART): USART1 (PA9/PA10) speaks the protocol,
 * LEDs on PD12..PD15 (green, orange, red, blue), GPIO pins 0..15 on port E.
 * USART1 receives by interrupt (RXNEIE, NVIC line 37) into the ring of
 * boards/common/uart.h and sends polled (TXE).
 * Clocks (clock.h): HSE 8 MHz + PLL, SYSCLK 168 MHz, USART1 on APB2 at 84 MHz, else
 * the HSI at 16 MHz; SysTick and the baud rate follow the clock actually running.
 * QEMU 7.2 models USART1, SysTick and the core; RCC, GPIO and the IWDG are unimplemented
 * devices there, so those writes are accepted and ignored (reads return 0).
 * Watchdog: the IWDG (RM0090 section 19) on the 32 kHz LSI, which it starts itself,
 * resets at once when it expires; RCC_CSR's IWDGRSTF tells the next boot.
 */
#include "../common/board.h"
#include "../common/mpu.h"
#include "clock.h"

#define REG(a) (*(volatile uint32_t *)(a))

#define RCC_AHB1ENR 0x40023830u
#define RCC_APB2ENR 0x40023844u
#define GPIOA 0x40020000u
#define GPIOD 0x40020c00u
#define GPIOE 0x40021000u
#define GPIO_MODER 0x00u
#define GPIO_AFRH 0x24u
#define GPIO_IDR 0x10u
#define GPIO_ODR 0x14u
#define GPIO_BSRR 0x18u

#define IWDG_KR 0x40003000u
#define IWDG_PR 0x40003004u  /* divider 4 << PR */
#define IWDG_RLR 0x40003008u /* 12 bits */
#define IWDG_START 0xccccu
#define IWDG_UNLOCK 0x5555u /* PR and RLR writable */
#define IWDG_RELOAD 0xaaaau
#define LSI_HZ 32000u
#define IWDG_DIV_LOG2 6u /* /64: 500 Hz, 8.19 s at most */
#define RCC_CSR 0x40023874u
#define CSR_RMVF (1u << 24)
#define CSR_IWDGRSTF (1u << 29)

#define USART1 0x40011000u
#define USART_SR (USART1 + 0x00u)
#define USART_DR (USART1 + 0x04u)
#define USART_BRR (USART1 + 0x08u)
#define USART_CR1 (USART1 + 0x0cu)
#define SR_ORE (1u << 3)
#define SR_RXNE (1u << 5)
#define SR_TXE (1u << 7)
#define CR1_UE (1u << 13)
#define CR1_TE (1u << 3)
#define CR1_RE (1u << 2)
#define CR1_RXNEIE (1u << 5) /* interrupt on RXNE or ORE */
#define USART1_IRQ 37u       /* RM0090 vector table position */

const char board_name[] = "stm32f4-discovery";
const uint32_t board_ram = 192u * 1024u, board_flash = 1024u * 1024u;

static int uart_tx_ready(void) { return (REG(USART_SR) & SR_TXE) != 0; }
static void uart_tx_byte(uint8_t b) { REG(USART_DR) = b; }

#include "../common/uart.h"

/* USART1: reading SR then DR clears RXNE and ORE. On an overrun DR still holds the byte
 * received before the lost one(s): count one lost (at least one was) and keep it. */
void uart_irq_handler(void)
{
    uint32_t sr = REG(USART_SR);
    if (sr & SR_ORE)
        uart_ring_lost(&board_uart_rx, 1);
    if (sr & (SR_RXNE | SR_ORE))
        uart_ring_put(&board_uart_rx, (uint8_t)REG(USART_DR));
}

/* Vector table entries 16.. (external interrupts 0..USART1_IRQ), after startup.c's. */
__attribute__((section(".vectors.irq"), used)) const void *const board_irq_vectors[USART1_IRQ + 1] = {
    [USART1_IRQ] = (void *)uart_irq_handler,
};

static int led_set(void *ctx, int32_t led, int on)
{
    (void)ctx;
    if (led < 0 || led > 3)
        return -1;
    uint32_t bit = 1u << (12 + led);
    REG(GPIOD + GPIO_BSRR) = on ? bit : bit << 16;
    return 0;
}

static int gpio_write(void *ctx, int32_t pin, int high)
{
    (void)ctx;
    if (pin < 0 || pin > 15)
        return -1;
    REG(GPIOE + GPIO_MODER) = (REG(GPIOE + GPIO_MODER) & ~(3u << (2 * pin))) | (1u << (2 * pin));
    REG(GPIOE + GPIO_BSRR) = high ? 1u << pin : 1u << (pin + 16);
    return 0;
}

static int gpio_read(void *ctx, int32_t pin, int *high)
{
    (void)ctx;
    if (pin < 0 || pin > 15)
        return -1;
    *high = (int)((REG(GPIOE + GPIO_IDR) >> pin) & 1u);
    return 0;
}

static int sensor_read(void *ctx, int32_t sensor, int32_t *milli)
{
    (void)ctx, (void)sensor, (void)milli;
    return -1; /* the internal temperature sensor needs the ADC: not wired up yet */
}

const wbd_hal board_hal = {0,         hal_now, hal_delay,   gpio_write,        gpio_read,
                           led_set,   sensor_read, &wb_mpu_code_guard, wb_mpu_release};

/* Started once (it cannot be stopped): divider and reload first, then the first reload. */
const wb_reg_write board_wdt_start[] = {
    {IWDG_KR, IWDG_START, 4},
    {IWDG_KR, IWDG_UNLOCK, 4},
    {IWDG_PR, IWDG_DIV_LOG2 - 2u, 4},
    {IWDG_RLR, LSI_HZ / (1u << IWDG_DIV_LOG2) * WB_WATCHDOG_MS / 1000u - 1u, 4},
    {IWDG_KR, IWDG_RELOAD, 4},
    {0, 0, 0},
};
const wb_reg_write board_wdt_feed[] = {{IWDG_KR, IWDG_RELOAD, 4}, {0, 0, 0}};

uint32_t board_reset_flags(void)
{
    uint32_t csr = REG(RCC_CSR);
    REG(RCC_CSR) = csr | CSR_RMVF; /* the flags are kept until cleared: next time they are news */
    return csr & CSR_IWDGRSTF ? WBD_CAUSE_WATCHDOG : 0;
}
/* ctx is the protocol UART's base address (not used by the driver; tests read it). */
const wbd_transport board_uart = {(void *)USART1, uart_read, uart_write, uart_rx_stats, uart_tx_free};

/* The boot log line's clock part, per STM32_CLK_* path (main.c, WB_BOOT_NOTE). */
static const char *const clock_notes[3] = {"clock pll 168 MHz", "clock hsi 16 MHz (fallback)", "clock emulator, no rcc"};

void board_init(void)
{
    unsigned clk = stm32_clock_init();
    board_boot_note = clock_notes[clk];
    /* clocks for GPIOA, GPIOD, GPIOE and USART1 */
    REG(RCC_AHB1ENR) |= (1u << 0) | (1u << 3) | (1u << 4);
    REG(RCC_APB2ENR) |= 1u << 4;
    /* PA9/PA10: alternate function 7 (USART1) */
    REG(GPIOA + GPIO_MODER) = (REG(GPIOA + GPIO_MODER) & ~(0xfu << 18)) | (0xau << 18);
    REG(GPIOA + GPIO_AFRH) = (REG(GPIOA + GPIO_AFRH) & ~(0xffu << 4)) | (0x77u << 4);
    /* PD12..PD15: outputs, LEDs off */
    REG(GPIOD + GPIO_MODER) = (REG(GPIOD + GPIO_MODER) & ~(0xffu << 24)) | (0x55u << 24);
    REG(GPIOD + GPIO_BSRR) = 0xfu << (12 + 16);
    /* USART1 (APB2): 115200 8N1 */
    REG(USART_BRR) = stm32_usart_brr(stm32_apb2_hz(clk), 115200u);
    REG(USART_CR1) = CR1_UE | CR1_TE | CR1_RE | CR1_RXNEIE;
    cm_irq_enable(USART1_IRQ);
    cm_systick_start(stm32_sysclk_hz[clk]);
    wb_reg_writes(board_wdt_start);
}
