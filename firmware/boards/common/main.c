/*
 * Firmware entry point: the device runtime over the board's protocol UART, forever,
 * feeding the watchdog after every poll.
 * The device identity (WB_DEVICE_ID) and the deployment key (WB_DEPLOY_KEY) are
 * build-time defaults kept in flash sections of their own, so a provisioning step can
 * patch them in the image without a rebuild.
 */
#include "board.h"
#ifdef WB_NET
#include "../../net/net.h"
#endif

#ifndef WB_DEVICE_ID
#define WB_DEVICE_ID "default/device"
#endif
#ifndef WB_FIRMWARE_VERSION
#define WB_FIRMWARE_VERSION "0.1.0"
#endif

/* "<namespace>/<device>", NUL-padded; patchable (section .wb_identity). */
__attribute__((section(".wb_identity"), used)) const char wb_device_id[128] = WB_DEVICE_ID;

/* The platform's deployment verification key (docs/protocol.md, "Deployment manifest"):
 * "WBK1" and the 32-byte Ed25519 public key, in its own flash section so that
 * provisioning writes it at flash time (the board manager does, emulation/manager) without
 * a rebuild; a build-time key (-DWB_DEPLOY_KEY=0x..,..., `make boards SIGNING_KEY=...`)
 * is the default. Any other content: no key, and the device checks no manifest. */
__attribute__((section(".wb_keys"), used)) const uint8_t wb_deploy_key[36] = {
#ifdef WB_DEPLOY_KEY
    'W', 'B', 'K', '1', WB_DEPLOY_KEY
#endif
};

static const uint8_t *provisioned_key(void)
{
    const uint8_t *k = wb_deploy_key;
    /* What flash holds after provisioning, not the initializer: hide the value. */
    __asm__("" : "+r"(k));
    return k[0] == 'W' && k[1] == 'B' && k[2] == 'K' && k[3] == '1' ? k + 4 : NULL;
}

#ifdef WB_BOOT_NOTE
const char *board_boot_note; /* set by board_init */
#endif

static wbd_device dev;

int main(void)
{
    board_init();
#ifdef WB_NET
    /* The network image: TLS to the gateway, its own identity; the UART is its console. */
    const char *net_id = 0;
    const wbd_transport *net_io = wbn_start(&net_id);
#define MAIN_DEVICE_ID net_id
#define MAIN_IO net_io
#else
#define MAIN_DEVICE_ID wb_device_id
#define MAIN_IO (&board_uart)
#endif
    wbd_config cfg = {
        .device_id = MAIN_DEVICE_ID,
        .board = board_name,
        .firmware = WB_FIRMWARE_VERSION,
        .ram = board_ram,
        .flash = board_flash,
        .fuel = 0,
        .hal = &board_hal,
        .io = MAIN_IO,
        .deploy_key = provisioned_key(),
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
