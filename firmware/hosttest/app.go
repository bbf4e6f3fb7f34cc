package hosttest

/*
#include <stdlib.h>
#include <string.h>
#include "../app/wasmbed_app.h"

// tb is a simulated board that records what an application does, for comparison with
// the Go host's SimBoard.
typedef struct tb {
	uint64_t now;
	char trace[16384]; uint32_t len;
	int32_t sensors[4];
	const char *cfg_key; const char *cfg_val;
	int leds[4];
	int gpio[16];
	wb_board board;
	wb_app app;
	void *arena;
} tb;

static void tb_put(tb *t, const char *s, uint32_t n) {
	if (t->len + n + 1 >= sizeof t->trace) return;
	memcpy(t->trace + t->len, s, n);
	t->len += n;
	t->trace[t->len] = 0;
}
static void tb_printf_u(tb *t, const char *pre, int64_t v) {
	char buf[64]; int n = 0; char tmp[32]; int k = 0;
	while (pre[n]) { buf[n] = pre[n]; n++; }
	int neg = v < 0; uint64_t u = neg ? (uint64_t)(-v) : (uint64_t)v;
	do { tmp[k++] = (char)('0' + u % 10); u /= 10; } while (u);
	if (neg) buf[n++] = '-';
	while (k) buf[n++] = tmp[--k];
	tb_put(t, buf, (uint32_t)n);
}
static int b_log(void *c, int32_t level, const uint8_t *m, uint32_t n) {
	tb *t = c; tb_printf_u(t, "log ", level); tb_put(t, " ", 1); tb_put(t, (const char *)m, n); tb_put(t, "\n", 1);
	return 0;
}
static uint64_t b_clock(void *c) { return ((tb *)c)->now; }
static int b_sleep(void *c, uint32_t ms) { ((tb *)c)->now += ms; return 0; }
static int b_yield(void *c) { (void)c; return 0; }
static int b_gpio_write(void *c, int32_t pin, int high) {
	tb *t = c; if (pin < 0 || pin >= 16) return -1; t->gpio[pin] = high != 0; return 0;
}
static int b_gpio_read(void *c, int32_t pin, int *high) {
	tb *t = c; if (pin < 0 || pin >= 16) return -1; *high = t->gpio[pin]; return 0;
}
static int b_led(void *c, int32_t led, int on) {
	tb *t = c; if (led < 0 || led >= 4) return -1;
	if (t->leds[led] != (on != 0)) { t->leds[led] = on != 0; tb_printf_u(t, "led ", led); tb_printf_u(t, " ", on != 0); tb_put(t, "\n", 1); }
	return 0;
}
static int b_sensor(void *c, int32_t s, int32_t *milli) {
	tb *t = c; if (s < 0 || s >= 4) return -1; *milli = t->sensors[s]; return 0;
}
static int b_publish(void *c, const uint8_t *topic, uint32_t tl, const uint8_t *d, uint32_t dl) {
	tb *t = c; tb_put(t, "publish ", 8); tb_put(t, (const char *)topic, tl); tb_put(t, " ", 1); tb_put(t, (const char *)d, dl); tb_put(t, "\n", 1);
	return 0;
}
static int b_config(void *c, const uint8_t *k, uint32_t kl, const uint8_t **v, uint32_t *vl) {
	tb *t = c;
	if (!t->cfg_key || strlen(t->cfg_key) != kl || memcmp(t->cfg_key, k, kl)) return -1;
	*v = (const uint8_t *)t->cfg_val; *vl = (uint32_t)strlen(t->cfg_val); return 0;
}

static tb *tb_new(void) {
	tb *t = calloc(1, sizeof *t);
	t->board = (wb_board){ t, b_log, b_clock, b_sleep, b_yield, b_gpio_write, b_gpio_read, b_led, b_sensor, b_publish, b_config, NULL };
	t->arena = malloc(1u << 20);
	return t;
}
static int tb_start(tb *t, const void *bin, uint32_t len) {
	return wb_app_start(&t->app, &t->board, bin, len, t->arena, 1u << 20, 0, NULL);
}
static int tb_loop(tb *t, int32_t *delay) { return wb_app_loop(&t->app, delay); }
static const char *tb_failure(tb *t) { return t->app.state == WB_STATE_FAILED ? wb_app_reason(&t->app, t->app.reason) : ""; }
static void tb_free(tb *t) { free(t->arena); free(t); }
*/
import "C"

import "unsafe"

// Board is the C application runtime (firmware/app) on a simulated board that records
// log lines, LED changes and published records in one trace.
type Board struct {
	t   *C.tb
	bin unsafe.Pointer
}

// NewBoard returns a board with the given sensor values (milli-units, by sensor id 0-3)
// and at most one configuration key.
func NewBoard(sensors [4]int32, cfgKey, cfgVal string) *Board {
	b := &Board{t: C.tb_new()}
	for i, v := range sensors {
		b.t.sensors[i] = C.int32_t(v)
	}
	if cfgKey != "" {
		b.t.cfg_key, b.t.cfg_val = C.CString(cfgKey), C.CString(cfgVal)
	}
	return b
}

// Start loads and instantiates a module and calls setup.
func (b *Board) Start(bin []byte) error {
	b.bin = C.CBytes(bin) // the runtime executes the module in place
	if e := C.tb_start(b.t, b.bin, C.uint32_t(len(bin))); e != 0 {
		return Err(e)
	}
	return nil
}

// Loop calls loop once and returns its delay.
func (b *Board) Loop() (int32, error) {
	var d C.int32_t
	if e := C.tb_loop(b.t, &d); e != 0 {
		return 0, Err(e)
	}
	return int32(d), nil
}

// The C runtime's wall-clock limits (firmware/app/wasmbed_app.h), which api/abi must repeat.
const (
	CallTimeMs      = C.WB_CALL_TIME_MS
	LogPeriodMs     = C.WB_LOG_PERIOD_MS
	LogBurst        = C.WB_LOG_BURST
	PublishPeriodMs = C.WB_PUBLISH_PERIOD_MS
	PublishBurst    = C.WB_PUBLISH_BURST
)

// Failure returns the AppStatus text of the app's failure (wb_app_reason), or "" when it
// has not failed.
func (b *Board) Failure() string { return C.GoString(C.tb_failure(b.t)) }

// Now returns the board's clock, in ms.
func (b *Board) Now() int64 { return int64(b.t.now) }

// Advance moves the board's clock.
func (b *Board) Advance(ms int64) { b.t.now += C.uint64_t(ms) }

// Trace returns what the application did so far.
func (b *Board) Trace() string { return C.GoStringN(&b.t.trace[0], C.int(b.t.len)) }

// Close frees the board.
func (b *Board) Close() {
	if b.t.cfg_key != nil {
		C.free(unsafe.Pointer(b.t.cfg_key))
		C.free(unsafe.Pointer(b.t.cfg_val))
	}
	C.free(b.bin)
	C.tb_free(b.t)
}
