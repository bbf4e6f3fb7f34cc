/*
 * Bare-metal start-up for the QEMU mps2-an386 (Cortex-M4F) benchmark:
 * vector table, .data/.bss set-up, FPU on, the MPU as on the boards (-DWB_MPU, m4.h),
 * semihosting output and exit.
 */
#include <stdint.h>
#include <string.h>

#include "m4.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);
void reset_handler(void);

/* A fault ends the run with a failure at once (instead of a hang until the timeout). */
__attribute__((used)) static void fault_report(const uint32_t *frame)
{
    uint32_t pc = frame[6]; /* the exception frame: r0-r3, r12, lr, pc, xpsr */
    char line[] = "fault at pc 0x00000000\n";
    for (int i = 0; i < 8; i++) line[21 - i] = "0123456789abcdef"[(pc >> (4 * i)) & 15];
    m4_puts(line);
    m4_exit(1);
}

__attribute__((naked)) static void fault(void)
{
    __asm__ volatile("mrs r0, msp\n\tb fault_report");
}

__attribute__((section(".vectors"), used)) static const void *const vectors[16] = {
    &_estack, (void *)reset_handler, (void *)fault, (void *)fault, (void *)fault, (void *)fault, (void *)fault,
};

static int semihost(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void m4_puts(const char *s) { semihost(0x04, s); } /* SYS_WRITE0 */

void m4_put_u(const char *label, uint32_t v)
{
    char buf[16];
    int i = 15;
    buf[i] = 0;
    do { buf[--i] = (char)('0' + v % 10); v /= 10; } while (v);
    m4_puts(label);
    m4_puts(buf + i);
}

void m4_exit(int code)
{
    /* SYS_EXIT: ADP_Stopped_ApplicationExit (status 0) or RunTimeErrorUnknown (status 1) */
    semihost(0x18, (const void *)(uintptr_t)(code ? 0x20023 : 0x20026));
    for (;;) {
    }
}

void reset_handler(void)
{
    memcpy(&_sdata, &_sidata, (size_t)((char *)&_edata - (char *)&_sdata));
    memset(&_sbss, 0, (size_t)((char *)&_ebss - (char *)&_sbss));
    *(volatile uint32_t *)0xe000ed88 |= 0xfu << 20; /* CPACR: CP10, CP11 full access */
    __asm__ volatile("dsb\n isb");
#ifdef WB_MPU
    /* the code in the first 4 MiB read-only and executable, RAM never executable but for
     * sealed code; the stack is at the top of RAM here, so no guard */
    static const wb_mpu_layout l = {0, 4u << 20, 0, 0};
    if (wb_mpu_init(&l)) {
        m4_puts("no MPU on this core\n");
        m4_exit(1);
    }
#endif
    m4_exit(main());
}
