/*
 * ARMv7-M MPU set-up and the native tier's code guard (mpu.h). Written from the
 * ARMv7-M Architecture Reference Manual, B3.5 "Protected Memory System Architecture".
 *
 * A region is a power of two, 256 B or more, aligned to its size, split in 8 equal
 * subregions that can each be left out (SRD); left-out subregions fall through to the
 * region below (1: SRAM, read-write, never executed). Native code is therefore placed
 * at a subregion boundary, in whole subregions, inside one region-sized block: then
 * one region seals exactly the code, and the rest of the block stays ordinary RAM.
 */
#include "mpu.h"

#define REG(a) (*(volatile uint32_t *)(a))
#define MPU_TYPE 0xe000ed90u
#define MPU_CTRL 0xe000ed94u
#define MPU_RNR 0xe000ed98u
#define MPU_RBAR 0xe000ed9cu
#define MPU_RASR 0xe000eda0u
#define CTRL_ENABLE (1u << 0)
#define CTRL_PRIVDEFENA (1u << 2) /* the default map where no region matches; HFNMIENA stays clear */

#define RASR_XN (1u << 28)
#define AP_NONE (0u << 24)
#define AP_RW (1u << 24) /* privileged read-write: everything here runs privileged */
#define AP_RO (5u << 24) /* privileged read-only */
#define ATTR_FLASH (1u << 17)             /* normal memory, write-through (TEX 0, C) */
#define ATTR_SRAM ((1u << 17) | (1u << 16)) /* normal memory, write-back (TEX 0, C, B) */
#define RASR_SIZE(k) ((uint32_t)((k) - 1) << 1) /* 2^k bytes */
#define RASR_ENABLE 1u

enum { R_CODE_SPACE, R_SRAM, R_FLASH, R_GUARD, R_NATIVE };
#define MIN_K 8u  /* 256 B: the smallest region with subregions */
#define MAX_K 29u /* 512 MiB */

static int present;
static uintptr_t sealed_at[WB_MPU_CODE_REGIONS]; /* start of the code each region seals, 0: free */

static void set_region(uint32_t n, uintptr_t base, uint32_t rasr)
{
    REG(MPU_RNR) = n;
    REG(MPU_RBAR) = (uint32_t)base;
    REG(MPU_RASR) = rasr;
}

static void sync(void) { __asm__ volatile("dsb\n\tisb" ::: "memory"); }

/* log2 of the smallest power of two >= n, at least MIN_K (n > 0). */
static uint32_t log2_up(uintptr_t n)
{
    uint32_t k = MIN_K;
    while (k < 32u && ((uintptr_t)1 << k) < n) k++;
    return k;
}

/* SRD: subregions [first, first + count) of 8 enabled, the others left out. */
static uint32_t srd(uint32_t first, uint32_t count)
{
    uint32_t on = ((1u << count) - 1u) << first;
    return (~on & 0xffu) << 8;
}

int wb_mpu_init(const wb_mpu_layout *l)
{
    if (((REG(MPU_TYPE) >> 8) & 0xffu) < R_NATIVE + WB_MPU_CODE_REGIONS)
        return -1;
    present = 1;
    REG(MPU_CTRL) = 0;
    sync();
    set_region(R_CODE_SPACE, 0x00000000u, RASR_XN | AP_RW | ATTR_FLASH | RASR_SIZE(MAX_K) | RASR_ENABLE);
    set_region(R_SRAM, 0x20000000u, RASR_XN | AP_RW | ATTR_SRAM | RASR_SIZE(MAX_K) | RASR_ENABLE);
    uint32_t k = log2_up(l->flash_size);
    uint32_t sub = (uint32_t)(l->flash_size >> (k - 3u));
    set_region(R_FLASH, l->flash, AP_RO | ATTR_FLASH | srd(0, sub) | RASR_SIZE(k) | RASR_ENABLE);
    if (l->guard_size)
        set_region(R_GUARD, l->guard, RASR_XN | AP_NONE | ATTR_SRAM | RASR_SIZE(log2_up(l->guard_size)) | RASR_ENABLE);
    else
        set_region(R_GUARD, 0, 0);
    for (uint32_t i = 0; i < WB_MPU_CODE_REGIONS; i++) {
        set_region(R_NATIVE + i, 0, 0);
        sealed_at[i] = 0;
    }
    REG(MPU_CTRL) = CTRL_ENABLE | CTRL_PRIVDEFENA;
    sync();
    return 0;
}

/*
 * Where n bytes of code at or after `from` fit one region: for each region size 2^k,
 * the code starts at the next subregion boundary, takes whole subregions and must not
 * cross a 2^k boundary; the size that wastes fewest bytes (gap + tail) wins.
 */
static uintptr_t place(void *ctx, uintptr_t from, size_t n, size_t *size)
{
    (void)ctx;
    uintptr_t best = from;
    size_t best_waste = SIZE_MAX;
    *size = (n + 7u) & ~(size_t)7u;
    if (!present)
        return from; /* no MPU: nothing to align to */
    for (uint32_t k = log2_up(n); k <= MAX_K; k++) {
        uintptr_t r = (uintptr_t)1 << k, g = r >> 3;
        uintptr_t s = (from + g - 1u) & ~(g - 1u), len = (n + g - 1u) & ~(g - 1u);
        if (s < from || (s & (r - 1u)) + len > r)
            continue;
        size_t waste = (size_t)(s - from) + (size_t)(len - n);
        if (waste < best_waste) {
            best_waste = waste;
            best = s;
            *size = len;
        }
    }
    return best;
}

/* The smallest region that covers [code, code + size) with whole subregions, as place chose it. */
static int seal(void *ctx, void *code, size_t size)
{
    (void)ctx;
    uintptr_t at = (uintptr_t)code;
    if (!present)
        return 0; /* nothing to protect with */
    for (uint32_t k = MIN_K; k <= MAX_K && size; k++) {
        uintptr_t r = (uintptr_t)1 << k, g = r >> 3, off = at & (r - 1u);
        if ((at | size) & (g - 1u) || off + size > r)
            continue;
        for (uint32_t i = 0; i < WB_MPU_CODE_REGIONS; i++) {
            if (sealed_at[i])
                continue;
            sealed_at[i] = at;
            set_region(R_NATIVE + i, at - off,
                       AP_RO | ATTR_SRAM | srd((uint32_t)(off / g), (uint32_t)(size / g)) | RASR_SIZE(k) | RASR_ENABLE);
            sync();
            return 0;
        }
        return -1; /* every code region in use */
    }
    return -1;
}

const wasm_code_guard wb_mpu_code_guard = {0, place, seal};

void wb_mpu_release(const void *buf, size_t n)
{
    uintptr_t lo = (uintptr_t)buf;
    for (uint32_t i = 0; i < WB_MPU_CODE_REGIONS; i++) {
        if (!sealed_at[i] || sealed_at[i] < lo || sealed_at[i] - lo >= n)
            continue;
        set_region(R_NATIVE + i, 0, 0);
        sealed_at[i] = 0;
    }
    sync();
}

uintptr_t wb_mpu_sealed_code(uint32_t i) { return i < WB_MPU_CODE_REGIONS ? sealed_at[i] : 0; }
