/*
 * Cortex-M4 start-up shared by the boards: vector table (core exceptions, SysTick;
 * each board's board.c continues it with its external interrupts, section
 * .vectors.irq), reset handler (.data copy, .bss clear, FPU on in hard-float builds,
 * then the MPU and the fault handlers: protect()), SysTick millisecond counter. Every
 * fault and NMI goes to fault.c, which records it and resets the MCU.
 */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "mpu.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern char _flash_start[], _flash_size[], _sstack[];
int main(void);
void reset_handler(void);
void systick_handler(void);

#define REG(a) (*(volatile uint32_t *)(a))
#define SYST_CSR 0xe000e010u
#define SYST_RVR 0xe000e014u
#define SYST_CVR 0xe000e018u
#define SCB_CPACR 0xe000ed88u
#define SCB_AIRCR 0xe000ed0cu
#define SCB_SHCSR 0xe000ed24u
#define SHCSR_FAULTS (7u << 16) /* MEMFAULTENA, BUSFAULTENA, USGFAULTENA: each fault its own handler */
/* No-access block right below RAM, where the stack starts (sections.ld): a frame that
 * overflows by up to this much still faults rather than reach other memory. */
#define STACK_GUARD (32u * 1024u)

__attribute__((section(".vectors"), used)) const void *const vectors[16] = {
    &_estack,              /* initial stack pointer */
    (void *)reset_handler, /* reset */
    (void *)fault_entry,   /* NMI (the MPS2's watchdog) */
    (void *)fault_entry,   /* HardFault */
    (void *)fault_entry,   /* MemManage */
    (void *)fault_entry,   /* BusFault */
    (void *)fault_entry,   /* UsageFault */
    0, 0, 0, 0,
    (void *)fault_entry,   /* SVCall: not used, recorded as a HardFault */
    (void *)fault_entry,   /* DebugMonitor: likewise */
    0,
    (void *)fault_entry,   /* PendSV: likewise */
    (void *)systick_handler,
};

static volatile uint32_t ticks_lo, ticks_hi;

void systick_handler(void)
{
    if (++ticks_lo == 0)
        ticks_hi++;
}

uint64_t board_millis(void)
{
    uint32_t hi, lo;
    do {
        hi = ticks_hi;
        lo = ticks_lo;
    } while (hi != ticks_hi);
    return (uint64_t)hi << 32 | lo;
}

void cm_systick_start(uint32_t core_hz)
{
    REG(SYST_RVR) = core_hz / 1000u - 1u;
    REG(SYST_CVR) = 0;
    REG(SYST_CSR) = 7; /* processor clock, interrupt, enable */
}

void cm_reset(void)
{
    __asm__ volatile("dsb");
    REG(SCB_AIRCR) = 0x05fa0004u; /* VECTKEY | SYSRESETREQ */
    for (;;) {
    }
}

/* The MPU (mpu.h) over this image's flash and the guard below the stack, then the
 * configurable faults enabled, so that each reports its own cause. */
static void protect(void)
{
    const wb_mpu_layout l = {(uintptr_t)_flash_start, (uintptr_t)_flash_size, (uintptr_t)_sstack - STACK_GUARD,
                             STACK_GUARD};
    wb_mpu_init(&l);
    REG(SCB_SHCSR) |= SHCSR_FAULTS;
    __asm__ volatile("dsb\n isb");
}

void reset_handler(void)
{
    memcpy(&_sdata, &_sidata, (size_t)((char *)&_edata - (char *)&_sdata));
    memset(&_sbss, 0, (size_t)((char *)&_ebss - (char *)&_sbss));
#if defined(__ARM_FP)
    /* hard-float build (BOARD_CPU): CP10, CP11 on before any FPU instruction */
    REG(SCB_CPACR) |= 0xfu << 20;
    __asm__ volatile("dsb\n isb");
#endif
    fault_boot();
    protect();
    main();
    cm_reset();
}
