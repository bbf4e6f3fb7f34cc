package qemutest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/api/abi"
	"github.com/wasmbed/wasmbed/api/protocol"
	"github.com/wasmbed/wasmbed/builder"
	"github.com/wasmbed/wasmbed/firmware/internal/fwbuild"
)

// boards are the QEMU-emulated entries of the board catalogue (api/boards), and one
// board QEMU cannot run whose runtime configuration runs on a QEMU board instead.
var boards = []struct {
	name     string // catalogue name, also the directory under firmware/boards
	machine  string // qemu-system-arm -M
	budgetOf string // built with this board's buffer sizes (its board.mk BOARD_DEFS)
	table    int    // bytes in the app's table: module and data must fit the buffers
	// maxModule and maxFrame, when set, are the limits Hello must announce.
	maxModule, maxFrame uint32
	// examples are example applications (examples/<lang>/<name>) that must reach Running.
	examples []string
	// ready is the firmware's log line after Welcome; "" is the plain one.
	ready string
	// native: the image has the native tier (wasm/wasm_jit.c), so every app start is
	// followed by a log line saying how many of its functions were compiled.
	native bool
}{
	// QEMU's netduinoplus2 has no RCC: the clock set-up must find that out (HSE never
	// ready, the bits it wrote read back 0) and keep the emulator's 168 MHz.
	{name: "stm32f4-discovery", machine: "netduinoplus2", table: 6000, ready: readyLine + "; clock emulator, no rcc", native: true},
	{name: "mps2-an386", machine: "mps2-an386", table: 6000, native: true},
	// The RA4M1 (Arduino Uno R4) runs in Renode only; its budget does run here: 1 app,
	// 3 KiB module buffers, a 16 KiB arena with 6 KiB of linear memory, 256 value slots,
	// 2 KiB frames, with an app of 1.7 KB whose 4 KiB C stack and 1.5 KiB table fill 5.5 of
	// the 6 KiB, then the example applications whose stacks fit (Rust's 8 KiB does not).
	{name: "mps2-an386", machine: "mps2-an386", budgetOf: "arduino-uno-r4", table: 1500, maxModule: 3072, maxFrame: 2048,
		examples: []string{"c/blink.c", "c/sensor-telemetry.c", "c/config-driven.c", "wat/blink.wat",
			"wat/sensor-telemetry.wat", "wat/config-driven.wat", "assemblyscript/blink.ts",
			"assemblyscript/sensor-telemetry.ts", "assemblyscript/config-driven.ts"}},
	// The nRF52840 (Arduino Nano 33 BLE) runs in Renode only too: 2 apps, 16 KiB module
	// buffers, 84 KiB arenas with a full 64 KiB page of linear memory, 8 KiB frames; every
	// example runs, Rust's included.
	{name: "mps2-an386", machine: "mps2-an386", budgetOf: "nrf52840-nano33ble", table: 6000, maxModule: 16384, maxFrame: 8192, native: true,
		examples: []string{"c/blink.c", "c/sensor-telemetry.c", "c/config-driven.c", "wat/blink.wat",
			"wat/sensor-telemetry.wat", "wat/config-driven.wat", "rust/blink.rs", "rust/sensor-telemetry.rs",
			"rust/config-driven.rs", "assemblyscript/blink.ts", "assemblyscript/sensor-telemetry.ts",
			"assemblyscript/config-driven.ts"}},
}

// readyLine starts the firmware's log line after every Welcome (device.c, log_ready).
const readyLine = "wasmbed firmware ready"

// appSource is a C application whose loop logs "<version> tick" every 200 ms. Its table
// (6 KB on the QEMU boards) makes the module span several chunks; its data and the 4 KiB
// C stack must fit the board's linear-memory backing (12 KiB on the STM32F4, 6 KiB with
// the RA4M1's budget).
const appSource = `#include "wasmbed.h"

static const char msg[] = VERSION " tick";
static const unsigned char table[TABLE] = {[0] = 1, [TABLE / 2] = 7, [TABLE - 1] = 2};
static unsigned n;

WASMBED_EXPORT(loop) int32_t loop(void) {
    n = (n + TABLE / 2) % sizeof table;
    wasmbed_log(WASMBED_LOG_INFO, msg, sizeof msg - 1 - (table[n] > 100));
    return 200;
}
`

// requireTools fails the test with the install command when a tool is missing.
func requireTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"qemu-system-arm", "arm-none-eabi-gcc", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: run hack/deps.sh (apt-get install qemu-system-arm gcc-arm-none-eabi picolibc-arm-none-eabi make)", tool)
		}
	}
	out, err := exec.Command("arm-none-eabi-gcc", "-print-file-name=picolibc.specs").Output()
	if p := strings.TrimSpace(string(out)); err != nil || !filepath.IsAbs(p) {
		t.Fatal("picolibc for arm-none-eabi not found: run hack/deps.sh (apt-get install picolibc-arm-none-eabi)")
	}
}

// buildApp compiles appSource for one version and table size with the project's builder.
func buildApp(ctx context.Context, t *testing.T, version string, table int) []byte {
	t.Helper()
	src := strings.Replace(appSource, "VERSION", fmt.Sprintf("%q", version), 1)
	src = strings.ReplaceAll(src, "TABLE", fmt.Sprint(table))
	res, err := builder.Build(ctx, builder.Request{Language: builder.C, Source: []byte(src)})
	if err != nil {
		t.Fatalf("build the %s app (needs clang-19 and lld-19, see hack/deps.sh): %v", version, err)
	}
	return res.Module
}

// buildExample compiles examples/<lang>/<file> with the project's builder.
func buildExample(ctx context.Context, t *testing.T, path string) []byte {
	t.Helper()
	dir, err := fwbuild.Dir()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(dir, "..", "examples", path))
	if err != nil {
		t.Fatal(err)
	}
	lang, _, _ := strings.Cut(path, "/")
	res, err := builder.Build(ctx, builder.Request{Language: builder.Language(lang), Source: src})
	if err != nil {
		t.Fatalf("build examples/%s (see hack/deps.sh): %v", path, err)
	}
	return res.Module
}

// board is one running QEMU with the gateway side of its UART.
type board struct {
	t      *testing.T
	conn   net.Conn
	r      *protocol.Reader
	w      *protocol.Writer
	msgs   chan protocol.Message
	errs   chan error
	stderr *bytes.Buffer
	addr   string // the UART's TCP address, for reconnect
}

// startQEMU boots elf on machine with the UART on a loopback TCP socket, as the board
// manager does, and connects to it. extra are further qemu-system-arm arguments.
func startQEMU(ctx context.Context, t *testing.T, machine, elf string, extra ...string) *board {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("pick a port: %v", err)
		}
		qctx, cancel := context.WithCancel(ctx)
		args := append([]string{"-M", machine, "-nographic", "-monitor", "none",
			"-kernel", elf, "-serial", fmt.Sprintf("tcp:127.0.0.1:%d,server=on,wait=on,nodelay=on", port)}, extra...)
		cmd := exec.CommandContext(qctx, "qemu-system-arm", args...)
		stderr := &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = stderr, stderr
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatalf("start qemu-system-arm: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		conn, err := dialUntil(qctx, fmt.Sprintf("127.0.0.1:%d", port), exited)
		if err != nil {
			cancel()
			<-exited
			lastErr = fmt.Errorf("%w; qemu said: %s", err, stderr.String())
			continue // most likely the port was taken meanwhile
		}
		b := &board{t: t, conn: conn, stderr: stderr, addr: fmt.Sprintf("127.0.0.1:%d", port),
			r: protocol.NewReader(conn, protocol.DefaultMaxFrame), w: protocol.NewWriter(conn, protocol.DefaultMaxFrame),
			msgs: make(chan protocol.Message, 256), errs: make(chan error, 1)}
		t.Cleanup(func() {
			b.conn.Close() // the connection in use (reconnect replaces it)
			cancel()
			<-exited
		})
		return b
	}
	t.Fatalf("connect to qemu's UART: %v", lastErr)
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// dialUntil connects to QEMU's server socket, retrying until it listens or exits.
func dialUntil(ctx context.Context, addr string, exited <-chan error) (net.Conn, error) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("dial %s: %w", addr, ctx.Err())
		case err := <-exited:
			return nil, fmt.Errorf("qemu exited before listening: %v", err)
		case <-tick.C:
		}
	}
}

// serve reads frames in the background, answers heartbeats and queues the rest.
func (b *board) serve() {
	go func() {
		for {
			m, err := b.r.ReadMessage()
			if err != nil {
				b.errs <- err
				return
			}
			if hb, ok := m.(*protocol.Heartbeat); ok {
				_ = b.w.WriteMessage(&protocol.HeartbeatAck{Seq: hb.Seq, ServerTime: uint64(time.Now().UnixMilli())})
			}
			b.msgs <- m
		}
	}()
}

// next returns the next message that satisfies match, failing on timeout, a read
// error or an Error message from the board.
func (b *board) next(ctx context.Context, what string, match func(protocol.Message) bool) protocol.Message {
	b.t.Helper()
	for {
		select {
		case m := <-b.msgs:
			if e, ok := m.(*protocol.Error); ok {
				b.t.Fatalf("waiting for %s: board sent error %v", what, e)
			}
			if match(m) {
				return m
			}
		case err := <-b.errs:
			b.t.Fatalf("waiting for %s: read from the board: %v (qemu: %s)", what, err, b.stderr.String())
		case <-ctx.Done():
			b.t.Fatalf("waiting for %s: %v", what, ctx.Err())
		}
	}
}

// hello reads the board's Hello (its first frame), answers Welcome with a frame limit
// of at most 4 KiB and starts serving; it returns the Hello and that limit.
func (b *board) hello() (*protocol.Hello, int) {
	b.t.Helper()
	_ = b.conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	m, err := b.r.ReadMessage()
	if err != nil {
		b.t.Fatalf("read Hello: %v (qemu: %s)", err, b.stderr.String())
	}
	_ = b.conn.SetReadDeadline(time.Time{})
	h, ok := m.(*protocol.Hello)
	if !ok {
		b.t.Fatalf("first frame is %v, want Hello", m.Type())
	}
	maxFrame := min(int(h.Caps.MaxFrame), 4096)
	b.send(&protocol.Welcome{SessionID: 1, HeartbeatInterval: 1, HeartbeatTimeout: 5,
		ServerTime: uint64(time.Now().UnixMilli()), MaxFrame: uint32(maxFrame)})
	b.r.SetMaxBody(maxFrame)
	b.w.SetMaxBody(maxFrame)
	b.serve()
	return h, maxFrame
}

// refusal returns the next Error the board sends, skipping other messages.
func (b *board) refusal(ctx context.Context, what string) *protocol.Error {
	b.t.Helper()
	for {
		select {
		case m := <-b.msgs:
			if e, ok := m.(*protocol.Error); ok {
				return e
			}
		case err := <-b.errs:
			b.t.Fatalf("waiting for %s: read from the board: %v (qemu: %s)", what, err, b.stderr.String())
		case <-ctx.Done():
			b.t.Fatalf("waiting for %s: %v", what, ctx.Err())
		}
	}
}

func (b *board) send(m protocol.Message) {
	b.t.Helper()
	if err := b.w.WriteMessage(m); err != nil {
		b.t.Fatalf("send %v: %v", m.Type(), err)
	}
}

func (b *board) status(ctx context.Context, app string, want protocol.AppState) *protocol.AppStatus {
	b.t.Helper()
	m := b.next(ctx, fmt.Sprintf("AppStatus %s %v", app, want), func(m protocol.Message) bool {
		s, ok := m.(*protocol.AppStatus)
		if ok && s.App == app && s.State == protocol.StateFailed && want != protocol.StateFailed {
			b.t.Fatalf("app %s failed: %s", app, s.Error)
		}
		return ok && s.App == app && s.State == want
	})
	return m.(*protocol.AppStatus)
}

func (b *board) logLine(ctx context.Context, app, text string) {
	b.t.Helper()
	b.next(ctx, fmt.Sprintf("log %q from %s", text, app), func(m protocol.Message) bool {
		l, ok := m.(*protocol.Log)
		return ok && l.App == app && l.Message == text
	})
}

// deploy transfers module as app, one chunk in flight at a time, until Received.
// nativeRe is the firmware's log line after an app starts on an image with the native
// tier (device.c, start_app).
var nativeRe = regexp.MustCompile(`^native code: (\d+) of (\d+) functions, \d+ bytes$`)

// nativeLine waits for app's native-code line and returns it.
func (b *board) nativeLine(ctx context.Context, app string) string {
	return b.next(ctx, app+"'s native code line", func(m protocol.Message) bool {
		l, ok := m.(*protocol.Log)
		return ok && l.App == app && nativeRe.MatchString(l.Message)
	}).(*protocol.Log).Message
}

// allNative reports whether a native-code line says every function was compiled.
func allNative(line string) bool {
	m := nativeRe.FindStringSubmatch(line)
	return m != nil && m[1] == m[2] && m[1] != "0"
}

func (b *board) deploy(ctx context.Context, app string, module []byte, maxFrame int) {
	b.t.Helper()
	b.deployWith(ctx, app, module, maxFrame, nil)
}

// deployWith is deploy with a change to the Deploy message (a manifest, say).
func (b *board) deployWith(ctx context.Context, app string, module []byte, maxFrame int, edit func(*protocol.Deploy)) {
	b.t.Helper()
	sum := sha256.Sum256(module)
	chunk := protocol.ChunkSizeFor(maxFrame)
	start := time.Now()
	defer func() { b.t.Logf("deployed %d bytes in chunks of %d in %v", len(module), chunk, time.Since(start)) }()
	d := &protocol.Deploy{App: app, Digest: sum[:], Size: uint32(len(module)), ChunkSize: chunk,
		Config: map[string]string{"greeting": "hi"}}
	if edit != nil {
		edit(d)
	}
	b.send(d)
	ack := b.next(ctx, "DeployAck", func(m protocol.Message) bool {
		_, ok := m.(*protocol.DeployAck)
		return ok
	}).(*protocol.DeployAck)
	if !bytes.Equal(ack.Digest, sum[:]) || ack.Window < 1 {
		b.t.Fatalf("DeployAck %+v", ack)
	}
	for off := ack.Offset; off < uint32(len(module)); {
		end := min(off+chunk, uint32(len(module)))
		b.send(&protocol.Chunk{App: app, Offset: off, Data: module[off:end]})
		ca := b.next(ctx, fmt.Sprintf("ChunkAck after %d", end), func(m protocol.Message) bool {
			_, ok := m.(*protocol.ChunkAck)
			return ok
		}).(*protocol.ChunkAck)
		if ca.Next != end {
			b.t.Fatalf("ChunkAck next %d, want %d", ca.Next, end)
		}
		off = end
	}
	if s := b.status(ctx, app, protocol.StateReceived); !bytes.Equal(s.Digest, sum[:]) {
		b.t.Fatalf("Received with digest %x, want %x", s.Digest, sum)
	}
}

func TestBoardsInQEMU(t *testing.T) {
	requireTools(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	t.Cleanup(cancel) // the parallel subtests run after this function returns
	type versions struct{ v1, v2 []byte }
	apps := map[int]versions{}
	for _, bd := range boards {
		if _, ok := apps[bd.table]; !ok {
			apps[bd.table] = versions{buildApp(ctx, t, "v1", bd.table), buildApp(ctx, t, "v2", bd.table)}
		}
	}
	type example struct {
		path   string
		module []byte
	}
	examples, built := map[string][]example{}, map[string][]byte{}
	for _, bd := range boards {
		for _, path := range bd.examples {
			if built[path] == nil {
				built[path] = buildExample(ctx, t, path)
			}
			examples[bd.budgetOf] = append(examples[bd.budgetOf], example{path, built[path]})
		}
	}
	for _, bd := range boards {
		name, elf := bd.name, ""
		if bd.budgetOf == "" {
			elf = fwbuild.Image(t, bd.name)
		} else {
			name += "-with-" + bd.budgetOf + "-budget"
			elf = fwbuild.BudgetImage(t, bd.name, bd.budgetOf)
		}
		v1, v2 := apps[bd.table].v1, apps[bd.table].v2
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
			defer cancel()
			b := startQEMU(ctx, t, bd.machine, elf)

			// Hello is the first frame; the board names itself and its limits.
			hello, maxFrame := b.hello()
			if hello.Board != bd.name || hello.Caps.ABI != abi.Version || hello.DeviceID != "default/"+bd.name {
				t.Fatalf("Hello %+v", hello)
			}
			if bd.maxModule != 0 && (hello.Caps.MaxModule != bd.maxModule || hello.Caps.MaxFrame != bd.maxFrame) {
				t.Fatalf("Hello announces max_module %d, max_frame %d; the %s budget is %d, %d",
					hello.Caps.MaxModule, hello.Caps.MaxFrame, bd.budgetOf, bd.maxModule, bd.maxFrame)
			}

			// The firmware's first line reports the board's boot (the STM32: its clock path).
			want := bd.ready
			if want == "" {
				want = readyLine
			}
			ready := b.next(ctx, "the firmware's ready line", func(m protocol.Message) bool {
				l, ok := m.(*protocol.Log)
				return ok && l.App == ""
			}).(*protocol.Log)
			if ready.Message != want {
				t.Fatalf("firmware log %q after Welcome, want %q", ready.Message, want)
			}
			t.Logf("firmware: %s", ready.Message)

			if bd.maxModule != 0 { // one byte over the module buffer: refused before any chunk
				b.send(&protocol.Deploy{App: "big", Digest: make([]byte, sha256.Size), Size: bd.maxModule + 1,
					ChunkSize: protocol.ChunkSizeFor(maxFrame), Config: map[string]string{}})
				if e := b.refusal(ctx, "Error too_large"); e.Code != protocol.CodeTooLarge || e.App != "big" {
					t.Fatalf("Deploy of %d bytes: %v, want too_large for app big", bd.maxModule+1, e)
				}
			}

			b.deploy(ctx, "demo", v1, maxFrame)
			b.send(&protocol.Start{App: "demo"})
			if bd.native { // the C demo is integer code: all of it compiles
				if l := b.nativeLine(ctx, "demo"); !allNative(l) {
					t.Fatalf("demo app: %q, want every function compiled", l)
				}
			}
			b.status(ctx, "demo", protocol.StateRunning)
			b.logLine(ctx, "demo", "v1 tick")
			b.next(ctx, "a heartbeat", func(m protocol.Message) bool {
				_, ok := m.(*protocol.Heartbeat)
				return ok
			})

			// A new version replaces the running one: received, the old stops, the new runs.
			b.deploy(ctx, "demo", v2, maxFrame)
			b.send(&protocol.Start{App: "demo"})
			b.status(ctx, "demo", protocol.StateRunning)
			b.logLine(ctx, "demo", "v2 tick")
			for i := 0; i < 2; i++ { // every later line is from v2
				l := b.next(ctx, "another log line", func(m protocol.Message) bool {
					l, ok := m.(*protocol.Log)
					return ok && l.App == "demo"
				}).(*protocol.Log)
				if l.Message != "v2 tick" {
					t.Fatalf("log %q after the replacement, want %q", l.Message, "v2 tick")
				}
			}

			b.send(&protocol.Stop{App: "demo"})
			b.status(ctx, "demo", protocol.StateStopped)
			b.send(&protocol.Remove{App: "demo"})
			b.status(ctx, "demo", protocol.StateRemoved)

			for _, ex := range examples[bd.budgetOf] { // one at a time: the budget holds one app
				b.deploy(ctx, "example", ex.module, maxFrame)
				b.send(&protocol.Start{App: "example"})
				engine := "interpreted"
				if bd.native {
					if engine = b.nativeLine(ctx, "example"); strings.HasPrefix(engine, "native code: 0 ") {
						t.Fatalf("%s: %q, want some of it compiled", ex.path, engine)
					}
				}
				b.status(ctx, "example", protocol.StateRunning)
				b.send(&protocol.Remove{App: "example"})
				b.status(ctx, "example", protocol.StateRemoved)
				t.Logf("%s: %d bytes, Running; %s", ex.path, len(ex.module), engine)
			}
			if err := ctx.Err(); errors.Is(err, context.DeadlineExceeded) {
				t.Fatal(err)
			}
		})
	}
}
