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

/*
 * Faults and the watchdog (fault.c): the crash record, kept across a reset (device.h,
 * wbd_crash); the handler every fault and NMI vector holds; fault_boot, run by
 * reset_handler before main, which seals a record for a reset the board's flags explain
 * (board_reset_flags) and rearms it otherwise.
 */
extern wbd_crash board_crash;
void fault_entry(void);
void fault_boot(void);
/* The board's part, each optional (fault.c has defaults that know nothing):
 * board_nmi_cause: what raised an NMI (WBD_CAUSE_WATCHDOG on the MPS2, whose watchdog
 *                  interrupts first); board_reset_flags: the cause of the last reset when
 *                  no handler ran (a watchdog that resets at once: WBD_CAUSE_WATCHDOG), 0 if none. */
uint32_t board_nmi_cause(void);
uint32_t board_reset_flags(void);
/* The watchdog: started by board_init, fed by main's loop after every wbd_poll, so a call
 * or a driver that stops the loop resets the board (WB_WATCHDOG_MS). */
#ifndef WB_WATCHDOG_MS
#define WB_WATCHDOG_MS 4000u
#endif
void board_watchdog_feed(void);
/* One register write of a fixed sequence; width 1, 2 or 4 bytes. Each board's watchdog is
 * two such sequences, ended by a zero address, which boardtest reads from the image to
 * check the registers and the timeout they set (firmware/boardtest, TestWatchdogs). */
typedef struct {
    uint32_t addr, value, width;
} wb_reg_write;
extern const wb_reg_write board_wdt_start[], board_wdt_feed[];
void wb_reg_writes(const wb_reg_write *w);

/* Cortex-M core: SysTick at `hz` core clock, 1 ms ticks. */
void cm_systick_start(uint32_t core_hz);
void cm_reset(void);
/* NVIC: enables external interrupt line irq (the board's vector 16 + irq). */
static inline void cm_irq_enable(uint32_t irq)
{
    *(volatile uint32_t *)(0xe000e100u + 4u * (irq / 32u)) = 1u << (irq % 32u); /* NVIC_ISERn */
}

#endif
