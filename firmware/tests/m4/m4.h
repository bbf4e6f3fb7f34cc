/* What tests/m4/startup.c gives the bare-metal test images on QEMU mps2-an386 (Cortex-M4F). */
#ifndef WASMBED_TESTS_M4_H
#define WASMBED_TESTS_M4_H

#include <stdint.h>

void m4_puts(const char *s);                    /* semihosting console */
void m4_put_u(const char *label, uint32_t v);   /* label, then v in decimal */
void m4_exit(int code);                         /* ends QEMU with status 0 or 1 */

/* SysTick as a 24-bit up-counter of the core clock (under -icount: of instructions). */
#define SYST_CSR (*(volatile uint32_t *)0xe000e010)
#define SYST_RVR (*(volatile uint32_t *)0xe000e014)
#define SYST_CVR (*(volatile uint32_t *)0xe000e018)
static inline uint32_t m4_now(void) { return 0xffffffu - SYST_CVR; } /* differences are taken mod 2^24 */

/*
 * Images built with -DWB_MPU run as the boards do (boards/common/mpu.h): startup.c turns
 * the MPU on, compiled code is placed and sealed by M4_CODE_GUARD, and an arena's buffer
 * is released (m4_release) before it is used again. Without it: no guard, nothing to release.
 */
#ifdef WB_MPU
#include "../../boards/common/mpu.h"
#define M4_CODE_GUARD (&wb_mpu_code_guard)
#define m4_release(buf, n) wb_mpu_release((buf), (n))
#else
#define M4_CODE_GUARD NULL
#define m4_release(buf, n) ((void)(buf), (void)(n))
#endif

#endif
