/* Fault injection for the QEMU fault tests: see inject.h. */
#include "inject.h"

#include "mpu.h"

/* `bx lr` in RAM, which the MPU never lets run. */
static uint16_t ram_code[2] = {0x4770u, 0xbf00u};

/* Recurses with a 64-byte frame until a fault ends it; the depth test never holds, it only
 * keeps the compiler from proving the recursion endless. */
static __attribute__((noinline)) uint32_t dive(volatile uint8_t *up, uint32_t depth)
{
    volatile uint8_t frame[64];
    frame[0] = (uint8_t)(up[0] + 1u);
    if (depth == 0xffffffffu)
        return frame[0];
    return dive(frame, depth + 1u) + frame[1];
}

int wb_inject(int32_t sensor, int32_t *milli)
{
    volatile uint8_t start = 0;
    *milli = WB_INJECT_SURVIVED;
    switch (sensor) {
    case WB_INJECT_WRITE_CODE: {
        volatile uint16_t *code = (volatile uint16_t *)wb_mpu_sealed_code(0);
        if (!code) {
            *milli = WB_INJECT_NOTHING_SEALED;
            return 0;
        }
        *code = *code; /* the same bytes back: harmless, were it allowed */
        return 0;
    }
    case WB_INJECT_EXEC_RAM:
        ((void (*)(void))((uintptr_t)ram_code | 1u))();
        return 0;
    case WB_INJECT_HARDFAULT:
        __asm__ volatile("cpsid i\n\tsvc #0\n\tcpsie i" ::: "memory");
        return 0;
    case WB_INJECT_HANG:
        for (;;)
            __asm__ volatile("" ::: "memory");
    case WB_INJECT_STACK:
        *milli = (int32_t)dive(&start, 0);
        return 0;
    }
    return -1;
}
