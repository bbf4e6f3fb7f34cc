/*
 * STM32F407 flash driver for the device runtime's app store (device.h, wbd_store):
 * the last two 128 KiB sectors, 10 (0x080C0000) and 11 (0x080E0000), one store area
 * each (RM0090 section 3, "Embedded Flash memory interface"). board.ld ends the image
 * before them.
 *
 * Program by word (PSIZE x32: needs VDD 2.7-3.6 V; the Discovery runs at 3 V), sector
 * erase, BSY waited for, error flags checked and cleared. The code runs from flash: the
 * F4 has one bank, and a fetch from it while an erase or a program is in progress stalls
 * the CPU on the bus until it ends (RM0090 3.5), which is allowed and correct, but it
 * also stalls every interrupt handler: a sector erase (1-2 s, DS8626 t_ERASE128KB x32)
 * blocks the USART1 receive interrupt, so bytes the gateway sends meanwhile overrun
 * (counted as lost). Nothing here has run: QEMU 7.2's netduinoplus2 models the flash
 * as ROM and the flash interface as an unimplemented device (reads 0, writes ignored),
 * which board_store() detects: it sets CR.LOCK and reads it back, which silicon always
 * honours (LOCK can always be set) and QEMU reads as 0; then the store stays off.
 */
#include "../common/board.h"

#if WBD_STORE
#include <string.h>

#define REG(a) (*(volatile uint32_t *)(a))

#define FLASH_IF 0x40023c00u
#define FLASH_ACR (FLASH_IF + 0x00u)
#define FLASH_KEYR (FLASH_IF + 0x04u)
#define FLASH_SR (FLASH_IF + 0x0cu)
#define FLASH_CR (FLASH_IF + 0x10u)
#define KEY1 0x45670123u
#define KEY2 0xcdef89abu
#define SR_EOP (1u << 0)
#define SR_OPERR (1u << 1)
#define SR_ERRORS (0xf2u) /* OPERR, WRPERR, PGAERR, PGPERR, PGSERR */
#define SR_BSY (1u << 16)
#define CR_PG (1u << 0)
#define CR_SER (1u << 1)
#define CR_SNB(n) ((uint32_t)(n) << 3)
#define CR_PSIZE_X32 (2u << 8)
#define CR_STRT (1u << 16)
#define CR_LOCK (1u << 31)
#define ACR_DCEN (1u << 10)
#define ACR_DCRST (1u << 12)

#define STORE_BASE 0x080c0000u
#define STORE_SECTOR (128u * 1024u)
#define STORE_FIRST_SNB 10u

static void wait_idle(void)
{
    while (REG(FLASH_SR) & SR_BSY)
        ;
}

/* Unlocked, idle, old flags cleared. */
static void begin(void)
{
    wait_idle();
    if (REG(FLASH_CR) & CR_LOCK) {
        REG(FLASH_KEYR) = KEY1;
        REG(FLASH_KEYR) = KEY2;
    }
    REG(FLASH_SR) = SR_EOP | SR_ERRORS;
}

/* Waits for the operation, locks again; <0 on an error flag. */
static int end(void)
{
    wait_idle();
    uint32_t sr = REG(FLASH_SR);
    REG(FLASH_CR) = CR_LOCK;
    REG(FLASH_SR) = SR_EOP | SR_ERRORS;
    return sr & SR_ERRORS ? -1 : 0;
}

static int f_read(void *ctx, uint32_t off, void *buf, uint32_t len)
{
    (void)ctx;
    memcpy(buf, (const void *)(STORE_BASE + off), len); /* memory-mapped */
    return 0;
}

static int f_erase(void *ctx, uint32_t off)
{
    (void)ctx;
    begin();
    REG(FLASH_CR) = CR_PSIZE_X32 | CR_SER | CR_SNB(STORE_FIRST_SNB + off / STORE_SECTOR);
    REG(FLASH_CR) |= CR_STRT;
    int r = end();
    /* the ART data cache may hold words of the erased sector: reset it (only while disabled) */
    uint32_t acr = REG(FLASH_ACR);
    if (acr & ACR_DCEN) {
        REG(FLASH_ACR) = acr & ~ACR_DCEN;
        REG(FLASH_ACR) = (acr & ~ACR_DCEN) | ACR_DCRST;
        REG(FLASH_ACR) = acr;
    }
    return r;
}

static int f_program(void *ctx, uint32_t off, const void *buf, uint32_t len)
{
    (void)ctx;
    const uint8_t *p = buf;
    begin();
    REG(FLASH_CR) = CR_PSIZE_X32 | CR_PG;
    for (uint32_t i = 0; i < len; i += 4) {
        uint32_t w;
        memcpy(&w, p + i, 4);
        REG(STORE_BASE + off + i) = w;
        wait_idle();
        if (REG(FLASH_SR) & SR_ERRORS)
            break;
    }
    return end();
}

static const wbd_store flash_store = {0, 2u * STORE_SECTOR, STORE_SECTOR, f_read, f_erase, f_program};

const wbd_store *board_store(void)
{
    REG(FLASH_CR) = CR_LOCK; /* silicon: locks (always allowed); QEMU 7.2: ignored, reads 0 */
    return REG(FLASH_CR) & CR_LOCK ? &flash_store : 0;
}
#endif
