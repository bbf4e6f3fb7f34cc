/*
 * Fault injection, in the images the QEMU fault tests build (board.mk FAULT_INJECT=1),
 * never in a shipped one: an app reads sensor WB_INJECT_* and the firmware does, inside
 * that host call, what a compromised app or a broken driver would. Each must end in a
 * fault or a watchdog reset, recorded and reported after the reboot; if the protection
 * fails and the call returns, the sensor reads WB_INJECT_SURVIVED, which the test sees.
 */
#ifndef WB_INJECT_H
#define WB_INJECT_H

#include <stdint.h>

enum {
    WB_INJECT_WRITE_CODE = 0x7e570000, /* store into the app's sealed native code */
    WB_INJECT_EXEC_RAM,                /* call a `bx lr` in RAM */
    WB_INJECT_HARDFAULT,               /* svc with interrupts masked: escalates to HardFault */
    WB_INJECT_HANG,                    /* spin forever: only the watchdog ends it */
    WB_INJECT_STACK,                   /* recurse until the machine stack runs out */
    WB_INJECT_END
};
#define WB_INJECT_SURVIVED 1
#define WB_INJECT_NOTHING_SEALED 2 /* WRITE_CODE: the app has no sealed code to write to */

/* 0 when sensor is an injection (*milli says how it came back), -1 when it is not one. */
int wb_inject(int32_t sensor, int32_t *milli);

#endif
