/*
 * ARMv7-M memory protection unit (Cortex-M4: 8 regions), as every board and the
 * bare-metal test images on the emulated Cortex-M4F set it up (mpu.c, docs/boards.md,
 * "Isolation"):
 *
 *   region 0  code space 0x00000000, 512 MiB  read-write, never executed (aliases,
 *             CCM, a code-bus alias of SRAM: none of them runs code)
 *   region 1  SRAM space 0x20000000, 512 MiB  read-write, never executed (.data,
 *             .bss, the stack, every app's arena: linear memory, tables, stacks)
 *   region 2  the image's flash               read-only, executable
 *   region 3  guard below the stack           no access: an overflow faults
 *   regions 4-7  native code of the apps      read-only, executable once sealed
 *
 * A higher region wins where two overlap; what no region covers (peripherals, the
 * system space) keeps the default map (PRIVDEFENA), where it is never executable.
 * The fault handlers (HardFault, NMI) run with the MPU off (HFNMIENA clear).
 */
#ifndef WB_MPU_H
#define WB_MPU_H

#include <stddef.h>
#include <stdint.h>

#include "../../wasm/wasm.h"

/* Number of regions sealing native code (4..7): as many arenas hold sealed code at once. */
#define WB_MPU_CODE_REGIONS 4

typedef struct {
    uintptr_t flash, flash_size;   /* the image's flash: a multiple of 1/8 of the power of two
                                      covering it, aligned to that power of two */
    uintptr_t guard, guard_size;   /* no-access block (a power of two >= 32, aligned to it); size 0: none */
} wb_mpu_layout;

/* Programs regions 0-3 and enables the MPU: 0, or -1 when the core has no MPU (then
 * nothing is protected and the code guard places and seals nothing). */
int wb_mpu_init(const wb_mpu_layout *l);

/* The code guard for wasm_config (wasm.h): native code placed where one region can seal it. */
extern const wasm_code_guard wb_mpu_code_guard;

/* [buf, buf + n) is about to be used again (an arena reused): code sealed in it becomes
 * ordinary RAM again (read-write, never executed) and its region free. */
void wb_mpu_release(const void *buf, size_t n);

/* The start of the code sealed by code region i (0..WB_MPU_CODE_REGIONS-1), 0 if none. */
uintptr_t wb_mpu_sealed_code(uint32_t i);

#endif
