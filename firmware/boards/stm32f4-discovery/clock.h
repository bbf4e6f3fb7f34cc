/*
 * STM32F405/407 clock tree (RM0090 section 6, RCC; section 3.5.1, flash read latency),
 * included once by board.c. A reset leaves the chip on the 16 MHz HSI; stm32_clock_init
 * brings up what production firmware runs on: the Discovery board's 8 MHz HSE crystal,
 * the main PLL at 168 MHz SYSCLK (48 MHz USB/SDIO clock), AHB 168, APB1 42, APB2 84 MHz,
 * flash 5 wait states with prefetch and both caches. Every wait is bounded; on a timeout
 * the chip goes back to the HSI (all buses 16 MHz). QEMU 7.2's netduinoplus2 has no RCC
 * (reads 0, writes ignored) and runs at 168 MHz: that case is recognised (the PLL
 * configuration does not read back) and reported; so is Renode's, whose platform script
 * tags RCC_CR ready and nothing else.
 *
 * Register access goes through STM32_RD/STM32_WR, so tests/stm32_clock_tests.c runs this
 * very sequence on the host against a simulated RCC and flash interface.
 */
#ifndef WB_STM32_CLOCK_H
#define WB_STM32_CLOCK_H

#include <stdint.h>

#ifndef STM32_RD
#define STM32_RD(a) (*(volatile uint32_t *)(a))
#define STM32_WR(a, v) (*(volatile uint32_t *)(a) = (v))
#endif

#define RCC_CR 0x40023800u
#define RCC_PLLCFGR 0x40023804u
#define RCC_CFGR 0x40023808u
#define FLASH_ACR 0x40023c00u

#define CR_HSION (1u << 0) /* set by reset; cannot be cleared while the HSI runs SYSCLK */
#define CR_HSEON (1u << 16)
#define CR_HSERDY (1u << 17)
#define CR_PLLON (1u << 24)
#define CR_PLLRDY (1u << 25)
#define PLLCFGR_SRC_HSE (1u << 22)
#define PLLCFGR_RESERVED (1u << 29) /* reads 1 after reset; kept */
#define CFGR_SW_PLL 2u             /* SW[1:0]; 0 = HSI */
#define CFGR_SWS_MASK (3u << 2)    /* SWS[3:2]: the clock actually switched to */
#define CFGR_SWS_PLL (2u << 2)
#define CFGR_PPRE1_DIV4 (5u << 10) /* PPRE1[12:10] = 101 */
#define CFGR_PPRE2_DIV2 (4u << 13) /* PPRE2[15:13] = 100; HPRE[7:4] = 0: AHB /1 */
#define ACR_LATENCY_MASK 7u
#define ACR_PRFTEN (1u << 8)
#define ACR_ICEN (1u << 9)
#define ACR_DCEN (1u << 10)

#define STM32_HSI_HZ 16000000u
#define STM32_HSE_HZ 8000000u  /* Discovery: crystal X2 */
#define STM32_EMU_HZ 168000000u /* QEMU netduinoplus2's fixed SYSCLK */

/* Main PLL: VCO input HSE / M = 1 MHz (1..2 MHz), VCO = 1 MHz x N = 336 MHz (100..432),
 * SYSCLK = VCO / P = 168 MHz, USB OTG FS / SDIO / RNG = VCO / Q = 48 MHz. */
#define PLL_M 8u
#define PLL_N 336u
#define PLL_P 2u
#define PLL_Q 7u

/* A PLL output: in_hz / m * n / div (div = P or Q). */
static inline uint32_t stm32_pll_hz(uint32_t in_hz, uint32_t m, uint32_t n, uint32_t div)
{
    return in_hz / m * n / div;
}

/* RCC_PLLCFGR for the HSE: PLLM[5:0], PLLN[14:6], PLLP[17:16] (P = 2, 4, 6, 8 as 0..3),
 * PLLSRC[22], PLLQ[27:24]; reserved bit 29 kept at its reset value, 1. */
static inline uint32_t stm32_pllcfgr(uint32_t m, uint32_t n, uint32_t p, uint32_t q)
{
    return PLLCFGR_RESERVED | PLLCFGR_SRC_HSE | m | n << 6 | (p / 2u - 1u) << 16 | q << 24;
}

/* Flash wait states for HCLK at 2.7..3.6 V (RM0090 table 10): one per started 30 MHz. */
static inline uint32_t stm32_flash_latency(uint32_t hclk)
{
    return (hclk - 1u) / 30000000u;
}

/* USART BRR with 16x oversampling: mantissa.fraction (4 bits) of pclk / (16 baud) is
 * pclk / baud in fixed point, rounded to the nearest. */
static inline uint32_t stm32_usart_brr(uint32_t pclk, uint32_t baud)
{
    return (pclk + baud / 2u) / baud;
}

/* The paths stm32_clock_init can take and the SYSCLK (= HCLK, AHB /1) each leaves running.
 * APB2 is SYSCLK / 2 except on the HSI, where every bus runs at 16 MHz. */
enum { STM32_CLK_PLL, STM32_CLK_HSI, STM32_CLK_EMULATOR };
static const uint32_t stm32_sysclk_hz[3] = {STM32_HSE_HZ / PLL_M * PLL_N / PLL_P, STM32_HSI_HZ, STM32_EMU_HZ};
static inline uint32_t stm32_apb2_hz(unsigned path)
{
    return stm32_sysclk_hz[path] >> (path != STM32_CLK_HSI);
}

/* Bound of every wait, in polls: ~8 cycles each, so ~0.13 s at 16 MHz (ST's own limit for
 * the HSE is 100 ms; the crystal starts in ~2 ms, the PLL locks in well under 1 ms). */
#ifndef STM32_WAIT_POLLS
#define STM32_WAIT_POLLS 0x40000u
#endif

static int stm32_wait(uint32_t reg, uint32_t mask, uint32_t want)
{
    for (uint32_t n = STM32_WAIT_POLLS; n; n--)
        if ((STM32_RD(reg) & mask) == want)
            return 1;
    return 0;
}

/* Runs once after reset (PLL off, SYSCLK = HSI). Returns the STM32_CLK_* path taken. */
static unsigned stm32_clock_init(void)
{
    const uint32_t ws = stm32_flash_latency(stm32_sysclk_hz[STM32_CLK_PLL]);
    const uint32_t pllcfgr = stm32_pllcfgr(PLL_M, PLL_N, PLL_P, PLL_Q);
    /* The PLL is off: configure it first and read it back. On silicon every field reads
     * as written; anything else means no RCC behind this address: an emulator running
     * its own clock (QEMU 7.2 netduinoplus2: reads 0; Renode with RCC_CR tagged ready). */
    STM32_WR(RCC_PLLCFGR, pllcfgr);
    if (STM32_RD(RCC_PLLCFGR) != pllcfgr)
        return STM32_CLK_EMULATOR;
    STM32_WR(RCC_CR, STM32_RD(RCC_CR) | CR_HSEON);
    if (!stm32_wait(RCC_CR, CR_HSERDY, CR_HSERDY))
        goto hsi;
    STM32_WR(RCC_CR, STM32_RD(RCC_CR) | CR_PLLON);
    if (!stm32_wait(RCC_CR, CR_PLLRDY, CR_PLLRDY))
        goto hsi;
    /* Bus prescalers first (APB1 <= 42, APB2 <= 84 MHz at every moment), then the wait
     * states, read back: they must be in force before the clock rises. Then the switch. */
    STM32_WR(RCC_CFGR, CFGR_PPRE1_DIV4 | CFGR_PPRE2_DIV2);
    STM32_WR(FLASH_ACR, ws | ACR_PRFTEN | ACR_ICEN | ACR_DCEN);
    if ((STM32_RD(FLASH_ACR) & ACR_LATENCY_MASK) != ws)
        goto hsi;
    STM32_WR(RCC_CFGR, CFGR_PPRE1_DIV4 | CFGR_PPRE2_DIV2 | CFGR_SW_PLL);
    if (stm32_wait(RCC_CFGR, CFGR_SWS_MASK, CFGR_SWS_PLL))
        return STM32_CLK_PLL;
hsi:
    /* Back to the HSI with every bus at 16 MHz; once it runs SYSCLK, PLL and HSE off and
     * no wait states. Should even that switch not show, the 5 wait states stay (safe at
     * any clock). */
    STM32_WR(RCC_CFGR, 0);
    if (stm32_wait(RCC_CFGR, CFGR_SWS_MASK, 0)) {
        STM32_WR(RCC_CR, STM32_RD(RCC_CR) & ~(CR_PLLON | CR_HSEON));
        STM32_WR(FLASH_ACR, ACR_PRFTEN | ACR_ICEN | ACR_DCEN);
    }
    return STM32_CLK_HSI;
}

#endif
