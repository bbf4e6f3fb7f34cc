/*
 * Faults and resets the firmware did not choose, recorded so that the next boot can say
 * why (device.h, wbd_crash; firmware/README.md, "Faults and the watchdog").
 *
 * Every fault vector and the NMI enter fault_entry, which takes the stacked PC from the
 * exception frame when the frame lies inside the stack (a stack overflow faults with the
 * frame in the guard, unreadable), moves the stack pointer to the top of the stack (the
 * faulting code's frames are not needed any more, and a stack that overflowed must not be
 * used), and records the cause, CFSR, HFSR, the fault address and the PC in board_crash,
 * which start-up does not clear. It then seals the record and resets the core
 * (SYSRESETREQ). HardFault and NMI run with the MPU off (HFNMIENA clear), the others
 * with it on, which the handler's own accesses (its stack, the record, the SCB) satisfy.
 */
#include "board.h"

#define REG(a) (*(volatile uint32_t *)(a))
#define SCB_CFSR 0xe000ed28u
#define SCB_HFSR 0xe000ed2cu
#define SCB_MMFAR 0xe000ed34u
#define SCB_BFAR 0xe000ed38u
#define CFSR_MMARVALID (1u << 7)
#define CFSR_BFARVALID (1u << 15)

__attribute__((section(".noinit"))) wbd_crash board_crash;

__attribute__((weak)) uint32_t board_nmi_cause(void) { return WBD_CAUSE_NMI; }
__attribute__((weak)) uint32_t board_reset_flags(void) { return 0; }

void fault_boot(void)
{
    wbd_crash *c = &board_crash;
    uint32_t cause = board_reset_flags();
    if (c->magic == WBD_CRASH_MAGIC && c->sum == wbd_crash_sum(c))
        return; /* a handler's record: the device takes it */
    if (cause) { /* no handler ran: the cause from the flags, the app as last named */
        c->cause = cause;
        c->cfsr = c->hfsr = c->addr = c->pc = c->flags = 0;
        wbd_crash_seal(c);
        return;
    }
    c->app = -1; /* power-on: whatever RAM held names no app */
}

/* pc_known: the exception frame was readable, pc its stacked PC; the cause is in IPSR. */
__attribute__((noreturn, used)) void fault_record(uint32_t pc_known, uint32_t pc)
{
    wbd_crash *c = &board_crash;
    uint32_t exc;
    __asm__ volatile("mrs %0, ipsr" : "=r"(exc));
    exc &= 0x1ffu;
    c->cause = exc >= 4u && exc <= 6u ? exc - 2u /* MemManage, BusFault, UsageFault */
               : exc == 2u            ? board_nmi_cause()
                                      : WBD_CAUSE_HARDFAULT; /* HardFault, or an exception never used */
    c->cfsr = REG(SCB_CFSR);
    c->hfsr = REG(SCB_HFSR);
    c->pc = pc;
    c->flags = pc_known ? WBD_CRASH_PC : 0;
    c->addr = 0;
    if (c->cfsr & CFSR_MMARVALID) {
        c->addr = REG(SCB_MMFAR);
        c->flags |= WBD_CRASH_ADDR;
    } else if (c->cfsr & CFSR_BFARVALID) {
        c->addr = REG(SCB_BFAR);
        c->flags |= WBD_CRASH_ADDR;
    }
    wbd_crash_seal(c);
    cm_reset();
    for (;;) {
    }
}

/* The frame is r0-r3, r12, lr, pc, xpsr (32 bytes) at sp when it lies in [_sstack, _estack - 32]. */
__attribute__((naked)) void fault_entry(void)
{
    __asm__ volatile("mov r0, sp\n\t"
                     "movw r2, #:lower16:_sstack\n\t"
                     "movt r2, #:upper16:_sstack\n\t"
                     "movw r3, #:lower16:_estack\n\t"
                     "movt r3, #:upper16:_estack\n\t"
                     "movs r1, #0\n\t"
                     "cmp r0, r2\n\t"
                     "blo 1f\n\t"
                     "sub r2, r3, #32\n\t"
                     "cmp r0, r2\n\t"
                     "bhi 1f\n\t"
                     "ldr r1, [r0, #24]\n\t"
                     "movs r0, #1\n\t"
                     "b 2f\n"
                     "1:\n\t"
                     "movs r0, #0\n"
                     "2:\n\t"
                     "mov sp, r3\n\t"
                     "b fault_record\n\t");
}

void wb_reg_writes(const wb_reg_write *w)
{
    for (; w->addr; w++) {
        if (w->width == 1)
            *(volatile uint8_t *)w->addr = (uint8_t)w->value;
        else if (w->width == 2)
            *(volatile uint16_t *)w->addr = (uint16_t)w->value;
        else
            *(volatile uint32_t *)w->addr = w->value;
    }
}

void board_watchdog_feed(void) { wb_reg_writes(board_wdt_feed); }
