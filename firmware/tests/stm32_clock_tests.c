/*
 * Host tests of the STM32F4 clock set-up (boards/stm32f4-discovery/clock.h): the
 * arithmetic (PLL outputs and RCC_PLLCFGR fields, flash wait states, USART BRR, SysTick
 * reloads), then stm32_clock_init itself against a simulated RCC and flash interface:
 * the crystal and PLL start, the HSE never starts, the PLL never locks, the wait states
 * do not stick, the switch never shows, no RCC at all (QEMU's netduinoplus2) and only
 * RCC_CR tagged ready (Renode's platform script). The
 * simulator flags every step out of order: the PLL configured while on, SYSCLK on the
 * PLL with fewer than 5 wait states or an APB above its limit, wait states dropped
 * under a fast clock, HSION cleared while it runs SYSCLK. The model is written from
 * RM0090, as the code is, so it checks order and bounds, not the silicon itself.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static uint32_t sim_rd(uint32_t a);
static void sim_wr(uint32_t a, uint32_t v);
#define STM32_RD(a) sim_rd(a)
#define STM32_WR(a, v) sim_wr(a, v)
#include "../boards/stm32f4-discovery/clock.h"

#include "check.h"

#define CR_HSIRDY (1u << 1)
#define CR_RO (CR_HSIRDY | CR_HSERDY | CR_PLLRDY)
#define PLLCFGR_FIELDS 0x0f437fffu /* PLLQ, PLLSRC, PLLP, PLLN, PLLM */

/* One chip: what it does, and its registers. */
static struct {
    const char *name;
    int no_rcc;          /* RCC and flash interface unimplemented: reads 0, writes ignored */
    uint32_t tagged_cr;  /* with no_rcc: what RCC_CR reads (Renode's script tags it) */
    int hse_polls;       /* RCC_CR reads with HSEON before HSERDY; <0: never */
    int pll_locks;       /* PLLRDY follows PLLON (with the HSE ready) */
    int acr_sticks;      /* the written LATENCY reads back */
    int switch_shows;    /* SWS follows SW = PLL */
    uint32_t cr, pllcfgr, cfgr, acr;
    int hse_seen;        /* reads since HSEON */
    unsigned long reads; /* register reads: every wait is bounded */
    int sw_pll_written;  /* SW = PLL was ever requested */
    char violation[160]; /* the first step out of order */
} sim;

static void violate(const char *what)
{
    if (!sim.violation[0])
        snprintf(sim.violation, sizeof sim.violation, "%s", what);
}

static uint32_t sysclk_now(void)
{
    return (sim.cfgr & CFGR_SWS_MASK) == CFGR_SWS_PLL ? 168000000u : 16000000u;
}

static void check_buses(uint32_t cfgr)
{
    static const uint8_t apb_div[8] = {1, 1, 1, 1, 2, 4, 8, 16};
    uint32_t hclk = sysclk_now(); /* HPRE is never written: /1 */
    if (hclk / apb_div[cfgr >> 10 & 7] > 42000000u)
        violate("APB1 above 42 MHz");
    if (hclk / apb_div[cfgr >> 13 & 7] > 84000000u)
        violate("APB2 above 84 MHz");
    if (stm32_flash_latency(hclk) > (sim.acr & ACR_LATENCY_MASK))
        violate("too few flash wait states for SYSCLK");
}

static uint32_t sim_rd(uint32_t a)
{
    sim.reads++;
    if (sim.no_rcc)
        return a == RCC_CR ? sim.tagged_cr : 0;
    switch (a) {
    case RCC_CR:
        if ((sim.cr & CR_HSEON) && sim.hse_polls >= 0 && sim.hse_seen++ >= sim.hse_polls)
            sim.cr |= CR_HSERDY;
        if ((sim.cr & CR_PLLON) && (sim.cr & CR_HSERDY) && sim.pll_locks)
            sim.cr |= CR_PLLRDY;
        return sim.cr;
    case RCC_PLLCFGR:
        return sim.pllcfgr;
    case RCC_CFGR:
        return sim.cfgr;
    case FLASH_ACR:
        return sim.acr;
    }
    violate("read of an unexpected register");
    return 0;
}

static void sim_wr(uint32_t a, uint32_t v)
{
    if (sim.no_rcc)
        return;
    switch (a) {
    case RCC_CR:
        if (!(v & CR_HSION) && (sim.cfgr & CFGR_SWS_MASK) == 0)
            violate("HSION cleared while the HSI runs SYSCLK");
        if ((v & CR_PLLON) == 0 && (sim.cfgr & CFGR_SWS_MASK) == CFGR_SWS_PLL)
            violate("PLL off while it runs SYSCLK");
        sim.cr = (sim.cr & CR_RO) | (v & ~CR_RO);
        if (!(sim.cr & CR_HSEON))
            sim.cr &= ~CR_HSERDY, sim.hse_seen = 0;
        if (!(sim.cr & CR_PLLON))
            sim.cr &= ~CR_PLLRDY;
        return;
    case RCC_PLLCFGR:
        if (sim.cr & CR_PLLON)
            violate("PLL configured while on");
        if ((v & ~PLLCFGR_FIELDS) != (0x24003010u & ~PLLCFGR_FIELDS))
            violate("PLLCFGR reserved bits changed");
        sim.pllcfgr = v;
        return;
    case RCC_CFGR:
        sim.cfgr = (sim.cfgr & CFGR_SWS_MASK) | (v & ~CFGR_SWS_MASK);
        if ((v & 3u) == CFGR_SW_PLL) {
            sim.sw_pll_written = 1;
            if (!(sim.cr & CR_PLLRDY))
                violate("switch to a PLL that is not locked");
            if (sim.switch_shows)
                sim.cfgr = (sim.cfgr & ~CFGR_SWS_MASK) | CFGR_SWS_PLL;
        } else if ((v & 3u) == 0) {
            sim.cfgr &= ~CFGR_SWS_MASK; /* back to the HSI: always shows */
        }
        check_buses(sim.cfgr);
        return;
    case FLASH_ACR:
        sim.acr = sim.acr_sticks ? v : (v & ~ACR_LATENCY_MASK);
        check_buses(sim.cfgr);
        return;
    }
    violate("write to an unexpected register");
}

static void chip(const char *name, int no_rcc, int hse_polls, int pll_locks, int acr_sticks, int switch_shows)
{
    memset(&sim, 0, sizeof sim);
    sim.name = name;
    sim.no_rcc = no_rcc;
    sim.hse_polls = hse_polls;
    sim.pll_locks = pll_locks;
    sim.acr_sticks = acr_sticks;
    sim.switch_shows = switch_shows;
    sim.cr = 0x00000083u;      /* RM0090 reset values: HSION, HSIRDY, HSITRIM 16 */
    sim.pllcfgr = 0x24003010u;
    sim.cfgr = 0;
    sim.acr = 0;
}

/* Runs the set-up on the chip and checks the outcome common to every case. */
static unsigned run(unsigned want)
{
    unsigned got = stm32_clock_init();
    CHECK(got == want, "%s: path %u, want %u", sim.name, got, want);
    CHECK(!sim.violation[0], "%s: %s", sim.name, sim.violation);
    /* four bounded waits at most (HSE, PLL, switch, switch back) plus a few single reads */
    CHECK(sim.reads <= 4ul * STM32_WAIT_POLLS + 8, "%s: %lu register reads", sim.name, sim.reads);
    return got;
}

static void fell_back_to_hsi(void)
{
    CHECK((sim.cfgr & CFGR_SWS_MASK) == 0 && sim.cfgr == 0, "%s: HSI, buses /1: CFGR %#x", sim.name, sim.cfgr);
    CHECK(!(sim.cr & (CR_PLLON | CR_HSEON)) && (sim.cr & CR_HSION), "%s: PLL and HSE off: CR %#x", sim.name, sim.cr);
    CHECK(sim.acr == (ACR_PRFTEN | ACR_ICEN | ACR_DCEN), "%s: 0 wait states, caches on: ACR %#x", sim.name, sim.acr);
}

static void test_arithmetic(void)
{
    uint32_t vco_in = STM32_HSE_HZ / PLL_M, vco = vco_in * PLL_N;
    CHECK(vco_in >= 1000000u && vco_in <= 2000000u, "VCO input %u Hz outside 1..2 MHz", vco_in);
    CHECK(vco >= 100000000u && vco <= 432000000u, "VCO %u Hz outside 100..432 MHz", vco);
    CHECK(stm32_pll_hz(STM32_HSE_HZ, PLL_M, PLL_N, PLL_P) == 168000000u, "PLLP output");
    CHECK(stm32_pll_hz(STM32_HSE_HZ, PLL_M, PLL_N, PLL_Q) == 48000000u, "PLLQ output (USB needs 48 MHz)");
    CHECK(stm32_sysclk_hz[STM32_CLK_PLL] == 168000000u && stm32_sysclk_hz[STM32_CLK_HSI] == 16000000u &&
              stm32_sysclk_hz[STM32_CLK_EMULATOR] == 168000000u,
          "SYSCLK per path");
    CHECK(stm32_apb2_hz(STM32_CLK_PLL) == 84000000u && stm32_apb2_hz(STM32_CLK_HSI) == 16000000u &&
              stm32_apb2_hz(STM32_CLK_EMULATOR) == 84000000u,
          "APB2 per path");

    /* field positions: PLLM 8, PLLN 336 << 6, PLLP /2 = 00, PLLSRC, PLLQ 7 << 24 */
    CHECK(stm32_pllcfgr(PLL_M, PLL_N, PLL_P, PLL_Q) == 0x27405408u, "PLLCFGR %#x",
          stm32_pllcfgr(PLL_M, PLL_N, PLL_P, PLL_Q));
    CHECK((stm32_pllcfgr(8, 336, 4, 7) >> 16 & 3u) == 1u && (stm32_pllcfgr(8, 336, 8, 7) >> 16 & 3u) == 3u,
          "PLLP encoding");
    /* the documented reset value decodes as M 16, N 192, P 2, Q 4, HSI source (bit 29 reserved, set) */
    CHECK((stm32_pllcfgr(16, 192, 2, 4) & ~PLLCFGR_SRC_HSE) == 0x24003010u, "reset value");

    CHECK(stm32_flash_latency(168000000u) == 5 && stm32_flash_latency(150000001u) == 5 &&
              stm32_flash_latency(150000000u) == 4 && stm32_flash_latency(30000001u) == 1 &&
              stm32_flash_latency(30000000u) == 0 && stm32_flash_latency(16000000u) == 0,
          "flash wait states (RM0090 table 10, 2.7..3.6 V)");

    static const struct {
        uint32_t pclk, brr;
    } brr[] = {{84000000u, 729u}, {16000000u, 139u}, {42000000u, 365u}};
    for (size_t i = 0; i < sizeof brr / sizeof brr[0]; i++) {
        uint32_t b = stm32_usart_brr(brr[i].pclk, 115200u);
        /* the baud rate it gives: pclk / (16 x (mantissa + fraction / 16)) = pclk / BRR */
        double err = (double)brr[i].pclk / b / 115200.0 - 1.0;
        CHECK(b == brr[i].brr && err < 0.002 && err > -0.002, "BRR %u at %u Hz (want %u), error %.4f%%", b,
              brr[i].pclk, brr[i].brr, err * 100);
    }
    CHECK(stm32_usart_brr(84000000u, 115200u) == (45u << 4 | 9u), "84 MHz: USARTDIV 45.5625");

    for (unsigned p = 0; p < 3; p++) { /* cm_systick_start: reload = hz / 1000 - 1, 24 bits, exact ms */
        uint32_t hz = stm32_sysclk_hz[p];
        CHECK(hz % 1000u == 0 && hz / 1000u - 1u <= 0xffffffu, "SysTick reload for %u Hz", hz);
    }
}

static void test_sequence(void)
{
    chip("crystal and PLL start", 0, 1000, 1, 1, 1);
    run(STM32_CLK_PLL);
    CHECK((sim.cfgr & CFGR_SWS_MASK) == CFGR_SWS_PLL, "on the PLL");
    CHECK(sim.cfgr == (CFGR_PPRE1_DIV4 | CFGR_PPRE2_DIV2 | CFGR_SW_PLL | CFGR_SWS_PLL), "AHB /1, APB1 /4, APB2 /2: %#x",
          sim.cfgr);
    CHECK(sim.pllcfgr == 0x27405408u, "PLL configured: %#x", sim.pllcfgr);
    CHECK(sim.acr == (5u | ACR_PRFTEN | ACR_ICEN | ACR_DCEN), "5 wait states, prefetch, caches: %#x", sim.acr);
    CHECK((sim.cr & (CR_HSEON | CR_PLLON | CR_HSION)) == (CR_HSEON | CR_PLLON | CR_HSION), "CR %#x", sim.cr);

    chip("crystal starts on the last poll", 0, (int)STM32_WAIT_POLLS - 1, 1, 1, 1);
    run(STM32_CLK_PLL);

    chip("no crystal", 0, -1, 1, 1, 1);
    run(STM32_CLK_HSI);
    fell_back_to_hsi();
    CHECK(!sim.sw_pll_written, "no crystal: no switch");

    chip("crystal one poll too late", 0, (int)STM32_WAIT_POLLS, 1, 1, 1);
    run(STM32_CLK_HSI);
    fell_back_to_hsi();

    chip("PLL never locks", 0, 10, 0, 1, 1);
    run(STM32_CLK_HSI);
    fell_back_to_hsi();
    CHECK(!sim.sw_pll_written, "PLL never locks: no switch");

    chip("wait states do not stick", 0, 10, 1, 0, 1);
    run(STM32_CLK_HSI);
    fell_back_to_hsi();
    CHECK(!sim.sw_pll_written, "wait states do not stick: no switch");

    chip("switch never shows", 0, 10, 1, 1, 0);
    run(STM32_CLK_HSI);
    fell_back_to_hsi();

    chip("no RCC (QEMU netduinoplus2)", 1, -1, 0, 0, 0);
    run(STM32_CLK_EMULATOR);
    CHECK(sim.reads == 1, "no RCC: found by reading back PLLCFGR, no wait (%lu reads)", sim.reads);

    /* Renode's stm32f4_discovery.resc: RCC_CR reads every oscillator and PLL ready */
    chip("RCC_CR tagged ready, nothing else (Renode)", 1, -1, 0, 0, 0);
    sim.tagged_cr = 0x0f0f0083u;
    run(STM32_CLK_EMULATOR);
    CHECK(sim.reads == 1, "Renode: found by reading back PLLCFGR (%lu reads)", sim.reads);
}

int main(void)
{
    test_arithmetic();
    test_sequence();
    printf("stm32_clock_tests: %d checks, %d failures\n", checks, failures);
    return failures != 0;
}
