/*
 * RAM-backed app store for the MPS2 AN386 (device.h, wbd_store), which has no flash.
 *
 * The store is the top 528 KiB of the 4 MiB data RAM (0x2037C000..0x20400000): two areas
 * of 264 KiB (66 "sectors" of 4 KiB), each one snapshot of the 4 x 65 KiB records
 * (WBD_AREA_NEED = 267,040 B). board.ld gives the image only the RAM below it, so no ELF
 * segment covers it and startup.c never zeroes it. NOR semantics are emulated so the
 * same power-loss-safe format applies: erase fills a sector with 0xFF, program only
 * clears bits (a program that would have to set a bit fails, as a check of the runtime).
 *
 * What survives what: QEMU reloads a -kernel image only into its ELF segments on a system
 * reset (SYSRESETREQ, the monitor's system_reset) and does not clear other RAM, so the
 * store survives a warm reset; the SRAM of a real MPS2 board keeps its contents across a
 * reset the same way. It does not survive a power cycle (QEMU restarting, or power
 * removed): RAM then starts as zeros (QEMU) or undefined (silicon), which the area and
 * record checksums reject, and the device starts empty.
 */
#include "../common/board.h"

#if WBD_STORE
#include <string.h>

#define STORE_BASE 0x2037c000u
#define STORE_SIZE (528u * 1024u)
#define STORE_SECTOR 4096u

_Static_assert(STORE_BASE + STORE_SIZE == 0x20400000u, "the store ends at the top of the 4 MiB RAM");
_Static_assert(STORE_SIZE / 2 % STORE_SECTOR == 0 && STORE_SIZE / 2 >= WBD_AREA_NEED,
               "each area is whole sectors and holds WBD_MAX_APPS records");

#define MEM ((volatile uint8_t *)STORE_BASE)

static int r_read(void *ctx, uint32_t off, void *buf, uint32_t len)
{
    (void)ctx;
    if (off > STORE_SIZE || len > STORE_SIZE - off)
        return -1;
    memcpy(buf, (const void *)(STORE_BASE + off), len);
    return 0;
}

static int r_erase(void *ctx, uint32_t off)
{
    (void)ctx;
    if (off % STORE_SECTOR || off >= STORE_SIZE)
        return -1;
    memset((void *)(STORE_BASE + off), 0xff, STORE_SECTOR);
    return 0;
}

static int r_program(void *ctx, uint32_t off, const void *buf, uint32_t len)
{
    (void)ctx;
    if (off % 4 || len % 4 || off > STORE_SIZE || len > STORE_SIZE - off)
        return -1;
    const uint8_t *p = buf;
    int r = 0;
    for (uint32_t i = 0; i < len; i++) {
        uint8_t v = MEM[off + i] & p[i]; /* NOR: bits only go from 1 to 0 */
        MEM[off + i] = v;
        if (v != p[i])
            r = -1; /* a bit would have had to be set: not erased */
    }
    return r;
}

static const wbd_store ram_store = {0, STORE_SIZE, STORE_SECTOR, r_read, r_erase, r_program};

const wbd_store *board_store(void)
{
    return &ram_store;
}
#endif
