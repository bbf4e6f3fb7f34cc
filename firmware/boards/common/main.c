/*
 * Firmware entry point: the device runtime over the board's protocol UART, forever,
 * feeding the watchdog after every poll.
 * The device identity is a build-time string (WB_DEVICE_ID) kept in its own flash
 * section, so a provisioning step can patch it in firmware.bin without a rebuild.
 */
#include "board.h"

#ifndef WB_DEVICE_ID
#define WB_DEVICE_ID "default/device"
#endif
#ifndef WB_FIRMWARE_VERSION
#define WB_FIRMWARE_VERSION "0.1.0"
#endif

/* "<namespace>/<device>", NUL-padded; patchable (section .wb_identity). */
__attribute__((section(".wb_identity"), used)) const char wb_device_id[128] = WB_DEVICE_ID;

#ifdef WB_BOOT_NOTE
const char *board_boot_note; /* set by board_init */
#endif

static wbd_device dev;

int main(void)
{
    board_init();
    wbd_config cfg = {
        .device_id = wb_device_id,
        .board = board_name,
        .firmware = WB_FIRMWARE_VERSION,
        .ram = board_ram,
        .flash = board_flash,
        .fuel = 0,
        .hal = &board_hal,
        .io = &board_uart,
#ifdef WB_BOOT_NOTE
        .boot_note = board_boot_note,
#endif
#if WBD_STORE
        .store = board_store(),
#endif
        .crash = &board_crash,
    };
    wbd_init(&dev, &cfg);
    for (;;) { /* each pass makes progress: a call or a driver that stops it resets the board */
        wbd_poll(&dev, 1000);
        board_watchdog_feed();
    }
}
