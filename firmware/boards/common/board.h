/*
 * Board support interface: what firmware/boards/common/main.c needs from a board.
 * Each board directory provides board.c (clock, SysTick, UART, LEDs/GPIO), its
 * linker script and board.mk (sizes of the device runtime's buffers).
 */
#ifndef WB_BOARD_H
#define WB_BOARD_H

#include <stdint.h>

#include "../../device/device.h"

/* Board identity and memory, as in renode/boards/boards.go. */
extern const char board_name[];
extern const uint32_t board_ram, board_flash;

void board_init(void);      /* clocks, SysTick at 1 kHz, UART, GPIO */
uint64_t board_millis(void); /* since boot */

extern const wbd_hal board_hal;
extern const wbd_transport board_uart; /* the protocol UART */

/* Cortex-M core: SysTick at `hz` core clock, 1 ms ticks. */
void cm_systick_start(uint32_t core_hz);
void cm_reset(void);

#endif
