package qemutest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/builder"
	"github.com/wasmbed/wasmbed/firmware/internal/fwbuild"
	"github.com/wasmbed/wasmbed/gateway/protocol"
)

// boards are the QEMU-emulated entries of the board catalogue (renode/boards).
var boards = []struct {
	name    string // catalogue name, also the directory under firmware/boards
	machine string // qemu-system-arm -M
}{
	{"stm32f4-discovery", "netduinoplus2"},
	{"mps2-an386", "mps2-an386"},
}

// appSource is a C application whose loop logs "<version> tick" every 200 ms. Its 6 KB
// table makes the module span several chunks, and its data must fit the smallest
// board's linear-memory backing (12 KiB on the STM32F4).
const appSource = `#include "wasmbed.h"

static const char msg[] = VERSION " tick";
static const unsigned char table[6000] = {[0] = 1, [2999] = 7, [5999] = 2};
static unsigned n;

WASMBED_EXPORT(loop) int32_t loop(void) {
    n = (n + 2999) % sizeof table;
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

// buildApp compiles appSource for one version with the project's builder.
func buildApp(ctx context.Context, t *testing.T, version string) []byte {
	t.Helper()
	src := strings.Replace(appSource, "VERSION", fmt.Sprintf("%q", version), 1)
	res, err := builder.Build(ctx, builder.Request{Language: builder.C, Source: []byte(src)})
	if err != nil {
		t.Fatalf("build the %s app (needs clang-14 and lld-14, see hack/deps.sh): %v", version, err)
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
}

// startQEMU boots elf on machine with the UART on a loopback TCP socket, as the board
// manager does, and connects to it.
func startQEMU(ctx context.Context, t *testing.T, machine, elf string) *board {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("pick a port: %v", err)
		}
		qctx, cancel := context.WithCancel(ctx)
		cmd := exec.CommandContext(qctx, "qemu-system-arm", "-M", machine, "-nographic", "-monitor", "none",
			"-kernel", elf, "-serial", fmt.Sprintf("tcp:127.0.0.1:%d,server=on,wait=on,nodelay=on", port))
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
		t.Cleanup(func() {
			conn.Close()
			cancel()
			<-exited
		})
		b := &board{t: t, conn: conn, stderr: stderr,
			r: protocol.NewReader(conn, protocol.DefaultMaxFrame), w: protocol.NewWriter(conn, protocol.DefaultMaxFrame),
			msgs: make(chan protocol.Message, 256), errs: make(chan error, 1)}
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
func (b *board) deploy(ctx context.Context, app string, module []byte, maxFrame int) {
	b.t.Helper()
	sum := sha256.Sum256(module)
	chunk := protocol.ChunkSizeFor(maxFrame)
	start := time.Now()
	defer func() { b.t.Logf("deployed %d bytes in chunks of %d in %v", len(module), chunk, time.Since(start)) }()
	b.send(&protocol.Deploy{App: app, Digest: sum[:], Size: uint32(len(module)), ChunkSize: chunk,
		Config: map[string]string{"greeting": "hi"}})
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
	v1, v2 := buildApp(ctx, t, "v1"), buildApp(ctx, t, "v2")
	for _, bd := range boards {
		elf := fwbuild.Image(t, bd.name)
		t.Run(bd.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
			defer cancel()
			b := startQEMU(ctx, t, bd.machine, elf)

			// Hello is the first frame; the board names itself and its limits.
			_ = b.conn.SetReadDeadline(time.Now().Add(15 * time.Second))
			m, err := b.r.ReadMessage()
			if err != nil {
				t.Fatalf("read Hello: %v (qemu: %s)", err, b.stderr.String())
			}
			_ = b.conn.SetReadDeadline(time.Time{})
			hello, ok := m.(*protocol.Hello)
			if !ok {
				t.Fatalf("first frame is %v, want Hello", m.Type())
			}
			if hello.Board != bd.name || hello.Caps.ABI != 1 || hello.DeviceID != "default/"+bd.name {
				t.Fatalf("Hello %+v", hello)
			}
			maxFrame := min(int(hello.Caps.MaxFrame), 4096)
			b.send(&protocol.Welcome{SessionID: 1, HeartbeatInterval: 1, HeartbeatTimeout: 5,
				ServerTime: uint64(time.Now().UnixMilli()), MaxFrame: uint32(maxFrame)})
			b.r.SetMaxBody(maxFrame)
			b.w.SetMaxBody(maxFrame)
			b.serve()

			b.deploy(ctx, "demo", v1, maxFrame)
			b.send(&protocol.Start{App: "demo"})
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
			if err := ctx.Err(); errors.Is(err, context.DeadlineExceeded) {
				t.Fatal(err)
			}
		})
	}
}
