package qemutest

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/api/protocol"
	"github.com/wasmbed/wasmbed/builder"
	"github.com/wasmbed/wasmbed/firmware/internal/fwbuild"
)

// Sensors of the fault-injection image (boards/common/inject.h): reading one makes the
// firmware do what a compromised app or a broken driver would, inside that host call.
const (
	injectWriteCode = 0x7e570000 + iota
	injectExecRAM
	injectHardFault
	injectHang
	injectStack
)

// faultSource is a C app whose third loop call reads sensor SENSOR; were the firmware to
// survive what that provokes, the app logs "survived".
const faultSource = `#include "wasmbed.h"

static int n;

WASMBED_EXPORT(loop) int32_t loop(void) {
    if (++n == 3 && wasmbed_sensor_read(SENSOR) == 1)
        wasmbed_log_str(WASMBED_LOG_ERROR, "survived");
    return 20;
}
`

// deepSource recurses in WebAssembly far beyond any call depth a device allows.
const deepSource = `(module
  (func $down (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0))
      (then (i32.const 0))
      (else (i32.add (call $down (i32.sub (local.get 0) (i32.const 1))) (i32.const 1)))))
  (func (export "loop") (result i32)
    (drop (call $down (i32.const 1000000)))
    (i32.const 100)))
`

func buildSource(ctx context.Context, t *testing.T, lang builder.Language, src string) []byte {
	t.Helper()
	res, err := builder.Build(ctx, builder.Request{Language: lang, Source: []byte(src)})
	if err != nil {
		t.Fatalf("build a %s test app (see hack/deps.sh): %v", lang, err)
	}
	return res.Module
}

// rehello waits for the Hello a reset board sends on the same UART, answers Welcome
// and returns it.
func (b *board) rehello(ctx context.Context, what string) *protocol.Hello {
	b.t.Helper()
	h := b.next(ctx, "Hello after "+what, func(m protocol.Message) bool {
		_, ok := m.(*protocol.Hello)
		return ok
	}).(*protocol.Hello)
	b.send(&protocol.Welcome{SessionID: 2, HeartbeatInterval: 1, HeartbeatTimeout: 5,
		ServerTime: uint64(time.Now().UnixMilli()), MaxFrame: 4096})
	return h
}

// TestFaultsReported runs, on the emulated MPS2 with the MPU and the watchdog on, apps
// that fault the board in every way the firmware must survive: each resets the board,
// which then reports the app Failed with the fault (cause, PC, address) as its AppStatus
// error and as a firmware Log line at error level, does not start it again, and runs its
// other app on; a WebAssembly recursion as deep as it likes is stopped by the
// interpreter's own limit without any reset.
func TestFaultsReported(t *testing.T) {
	requireTools(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	elf := fwbuild.FaultImage(t, "mps2-an386")
	demo := buildApp(ctx, t, "v1", 6000)
	deep := buildSource(ctx, t, builder.WAT, deepSource)

	b := startQEMU(ctx, t, "mps2-an386", elf)
	b.hello()
	b.logLine(ctx, "", readyLine)
	b.deploy(ctx, "demo", demo, 4096)
	b.send(&protocol.Start{App: "demo"})
	b.status(ctx, "demo", protocol.StateRunning)

	// The interpreter's depth limit, not the machine stack's guard: a trap, no reset.
	b.deploy(ctx, "deep", deep, 4096)
	b.send(&protocol.Start{App: "deep"})
	if s := b.status(ctx, "deep", protocol.StateFailed); s.Error != "call stack exhausted" {
		t.Fatalf("deep recursion: %q, want call stack exhausted", s.Error)
	}
	for i := 0; i < 2; i++ { // the session goes on: heartbeats and the other app, no Hello
		b.next(ctx, "the session after the recursion", func(m protocol.Message) bool {
			if _, ok := m.(*protocol.Hello); ok {
				t.Fatal("the board reset after a deep recursion")
			}
			_, ok := m.(*protocol.Heartbeat)
			return ok
		})
	}
	b.logLine(ctx, "demo", "v1 tick")
	b.send(&protocol.Remove{App: "deep"})
	b.status(ctx, "deep", protocol.StateRemoved)

	hex := `0x[0-9a-f]{8}`
	flashPC := `pc=0x00[0-3][0-9a-f]{5}` // the image: 4 MiB at 0
	for _, c := range []struct {
		app    string
		sensor int
		error  string // AppStatus error, a regular expression
	}{
		// A store into the app's sealed native code: MemManage, data access violation
		// (CFSR 0x82: MMARVALID | DACCVIOL) at an address in RAM.
		{"wcode", injectWriteCode, `^fault: MemManage ` + flashPC + ` addr=0x20[0-3][0-9a-f]{5} cfsr=0x00000082$`},
		// A jump into RAM: MemManage, instruction access violation (IACCVIOL) with the PC there.
		{"xram", injectExecRAM, `^fault: MemManage pc=0x20[0-3][0-9a-f]{5} cfsr=0x00000001$`},
		// An svc with interrupts masked cannot be taken: a forced HardFault at the svc.
		{"hard", injectHardFault, `^fault: HardFault ` + flashPC + ` hfsr=0x40000000$`},
		// The machine stack overflows into the guard below RAM: MemManage there (the
		// exception frame itself could not be pushed, so no PC).
		{"stack", injectStack, `^fault: MemManage (pc=` + hex + ` )?addr=0x1fff[89a-f][0-9a-f]{3} cfsr=` + hex + `$`},
		// A host call that never returns: the watchdog's NMI, with the PC of the loop.
		{"hang", injectHang, `^watchdog reset ` + flashPC + `$`},
	} {
		t.Run(c.app, func(t *testing.T) {
			b.t = t
			src := strings.Replace(faultSource, "SENSOR", fmt.Sprint(c.sensor), 1)
			b.deploy(ctx, c.app, buildSource(ctx, t, builder.C, src), 4096)
			b.send(&protocol.Start{App: c.app})
			b.status(ctx, c.app, protocol.StateRunning)
			start := time.Now()
			h := b.rehello(ctx, c.app+"'s fault")
			t.Logf("reset %v after the start", time.Since(start).Round(10*time.Millisecond))
			listed := false
			for _, a := range h.Apps {
				listed = listed || (a.Name == c.app && a.State == protocol.StateFailed)
			}
			if !listed {
				t.Fatalf("Hello after the fault lists %+v, want %s Failed", h.Apps, c.app)
			}
			s := b.status(ctx, c.app, protocol.StateFailed)
			if !regexp.MustCompile(c.error).MatchString(s.Error) {
				t.Fatalf("AppStatus error %q, want %s", s.Error, c.error)
			}
			b.logLine(ctx, "", s.Error+" in app "+c.app)
			t.Logf("%s: %s", c.app, s.Error)
			// not started again; the other app runs on
			b.next(ctx, "demo running after the reset", func(m protocol.Message) bool {
				if l, ok := m.(*protocol.Log); ok && l.App == c.app {
					t.Fatalf("%s logs %q after its fault: it was started again", c.app, l.Message)
				}
				l, ok := m.(*protocol.Log)
				return ok && l.App == "demo" && l.Message == "v1 tick"
			})
			b.send(&protocol.Remove{App: c.app})
			b.status(ctx, c.app, protocol.StateRemoved)
		})
	}
}
