/*
 * Wasmbed device protocol v1 (docs/protocol.md): message structs, strict decoder,
 * deterministic encoder and frame reader/writer. No allocation: a decoded message
 * points into the body buffer it came from (strings and byte strings are views), so
 * it is valid as long as that buffer is.
 */
#ifndef WB_WBP_H
#define WB_WBP_H

#include <stddef.h>
#include <stdint.h>

#define WBP_VERSION 1
#define WBP_HEADER 3
#define WBP_DEFAULT_MAX_FRAME 2048u
#define WBP_MIN_MAX_FRAME 512u
#define WBP_HARD_MAX_FRAME 16384u
#define WBP_CHUNK_OVERHEAD 79u
#define WBP_DIGEST 32u
#define WBP_SIGNATURE 64u
#define WBP_MAX_APPS 16u
#define WBP_MAX_CONFIG 32u
#define WBP_MAX_APP_NAME 63u
#define WBP_MAX_DEVICE_ID 320u
#define WBP_MAX_BOARD 64u
#define WBP_MAX_FIRMWARE 64u
#define WBP_MAX_MODULE (16u << 20)
#define WBP_MAX_WINDOW 16u
#define WBP_MAX_TOPIC 64u
#define WBP_MAX_PAYLOAD 512u
#define WBP_MAX_LOG 256u
#define WBP_MAX_ERROR_MSG 128u
#define WBP_MAX_CONFIG_KEY 64u
#define WBP_MAX_CONFIG_VALUE 256u
#define WBP_MAX_HEARTBEAT_S 86400u
#define WBP_MAX_MANIFEST 320u  /* encoded deployment manifest (Deploy key 7) */
#define WBP_MAX_NAMESPACE 63u
#define WBP_MAX_UID 64u
#define WBP_MANIFEST_TYPE "wasmbed.dev/deploy/v1"

typedef enum {
    WBP_HELLO = 1,
    WBP_WELCOME = 2,
    WBP_HEARTBEAT = 3,
    WBP_HEARTBEAT_ACK = 4,
    WBP_DEPLOY = 5,
    WBP_DEPLOY_ACK = 6,
    WBP_CHUNK = 7,
    WBP_CHUNK_ACK = 8,
    WBP_START = 9,
    WBP_STOP = 10,
    WBP_REMOVE = 11,
    WBP_APP_STATUS = 12,
    WBP_TELEMETRY = 13,
    WBP_LOG = 14,
    WBP_ERROR = 15,
} wbp_type;

/* Error codes (section 7). WBP_OK and WBP_E_TRUNCATED/WBP_E_CLOSED are local only. */
typedef enum {
    WBP_OK = 0,
    WBP_E_MALFORMED = 1,
    WBP_E_UNSUPPORTED_VERSION = 2,
    WBP_E_FRAME_TOO_LARGE = 3,
    WBP_E_UNKNOWN_MESSAGE = 4,
    WBP_E_UNEXPECTED_MESSAGE = 5,
    WBP_E_INVALID_VALUE = 6,
    WBP_E_UNAUTHORIZED = 7,
    WBP_E_NOT_FOUND = 8,
    WBP_E_BAD_STATE = 9,
    WBP_E_NO_SPACE = 10,
    WBP_E_TOO_LARGE = 11,
    WBP_E_BAD_OFFSET = 12,
    WBP_E_DIGEST_MISMATCH = 13,
    WBP_E_BAD_SIGNATURE = 14,
    WBP_E_BUSY = 15,
    WBP_E_HEARTBEAT_TIMEOUT = 16,
    WBP_E_INTERNAL = 17,
    WBP_E_GOING_AWAY = 18,
    WBP_E_TRUNCATED = 0x100, /* stream ended inside a frame */
    WBP_E_CLOSED = 0x101,    /* stream ended between frames */
} wbp_err;

typedef enum {
    WBP_RECEIVING = 1,
    WBP_RECEIVED = 2,
    WBP_RUNNING = 3,
    WBP_STOPPED = 4,
    WBP_EXITED = 5,
    WBP_FAILED = 6,
    WBP_REMOVED = 7,
} wbp_app_state;

/* A view of a text or byte string (not NUL-terminated). */
typedef struct {
    const uint8_t *p;
    uint32_t n;
} wbp_str;

typedef struct {
    uint32_t ram, flash, max_module, abi, max_frame;
} wbp_caps;

typedef struct {
    wbp_str name, digest;
    uint8_t state;
} wbp_app_info;

typedef struct {
    wbp_str key, value;
} wbp_kv;

typedef struct {
    wbp_str device_id, board, firmware;
    wbp_caps caps;
    uint32_t napps;
    wbp_app_info apps[WBP_MAX_APPS];
} wbp_hello;

typedef struct {
    uint64_t session_id;
    uint32_t heartbeat_interval, heartbeat_timeout;
    uint64_t server_time;
    uint32_t max_frame;
} wbp_welcome;

typedef struct {
    uint32_t seq;
    uint64_t time; /* Heartbeat: uptime; HeartbeatAck: server_time */
} wbp_heartbeat;

typedef struct {
    wbp_str app, digest;
    uint32_t size, chunk_size;
    uint32_t nconfig;
    wbp_kv config[WBP_MAX_CONFIG];
    wbp_str config_raw; /* decoded: the config map's encoded bytes */
    wbp_str signature;  /* optional: ed25519 signature of manifest */
    wbp_str manifest;   /* optional, present exactly when signature is */
} wbp_deploy;

/* A deployment manifest (docs/protocol.md, "Deployment manifest"): what the platform's
 * deployment key vouches for. Views point into the decoded bytes. */
typedef struct {
    wbp_str type, ns, app, uid;
    uint64_t generation, version;
    wbp_str digest, config_hash;
} wbp_manifest;

typedef struct {
    wbp_str app, digest;
    uint32_t offset, window;
} wbp_deploy_ack;

typedef struct {
    wbp_str app;
    uint32_t offset;
    wbp_str data;
} wbp_chunk;

typedef struct {
    wbp_str app;
    uint32_t next;
} wbp_chunk_ack;

typedef struct {
    wbp_str app;
} wbp_app_cmd; /* Start, Stop, Remove */

typedef struct {
    wbp_str app, digest;
    uint8_t state;
    wbp_str error; /* optional */
    uint64_t loops, traps, fuel;
} wbp_app_status;

typedef struct {
    wbp_str app, topic, payload;
    uint64_t time;
} wbp_telemetry;

typedef struct {
    uint8_t level;
    wbp_str app; /* optional */
    wbp_str message;
} wbp_log;

typedef struct {
    uint16_t code;
    wbp_str message; /* optional */
    uint8_t related; /* optional */
    wbp_str app;     /* optional */
} wbp_error;

typedef struct {
    uint8_t type;
    union {
        wbp_hello hello;
        wbp_welcome welcome;
        wbp_heartbeat heartbeat; /* also HeartbeatAck */
        wbp_deploy deploy;
        wbp_deploy_ack deploy_ack;
        wbp_chunk chunk;
        wbp_chunk_ack chunk_ack;
        wbp_app_cmd cmd;
        wbp_app_status app_status;
        wbp_telemetry telemetry;
        wbp_log log;
        wbp_error error;
    } u;
} wbp_msg;

/* Decode one body strictly. On failure *related is the message type when it was known. */
wbp_err wbp_decode(const uint8_t *body, size_t n, wbp_msg *m, uint8_t *related);
/* Range checks of section 4 (invalid_value); the decoder and the encoder call it. */
wbp_err wbp_validate(const wbp_msg *m);
/* Encode a body in Core Deterministic Encoding; WBP_E_INVALID_VALUE or WBP_E_FRAME_TOO_LARGE (no room). */
wbp_err wbp_encode(const wbp_msg *m, uint8_t *buf, size_t cap, size_t *len);
/* Encode a complete frame (header + body) with a body of at most limit bytes. */
wbp_err wbp_encode_frame(const wbp_msg *m, uint8_t *buf, size_t cap, size_t limit, size_t *len);
/* Check a frame header against a body limit; *n is the body length. */
wbp_err wbp_check_header(const uint8_t h[WBP_HEADER], size_t limit, size_t *n);
/* Decode a buffer holding exactly one frame (trailing bytes are malformed). */
wbp_err wbp_decode_frame(const uint8_t *b, size_t n, size_t limit, wbp_msg *m, uint8_t *related);

/* Decode a manifest strictly (unknown keys skipped) and check its ranges: WBP_OK, or
 * WBP_E_INVALID_VALUE for anything wrong with it (it is the value of Deploy key 7). */
wbp_err wbp_manifest_decode(const uint8_t *p, size_t n, wbp_manifest *m);
/* Encode a manifest canonically, the bytes its signature covers; 0 when it does not
 * fit cap or is out of range. */
size_t wbp_manifest_encode(const wbp_manifest *m, uint8_t *buf, size_t cap);

/* Helpers for building messages. */
wbp_str wbp_cstr(const char *s);
wbp_str wbp_mem(const void *p, size_t n);
int wbp_str_eq(wbp_str a, wbp_str b);
int wbp_app_name_valid(wbp_str s);
/* Looks up a text key in an encoded config map (as kept from Deploy.config_raw). */
int wbp_config_find(wbp_str config_raw, const uint8_t *key, uint32_t klen, wbp_str *val);
/* Truncates s to at most n bytes on a UTF-8 boundary. */
wbp_str wbp_truncate(wbp_str s, uint32_t n);

const char *wbp_err_name(wbp_err e); /* "malformed", "frame_too_large", ..., "truncated" */
const char *wbp_type_name(unsigned t);

/*
 * Incremental frame reader over a byte stream. The caller gives it a buffer of
 * at least the current limit; the limit is checked on the header before any body
 * byte is read.
 */
typedef struct {
    uint8_t *buf;
    size_t cap, limit;
    uint8_t hdr[WBP_HEADER];
    size_t got, need; /* header bytes or body bytes held / expected */
    int in_body;
} wbp_reader;

void wbp_reader_init(wbp_reader *r, uint8_t *buf, size_t cap, size_t limit);
void wbp_reader_set_limit(wbp_reader *r, size_t limit);
void wbp_reader_reset(wbp_reader *r);
/* Feed bytes; *used is how many were consumed. Returns WBP_OK with *body_len > 0 when a frame body
 * is complete in r->buf, WBP_OK with *body_len == 0 when more input is needed, or a framing error. */
wbp_err wbp_reader_push(wbp_reader *r, const uint8_t *p, size_t n, size_t *used, size_t *body_len);
/* True when the reader is in the middle of a frame (an end of stream now is a truncation). */
int wbp_reader_mid_frame(const wbp_reader *r);

#endif
