/*
 * Arduino Uno R4 Minima board support (Renesas RA4M1, R7FA4M1AB3CFM: Cortex-M4F, 256 KiB
 * code flash, 32 KiB SRAM), written for Wasmbed from the register descriptions of the
 * RA4M1 User's Manual (Hardware):
 *
 * - Clock: the option-setting memory below (OFS1) starts the HOCO at 48 MHz; board_init
 *   waits for it, sets one flash wait cycle (MEMWAIT, needed above 32 MHz), divides
 *   ICLK 48 MHz, PCLKA and PCLKB 24 MHz, PCLKC and PCLKD 48 MHz, FCLK 24 MHz, and switches
 *   the system clock from MOCO to HOCO. SysTick on the 48 MHz core clock counts ms.
 * - SCI2 (0x40070040, module stop bit MSTPCRB.MSTPB29) speaks the protocol at 115200 8N1
 *   on the header's D0 (P301, RXD2) and D1 (P302, TXD2), pin function PSEL 0b00100
 *   (SCI0/2/4/6/8). Receive by interrupt: SCR.RIE raises RXI (RDRF set) and ERI (an
 *   error flag set); the ICU links event SCI2_RXI (0xA3) to NVIC line 0 and SCI2_ERI
 *   (0xA6) to line 1 (IELSR0/1), both served by uart_irq_handler, which moves RDR into
 *   the ring of boards/common/uart.h (reading RDR clears RDRF) and counts overruns
 *   and bytes received with an error as lost. Transmit is polled: TEND, one byte at a
 *   time. PCLKA and PCLKB run at the same 24 MHz, so the baud rate is right whichever
 *   of the two clocks the SCI, and BRR = 12 with SEMR.BGDM (16 clocks per bit) gives
 *   115385 baud (+0.16%).
 * - The user LED ("L", D13) is P111, active high. GPIO pins 0..13 are the header's
 *   D0..D13; D0 and D1 carry the protocol UART and are refused.
 * - Watchdog: the WDT, which OFS0 leaves in register-start mode (stopped after reset),
 *   is started by board_init on PCLKB (24 MHz) / 8192 with 16384 cycles: 5.59 s, no
 *   refresh window, reset on expiry (WDTRCR.RSTIRQS); RSTSR1.WDTRF tells the next boot.
 *   The IWDT, which only OFS0 could start, stays off.
 *
 * The image is linked at 0 and replaces the Arduino bootloader (flash it over SWD or in
 * the RA's serial boot mode); it carries its own option-setting memory at 0x400.
 */
#include "../common/board.h"

#define REG32(a) (*(volatile uint32_t *)(a))
#define REG16(a) (*(volatile uint16_t *)(a))
#define REG8(a) (*(volatile uint8_t *)(a))

#define CORE_HZ 48000000u

/* SYSTEM: clock generation and register protection */
#define SYSTEM 0x4001e000u
#define SYS_SCKDIVCR (SYSTEM + 0x020u) /* 32-bit */
#define SYS_SCKSCR (SYSTEM + 0x026u)   /* 8-bit */
#define SYS_MEMWAIT (SYSTEM + 0x031u)  /* 8-bit */
#define SYS_HOCOCR (SYSTEM + 0x036u)   /* 8-bit */
#define SYS_OSCSF (SYSTEM + 0x03cu)    /* 8-bit */
#define SYS_PRCR (SYSTEM + 0x3feu)     /* 16-bit */
#define PRCR_KEY 0xa500u
#define PRCR_PRC0 0x1u /* clock generation registers */
#define PRCR_PRC1 0x2u /* low-power mode and module-stop registers */
#define OSCSF_HOCOSF 0x01u
#define SCKSCR_HOCO 0x00u
/* FCK /2 | ICK /1 | PCKA /2 | PCKB /2 | PCKC /1 | PCKD /1 */
#define SCKDIVCR_48MHZ ((1u << 28) | (0u << 24) | (1u << 12) | (1u << 8) | (0u << 4) | (0u << 0))

/* WDT (register-start mode) and the reset flags */
#define WDT_WDTRR 0x40044200u    /* 8-bit: 0x00 then 0xff refreshes (the first one starts it) */
#define WDT_WDTCR 0x40044202u    /* 16-bit */
#define WDT_WDTRCR 0x40044206u   /* 8-bit: RSTIRQS 0x80, reset on expiry */
#define WDT_WDTCSTPR 0x40044208u /* 8-bit: SLCSTP 0x80 would stop counting in sleep */
/* TOPS 3 (16384 cycles) | CKS 8 (PCLKB / 8192) | RPES 3 (window end 0%) | RPSS 3 (start 100%): no window */
#define WDTCR_5S ((3u << 0) | (8u << 4) | (3u << 8) | (3u << 12))
#define SYS_RSTSR1 (SYSTEM + 0x0c0u) /* 16-bit; cleared by writing 0 */
#define RSTSR1_WDTRF (1u << 1)

/* Module stop control */
#define MSTPCRB 0x40047000u
#define MSTPB_SCI2 (1u << 29)

/* I/O ports and pin function select */
#define PORT(n) (0x40040000u + 0x20u * (uint32_t)(n))
#define PCNTR1 0x0u /* PDR (direction) bits 15:0, PODR bits 31:16 */
#define PCNTR2 0x4u /* PIDR (input) bits 15:0 */
#define PCNTR3 0x8u /* POSR (set) bits 15:0, PORR (reset) bits 31:16 */
#define PFS(port, pin) (0x40040800u + 0x40u * (uint32_t)(port) + 4u * (uint32_t)(pin))
#define PFS_PCR (1u << 4)  /* pull-up */
#define PFS_PMR (1u << 16) /* peripheral function */
#define PFS_PSEL(n) ((uint32_t)(n) << 24)
#define PSEL_SCI0_2_4_6_8 0x04u
#define PWPR 0x40040d03u /* 8-bit */
#define PWPR_PFSWE 0x40u
#define PWPR_B0WI 0x80u

/* ICU event link: IELSRn selects the event of NVIC line n (bits 8:0); its IR flag (bit 16)
 * is set by the event and cleared by writing 0 (the NVIC line stays pending while it is 1). */
#define ICU_IELSR(n) (0x40006300u + 4u * (uint32_t)(n))
#define EVENT_SCI2_RXI 0xa3u
#define EVENT_SCI2_ERI 0xa6u
#define SCI2_RXI_IRQ 0u
#define SCI2_ERI_IRQ 1u

/* SCI2 (asynchronous mode, no FIFO): 8-bit registers */
#define SCI2 0x40070040u
#define SCI_SMR (SCI2 + 0x0u)
#define SCI_BRR (SCI2 + 0x1u)
#define SCI_SCR (SCI2 + 0x2u)
#define SCI_TDR (SCI2 + 0x3u)
#define SCI_SSR (SCI2 + 0x4u)
#define SCI_RDR (SCI2 + 0x5u)
#define SCI_SCMR (SCI2 + 0x6u)
#define SCI_SEMR (SCI2 + 0x7u)
#define SCR_RE 0x10u
#define SCR_TE 0x20u
#define SCR_RIE 0x40u
#define SSR_TEND 0x04u
#define SSR_PER 0x08u
#define SSR_FER 0x10u
#define SSR_ORER 0x20u
#define SSR_RDRF 0x40u
#define SSR_TDRE 0x80u
#define SSR_ERRORS (SSR_ORER | SSR_FER | SSR_PER)
#define SCMR_ASYNC_8BIT 0xf2u /* SMIF 0, no inversion, LSB first, CHR1 1 (8 bits with SMR.CHR 0) */
#define SEMR_BGDM 0x40u       /* baud rate generator double-speed: 16 clocks per bit */
#define BRR_115200 12u        /* 24 MHz / (16 x (12 + 1)) = 115385 baud */
#define ONE_BIT_LOOPS 1000u   /* > one bit time (8.7 us) at 48 MHz */

#define UART_RX_PORT 3u
#define UART_RX_PIN 1u
#define UART_TX_PORT 3u
#define UART_TX_PIN 2u
#define LED_PORT 1u
#define LED_PIN 11u

const char board_name[] = "arduino-uno-r4";
const uint32_t board_ram = 32u * 1024u, board_flash = 256u * 1024u;

/*
 * Option-setting memory: code flash 0x400..0x4ff, read by the MCU at reset. Placed by
 * boards/common/sections.ld (section .board_head at BOARD_HEAD_OFFSET, see board.ld).
 *   OFS0 0xffffffff: IWDT and WDT stay stopped after reset (the WDT in register-start
 *     mode: board_init starts it).
 *   OFS1 0xffffceff: HOCO oscillates after reset (HOCOEN 0) at 48 MHz (HOCOFRQ1 100b),
 *        voltage monitor 0 reset off.
 *   Security MPU: every region and program-counter range set to the manual's unused
 *   addresses, all disabled by SECMPUAC; the rest as erased flash.
 */
#define FF4 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu
#define FF16 FF4, FF4, FF4, FF4
__attribute__((section(".board_head"), used)) const uint32_t board_option_setting[64] = {
    0xffffffffu, /* 0x400 OFS0 */
    0xffffceffu, /* 0x404 OFS1 */
    0x00fffffcu, /* 0x408 SECMPUPCS0 */
    0x00ffffffu, /* 0x40c SECMPUPCE0 */
    0x00fffffcu, /* 0x410 SECMPUPCS1 */
    0x00ffffffu, /* 0x414 SECMPUPCE1 */
    0x00fffffcu, /* 0x418 SECMPUS0 (code flash) */
    0x00ffffffu, /* 0x41c SECMPUE0 */
    0x200ffffcu, /* 0x420 SECMPUS1 (SRAM) */
    0x200fffffu, /* 0x424 SECMPUE1 */
    0x407ffffcu, /* 0x428 SECMPUS2 (peripherals) */
    0x407fffffu, /* 0x42c SECMPUE2 */
    0x40dffffcu, /* 0x430 SECMPUS3 (peripherals) */
    0x40dfffffu, /* 0x434 SECMPUE3 */
    0xffffffffu, /* 0x438 SECMPUAC: all disabled */
    FF16, FF16, FF16, 0xffffffffu, /* 0x43c..0x4ff */
};

/* Arduino header D0..D13 -> RA4M1 port and pin (Uno R4 Minima). */
static const struct {
    uint8_t port, pin;
} header[14] = {
    {3, 1}, {3, 2}, {1, 5}, {1, 4}, {1, 3}, {1, 2}, {1, 6},
    {1, 7}, {3, 4}, {3, 3}, {1, 12}, {1, 9}, {1, 10}, {1, 11},
};

static int uart_tx_ready(void) { return (REG8(SCI_SSR) & SSR_TEND) != 0; }
static void uart_tx_byte(uint8_t b) { REG8(SCI_TDR) = b; }

#include "../common/uart.h"

/* RXI and ERI. The IR flags are cleared first (writing the IELSR with the same event and
 * IR 0) and read back, so an event from here on sets them again. Reception stops while an error flag is set: the flags seen are
 * cleared by writing 0 to them (1s written to the others change nothing, and a flag set
 * meanwhile is kept). Each error counts one byte lost: an overrun (ORER; RDR still holds
 * the byte before the lost one(s)), or a byte with a framing or parity error, which the
 * SCI does not hand over. */
void uart_irq_handler(void)
{
    REG32(ICU_IELSR(SCI2_RXI_IRQ)) = EVENT_SCI2_RXI;
    REG32(ICU_IELSR(SCI2_ERI_IRQ)) = EVENT_SCI2_ERI;
    (void)REG32(ICU_IELSR(SCI2_ERI_IRQ));
    uint8_t ssr = REG8(SCI_SSR);
    if (ssr & SSR_RDRF)
        uart_ring_put(&board_uart_rx, REG8(SCI_RDR));
    if (ssr & SSR_ERRORS) {
        uart_ring_lost(&board_uart_rx, 1);
        REG8(SCI_SSR) = (uint8_t)(SSR_TDRE | SSR_RDRF | (SSR_ERRORS & ~ssr));
    }
}

/* Vector table entries 16.. (ICU lines 0 and 1), after startup.c's. */
__attribute__((section(".vectors.irq"), used)) const void *const board_irq_vectors[2] = {
    [SCI2_RXI_IRQ] = (void *)uart_irq_handler,
    [SCI2_ERI_IRQ] = (void *)uart_irq_handler,
};

static int header_pin(int32_t pin)
{
    return pin >= 2 && pin <= 13; /* D0/D1 are the protocol UART */
}

static void pin_write(uint8_t port, uint8_t pin, int high)
{
    REG32(PORT(port) + PCNTR3) = high ? 1u << pin : 1u << (pin + 16u);
    REG32(PORT(port) + PCNTR1) |= 1u << pin; /* output */
}

static int led_set(void *ctx, int32_t led, int on)
{
    (void)ctx;
    if (led != 0)
        return -1;
    pin_write(LED_PORT, LED_PIN, on);
    return 0;
}

static int gpio_write(void *ctx, int32_t pin, int high)
{
    (void)ctx;
    if (!header_pin(pin))
        return -1;
    pin_write(header[pin].port, header[pin].pin, high);
    return 0;
}

static int gpio_read(void *ctx, int32_t pin, int *high)
{
    (void)ctx;
    if (!header_pin(pin))
        return -1;
    *high = (int)((REG32(PORT(header[pin].port) + PCNTR2) >> header[pin].pin) & 1u);
    return 0;
}

static int sensor_read(void *ctx, int32_t sensor, int32_t *milli)
{
    (void)ctx, (void)sensor, (void)milli;
    return -1; /* the internal temperature sensor needs the ADC: not wired up yet */
}

/* No native tier on this board: nothing to seal. */
const wbd_hal board_hal = {0, hal_now, hal_delay, gpio_write, gpio_read, led_set, sensor_read, NULL, NULL};

/* WDTCR, WDTRCR and WDTCSTPR are writable once, before the first refresh starts the count. */
const wb_reg_write board_wdt_start[] = {
    {WDT_WDTCR, WDTCR_5S, 2},
    {WDT_WDTRCR, 0x80u, 1},
    {WDT_WDTCSTPR, 0x00u, 1},
    {WDT_WDTRR, 0x00u, 1},
    {WDT_WDTRR, 0xffu, 1},
    {0, 0, 0},
};
const wb_reg_write board_wdt_feed[] = {{WDT_WDTRR, 0x00u, 1}, {WDT_WDTRR, 0xffu, 1}, {0, 0, 0}};

uint32_t board_reset_flags(void)
{
    uint16_t r = REG16(SYS_RSTSR1);
    REG16(SYS_RSTSR1) = (uint16_t)(r & ~RSTSR1_WDTRF); /* next time it is news */
    return r & RSTSR1_WDTRF ? WBD_CAUSE_WATCHDOG : 0;
}
/* ctx is the protocol UART's base address (not used by the driver; tests read it). */
const wbd_transport board_uart = {(void *)SCI2, uart_read, uart_write, uart_rx_stats, uart_tx_free};

static void clock_init(void)
{
    REG16(SYS_PRCR) = PRCR_KEY | PRCR_PRC0 | PRCR_PRC1;
    REG8(SYS_HOCOCR) = 0; /* already running when OFS1.HOCOEN is 0; start it otherwise */
    /* The HOCO is specified to stabilise; there is nothing sensible to run the UART on
     * without it (the 8 MHz MOCO cannot make 115200 baud within 2.5%). */
    while ((REG8(SYS_OSCSF) & OSCSF_HOCOSF) == 0) {
    }
    REG8(SYS_MEMWAIT) = 1; /* before ICLK exceeds 32 MHz */
    REG32(SYS_SCKDIVCR) = SCKDIVCR_48MHZ;
    REG8(SYS_SCKSCR) = SCKSCR_HOCO;
    REG32(MSTPCRB) &= ~MSTPB_SCI2; /* SCI2 out of module stop */
    REG16(SYS_PRCR) = PRCR_KEY;
}

static void pins_init(void)
{
    REG8(PWPR) = 0; /* B0WI 0, then PFSWE 1: PFS registers writable */
    REG8(PWPR) = PWPR_PFSWE;
    /* PSEL first with PMR 0, then PMR: the manual's order for a peripheral function */
    REG32(PFS(UART_RX_PORT, UART_RX_PIN)) = PFS_PSEL(PSEL_SCI0_2_4_6_8) | PFS_PCR;
    REG32(PFS(UART_RX_PORT, UART_RX_PIN)) = PFS_PSEL(PSEL_SCI0_2_4_6_8) | PFS_PCR | PFS_PMR;
    REG32(PFS(UART_TX_PORT, UART_TX_PIN)) = PFS_PSEL(PSEL_SCI0_2_4_6_8);
    REG32(PFS(UART_TX_PORT, UART_TX_PIN)) = PFS_PSEL(PSEL_SCI0_2_4_6_8) | PFS_PMR;
    REG8(PWPR) = 0;
    REG8(PWPR) = PWPR_B0WI;
    pin_write(LED_PORT, LED_PIN, 0);
}

static void sci2_init(void)
{
    REG8(SCI_SCR) = 0; /* transmitter and receiver off while configuring */
    REG8(SCI_SMR) = 0; /* asynchronous, 8 data bits, no parity, 1 stop bit, PCLK/1 */
    REG8(SCI_SCMR) = SCMR_ASYNC_8BIT;
    REG8(SCI_SEMR) = SEMR_BGDM;
    REG8(SCI_BRR) = BRR_115200;
    for (volatile uint32_t i = 0; i < ONE_BIT_LOOPS; i++) { /* one bit time before TE/RE */
    }
    REG32(ICU_IELSR(SCI2_RXI_IRQ)) = EVENT_SCI2_RXI;
    REG32(ICU_IELSR(SCI2_ERI_IRQ)) = EVENT_SCI2_ERI;
    cm_irq_enable(SCI2_RXI_IRQ);
    cm_irq_enable(SCI2_ERI_IRQ);
    REG8(SCI_SCR) = SCR_TE | SCR_RE | SCR_RIE;
}

void board_init(void)
{
    clock_init();
    pins_init();
    sci2_init();
    cm_systick_start(CORE_HZ);
    wb_reg_writes(board_wdt_start);
}
