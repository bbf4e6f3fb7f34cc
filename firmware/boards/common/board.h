/*
 * Board support interface: what firmware/boards/common/main.c needs from a board.
 * Each board directory provides board.c (clock, SysTick, UART, LEDs/GPIO, and
 * board_irq_vectors: the vector table's entries after the 16 core ones, placed right
 * after them by sections.ld), its linker script and board.mk (sizes of the device
 * runtime's buffers and of the UART receive ring).
 */
#ifndef WB_BOARD_H
#define WB_BOARD_H

#include <stdint.h>

#include "../../device/device.h"
#include "uart_ring.h"

/* Board identity and memory, as in api/boards/boards.go. */
extern const char board_name[];
extern const uint32_t board_ram, board_flash;

void board_init(void);      /* clocks, SysTick at 1 kHz, UART, GPIO */
/* Boards built with -DWB_BOOT_NOTE (board.mk BOARD_CFLAGS): what board_init reports in
 * the boot log line (wbd_config.boot_note), such as the clock path it took. main.c
 * defines it; other boards pay nothing. */
extern const char *board_boot_note;
uint64_t board_millis(void); /* since boot */

extern const wbd_hal board_hal;
#if WBD_STORE
/* The board's non-volatile store for the apps (board.mk: BOARD_STORE_SRC), or NULL when
 * the hardware turns out to have none (the STM32 image under QEMU). */
const wbd_store *board_store(void);
#endif
extern const wbd_transport board_uart; /* the protocol UART */
/* Its receive ring, filled by the board's UART interrupt handler (boards/common/uart.h). */
extern uart_ring board_uart_rx;
void uart_irq_handler(void);

/* Cortex-M core: SysTick at `hz` core clock, 1 ms ticks. */
void cm_systick_start(uint32_t core_hz);
void cm_reset(void);
/* NVIC: enables external interrupt line irq (the board's vector 16 + irq). */
static inline void cm_irq_enable(uint32_t irq)
{
    *(volatile uint32_t *)(0xe000e100u + 4u * (irq / 32u)) = 1u << (irq % 32u); /* NVIC_ISERn */
}

#endif
