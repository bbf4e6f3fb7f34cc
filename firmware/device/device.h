/*
 * Wasmbed device runtime: the device side of the protocol (docs/protocol.md) over a
 * byte-stream transport, and the applications it runs with the interpreter and the
 * ABI layer (app/). Single-threaded and cooperative: the caller calls wbd_poll() in a
 * loop; each call serves at most one batch of input, sends due heartbeats and runs
 * the `loop` of every application that is due. Everything lives in the wbd_device
 * (no allocation); sizes are compile-time (WBD_* below, set per board).
 */
#ifndef WB_DEVICE_H
#define WB_DEVICE_H

#include <stdint.h>

#include "../app/wasmbed_app.h"
#include "../proto/wbp.h"

#ifndef WBD_MAX_APPS
#define WBD_MAX_APPS 2 /* applications held at once */
#endif
#ifndef WBD_SLOT_SIZE
#define WBD_SLOT_SIZE (16 * 1024) /* module buffer; max_module in Hello */
#endif
#ifndef WBD_ARENA_SIZE
#define WBD_ARENA_SIZE (24 * 1024) /* interpreter arena per app, linear memory included */
#endif
#ifndef WBD_MEM_CAP
#define WBD_MEM_CAP (12 * 1024) /* bytes backing an app's memory 0, taken from its arena */
#endif
#ifndef WBD_MAX_FRAME
#define WBD_MAX_FRAME 4096 /* receive body limit announced in Hello */
#endif
#ifndef WBD_TX_SIZE
#define WBD_TX_SIZE 2048 /* largest frame the device sends */
#endif
#ifndef WBD_CONFIG_SIZE
#define WBD_CONFIG_SIZE 512 /* encoded config map kept per module */
#endif
#ifndef WBD_WINDOW
#define WBD_WINDOW 4
#endif
#ifndef WBD_STORE
#define WBD_STORE 0 /* 1: compile the persistent store (wbd_config.store); boards set it in board.mk */
#endif
#ifndef WBD_END_ON_CLOSE
/* 1: a transport whose read reports it closed (< 0) ends the session, so the next stream
 * starts with Hello (the network image, whose TLS connections come and go; a UART never
 * closes, and its images do without the code). */
#define WBD_END_ON_CLOSE 0
#endif
#define WBD_SLOTS (WBD_MAX_APPS + 1) /* one spare slot receives a new version while the old one runs */

#define WBD_HELLO_TIMEOUT_MS 10000u
#define WBD_MIN_BACKOFF_MS 1000u
#define WBD_MAX_BACKOFF_MS 60000u

/* Receive counters of a buffered transport (a UART's interrupt-fed ring). */
typedef struct {
    uint32_t lost; /* bytes dropped since boot: buffer full, or the hardware's overrun */
    uint32_t peak; /* most bytes held at once since boot */
    uint32_t size; /* the buffer's size */
} wbd_rx_stats;

/* Byte stream to the gateway (a UART, a socket). */
typedef struct {
    void *ctx;
    /* Up to cap bytes, waiting at most timeout_ms for the first: >0 bytes read, 0 timeout, <0 closed. */
    int (*read)(void *ctx, uint8_t *buf, uint32_t cap, uint32_t timeout_ms);
    /* All len bytes: 0, or <0 on failure. */
    int (*write)(void *ctx, const uint8_t *buf, uint32_t len);
    /* Optional (NULL: none): the receive counters. While a session is open, wbd_poll
     * reports them as a firmware Log line when bytes were lost since the last line
     * (warn) or the peak has doubled since it (debug; first at 32 bytes):
     * "rx: <lost> lost, peak <peak> of <size> bytes". */
    void (*rx_stats)(void *ctx, wbd_rx_stats *out);
    /* Optional (NULL: write never waits): how many bytes write takes now without waiting
     * (a UART's free transmit ring). An app's Log and Telemetry frames are sent only when
     * they fit, else dropped and counted (docs/abi.md, "Limits"); the protocol's own
     * frames wait for room. */
    uint32_t (*tx_room)(void *ctx);
} wbd_transport;

/* Non-volatile storage for the applications (NOR flash semantics), optional: with
 * WBD_STORE=1 and wbd_config.store set, every verified module with its configuration,
 * digest, signature and run state is saved, and wbd_init restores and verifies it again
 * (format and power-loss rules: firmware/README.md, "Persistence"). The store is `size`
 * bytes at offsets 0..size-1, split into two areas of size/2 bytes, each a whole number
 * of `sector`-byte erase units.
 *   read:    len bytes from off; 0, or <0 on failure.
 *   erase:   the sector starting at off (a multiple of sector); afterwards it reads 0xFF.
 *   program: len bytes at off, both multiples of 4, over erased bytes only (programming
 *            can only clear bits); 0, or <0 on failure (then the save is abandoned). */
typedef struct {
    void *ctx;
    uint32_t size, sector;
    int (*read)(void *ctx, uint32_t off, void *buf, uint32_t len);
    int (*erase)(void *ctx, uint32_t off);
    int (*program)(void *ctx, uint32_t off, const void *buf, uint32_t len);
} wbd_store;

/* The on-store layout (little-endian, as both the host and Cortex-M are). An area starts
 * with a wbd_area_hdr, programmed last (the commit); record i follows at
 * sizeof(wbd_area_hdr) + i * WBD_REC_STRIDE: a wbd_rec_hdr, the config (WBD_CONFIG_SIZE
 * bytes reserved), the module (WBD_SLOT_SIZE bytes reserved). */
#define WBD_AREA_MAGIC 0x31534257u /* "WBS1" */
#define WBD_REC_MAGIC 0x32524257u  /* "WBR2": WBR1 had no manifest and no error field */
#define WBD_SUM 16                 /* bytes of sha256 kept as a checksum */
typedef struct {
    uint32_t magic, seq, napps, stride;
    uint8_t sum[WBD_SUM]; /* sha256 of the 16 bytes above */
} wbd_area_hdr;
/* What a verified module's manifest says beyond the Deploy: enough, with the device's
 * namespace and the app's name, module and configuration, to encode the manifest again
 * and check its signature (at boot), and to refuse a lower version. */
typedef struct {
    uint64_t generation, version; /* 0: no manifest (no key) */
    uint8_t uid_len, pad[7];
    char uid[WBP_MAX_UID];
    uint8_t sig[WBP_SIGNATURE];
} wbd_manifest;

typedef struct {
    uint32_t magic, size; /* module bytes */
    uint16_t config_len;
    uint8_t name_len;
    uint8_t state; /* Received, Stopped, Running (start at boot), or Failed (a fault: do not start) */
    char name[64];
    uint8_t digest[WBP_DIGEST];
    uint8_t pad[4]; /* zero: man starts 8-aligned */
    wbd_manifest man;
    char error[WBP_MAX_ERROR_MSG]; /* state Failed: why, NUL-padded */
    uint8_t sum[WBD_SUM]; /* sha256 of the header above this field and of the config bytes */
} wbd_rec_hdr;
#define WBD_ALIGN4(n) (((uint32_t)(n) + 3u) & ~3u)
#define WBD_REC_STRIDE (sizeof(wbd_rec_hdr) + WBD_ALIGN4(WBD_CONFIG_SIZE) + WBD_ALIGN4(WBD_SLOT_SIZE))
#define WBD_AREA_NEED (sizeof(wbd_area_hdr) + WBD_MAX_APPS * WBD_REC_STRIDE) /* bytes an area needs */

/* An app's manifest as the app keeps it: all of it with a store (saved, and verified again
 * at boot); without one only the version, which is all the version rule needs. */
#if WBD_STORE
typedef wbd_manifest wbd_app_manifest;
#else
typedef struct {
    uint64_t version;
} wbd_app_manifest;
#endif

/*
 * Why the firmware last stopped, kept across the reset in RAM that start-up does not clear
 * (wbd_config.crash; the boards' is boards/common/fault.c). The device writes which app it
 * is calling; a board's fault or watchdog handler writes the cause and the registers and
 * seals the record (wbd_crash_seal) before it resets the core, or its start-up does from a
 * reset flag (a watchdog that resets at once). wbd_init takes a sealed record: the app is
 * Failed with the fault as its error (firmware/README.md, "Faults and the watchdog").
 */
enum { WBD_CAUSE_HARDFAULT = 1, WBD_CAUSE_MEMMANAGE, WBD_CAUSE_BUSFAULT, WBD_CAUSE_USAGEFAULT, WBD_CAUSE_NMI,
       WBD_CAUSE_WATCHDOG };
#define WBD_CRASH_MAGIC 0x48535243u /* "CRSH" */
#define WBD_CRASH_PC 1u             /* flags: pc holds the faulting instruction's address */
#define WBD_CRASH_ADDR 2u           /* addr holds the faulting data address (MMFAR or BFAR) */
typedef struct {
    /* the device's part: the app in a call (-1: none, the firmware) and the last one called */
    int32_t app;
    uint8_t name_len;
    char name[WBP_MAX_APP_NAME];
    uint8_t digest[WBP_DIGEST];
    /* the handler's part */
    uint32_t cause, cfsr, hfsr, addr, pc, flags;
    uint32_t magic, sum; /* WBD_CRASH_MAGIC, wbd_crash_sum: sealed */
} wbd_crash;

/* FNV-1a over the record up to magic: no table, a few instructions a byte, usable in a
 * fault handler. */
static inline uint32_t wbd_crash_sum(const wbd_crash *c)
{
    const uint8_t *p = (const uint8_t *)c;
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < (uint32_t)((const uint8_t *)&c->magic - p); i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

static inline void wbd_crash_seal(wbd_crash *c)
{
    c->magic = WBD_CRASH_MAGIC;
    c->sum = wbd_crash_sum(c);
}

/* Board services. gpio/led/sensor return 0, or -1 when the board lacks the pin/LED/sensor. */
typedef struct {
    void *ctx;
    uint64_t (*now_ms)(void *ctx); /* monotonic since boot */
    void (*delay_ms)(void *ctx, uint32_t ms);
    int (*gpio_write)(void *ctx, int32_t pin, int high);
    int (*gpio_read)(void *ctx, int32_t pin, int *high);
    int (*led_set)(void *ctx, int32_t led, int on);
    int (*sensor_read)(void *ctx, int32_t sensor, int32_t *milli);
    /* Optional (NULL: none): places and seals the native tier's code (wasm.h), and
     * code_release undoes the seals inside an arena before the device reuses it. */
    const wasm_code_guard *code_guard;
    void (*code_release)(const void *buf, size_t n);
} wbd_hal;

typedef struct {
    const char *device_id; /* "<namespace>/<device>" */
    const char *board;
    const char *firmware;
    uint32_t ram, flash;
    uint64_t fuel; /* per start/setup/loop call; 0 = WB_DEFAULT_FUEL */
    const wbd_hal *hal;
    const wbd_transport *io;
    /* The platform's deployment verification key (Ed25519, 32 bytes, RFC 8032
     * encoding), NULL: none. With a key, every Deploy must carry a deployment manifest
     * it signed, for this device's namespace and the Deploy's app, module and
     * configuration, at a version not below the app's (docs/protocol.md, "Deployment
     * manifest"); without one, nothing is checked (development only). Boards take it
     * from their provisioned .wb_keys section (boards/common/main.c). */
    const uint8_t *deploy_key;
    /* Optional (NULL: none): appended to the firmware log line sent after every Welcome,
     * "wasmbed firmware ready; <boot_note>" (the board reports its clock there). */
    const char *boot_note;
#if WBD_STORE
    /* Non-volatile storage; NULL: apps live in RAM only, as in WBD_STORE=0 builds. */
    const wbd_store *store;
#endif
    /* Optional (NULL: none): the crash record above, in RAM a reset keeps. */
    wbd_crash *crash;
} wbd_config;

enum { WBD_IDLE, WBD_WAIT_WELCOME, WBD_WELCOMED };

struct wbd_device;

typedef struct wbd_app {
    struct wbd_device *dev;
    uint8_t used;
    uint8_t name_len;
    char name[WBP_MAX_APP_NAME + 1];
    uint8_t state; /* wbp_app_state */
    /* verified module */
    int8_t slot; /* -1: none */
    uint8_t digest[WBP_DIGEST];
    uint32_t size;
    uint16_t config_len;
    uint8_t config[WBD_CONFIG_SIZE];
    /* transfer in progress */
    int8_t pend_slot;
    uint8_t pend_digest[WBP_DIGEST];
    uint32_t pend_size, pend_chunk, pend_held;
    uint16_t pend_config_len;
    uint8_t pend_config[WBD_CONFIG_SIZE];
    wbd_app_manifest pend_man;          /* the latest Deploy's verified manifest */
    wbd_app_manifest man;               /* the verified module's */
#if WBD_STORE
    uint8_t run;                      /* started by Start, not stopped since: start again at boot */
#endif
    /* run */
    char error[WBP_MAX_ERROR_MSG + 1];
    uint64_t loops, traps, fuel;
    uint64_t next_loop_ms;
    wb_board board;
    wb_app rt;
} wbd_app;

typedef struct wbd_device {
    wbd_config cfg;
    int session;
    uint64_t session_id;
    uint32_t limit; /* body limit both ways */
    uint64_t hb_interval_ms, hb_timeout_ms, next_hb_ms, last_rx_ms, hello_ms, retry_ms, backoff_ms;
    uint64_t time_offset; /* server_time - uptime at Welcome, 0 = unknown */
    uint32_t hb_seq;
    uint32_t sessions;
    uint32_t rx_lost, rx_peak; /* receive counters as last reported */
#if WBD_STORE
    uint32_t store_seq;  /* sequence number of the valid area, 0 = none */
    int8_t store_area;   /* the area holding it, -1 = none */
    uint8_t store_nlog;  /* restore lines waiting for the first session */
    char store_log[WBD_MAX_APPS + 1][96];
#endif
    wbp_reader reader;
    wbd_crash fault;    /* the sealed crash record found at boot (magic 0: none) */
    const struct wbd_app *crash_named; /* the app whose name and digest the record holds */
    uint8_t fault_told; /* reported after the first Welcome */
    uint8_t stage[64];
    uint32_t stage_pos, stage_len;
    /* The app whose call (start, setup, loop) is running: its sleep_ms and yield serve the
     * session meanwhile. A Deploy, Chunk, Start, Stop or Remove received then is held
     * (its body stays in rx, no more input is read) and applied when the call ends; a
     * Stop or Remove of the busy app also ends its call at once (stop_busy). */
    wbd_app *busy;
    uint32_t held; /* body length of the held frame, 0: none */
    uint8_t stop_busy;
    wbd_app apps[WBD_MAX_APPS];
    uint8_t slot_used[WBD_SLOTS];
    wbp_msg msg; /* decoded input (views into rx) */
    wbp_msg out; /* message being sent */
    uint8_t rx[WBD_MAX_FRAME];
    uint8_t tx[WBD_TX_SIZE];
    uint8_t slots[WBD_SLOTS][WBD_SLOT_SIZE];
    uint8_t arenas[WBD_MAX_APPS][WBD_ARENA_SIZE];
} wbd_device;

void wbd_init(wbd_device *d, const wbd_config *cfg);
/* Serves the session for at most max_wait_ms: <0 when the transport is closed. */
int wbd_poll(wbd_device *d, uint32_t max_wait_ms);
/* Sends a firmware log line (level 0..3) when a session is open. */
void wbd_log(wbd_device *d, uint8_t level, const char *msg);

#endif
