package qemutest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/api/protocol"
	"github.com/wasmbed/wasmbed/firmware/internal/fwbuild"
)

// qmp is a QEMU Machine Protocol connection (QEMU's -qmp unix socket).
type qmp struct {
	t    *testing.T
	conn net.Conn
	dec  *json.Decoder
}

func dialQMP(ctx context.Context, t *testing.T, path string) *qmp {
	t.Helper()
	var conn net.Conn
	for {
		var err error
		if conn, err = net.Dial("unix", path); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("connect to QMP %s: %v", path, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	q := &qmp{t: t, conn: conn, dec: json.NewDecoder(conn)}
	var greeting map[string]any
	if err := q.dec.Decode(&greeting); err != nil || greeting["QMP"] == nil {
		t.Fatalf("QMP greeting %v: %v", greeting, err)
	}
	q.run("qmp_capabilities")
	return q
}

// run executes a command without arguments and waits for its return, skipping events.
func (q *qmp) run(cmd string) {
	q.t.Helper()
	if err := json.NewEncoder(q.conn).Encode(map[string]string{"execute": cmd}); err != nil {
		q.t.Fatalf("QMP %s: %v", cmd, err)
	}
	for {
		var m map[string]any
		if err := q.dec.Decode(&m); err != nil {
			q.t.Fatalf("QMP %s: %v", cmd, err)
		}
		if e, ok := m["error"]; ok {
			q.t.Fatalf("QMP %s: %v", cmd, e)
		}
		if _, ok := m["return"]; ok {
			return
		}
	}
}

// warmReset resets the machine (QMP system_reset: QEMU reloads the ELF segments, other RAM
// is kept) and connects to the UART again, so that the stream starts at the reboot: the VM
// is stopped, the old connection closed, reset, the new connection made, and only then
// the VM continued.
func (b *board) warmReset(ctx context.Context, q *qmp) {
	b.t.Helper()
	q.run("stop")
	b.conn.Close()
	select { // the reader ends on the closed connection
	case <-b.errs:
	case <-ctx.Done():
		b.t.Fatal("the reader did not end")
	}
	q.run("system_reset")
	var conn net.Conn
	for {
		var err error
		if conn, err = net.DialTimeout("tcp", b.addr, time.Second); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			b.t.Fatalf("reconnect to %s: %v", b.addr, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	b.conn = conn
	b.r = protocol.NewReader(conn, protocol.DefaultMaxFrame)
	b.w = protocol.NewWriter(conn, protocol.DefaultMaxFrame)
	b.msgs, b.errs = make(chan protocol.Message, 256), make(chan error, 1)
	q.run("cont")
}

// TestStoreAcrossWarmReset: the MPS2's RAM-backed app store (boards/mps2-an386/store.c)
// keeps a running app across a warm reset; after the reboot Hello lists it Running with
// its digest, nothing is transferred again, and it runs.
func TestStoreAcrossWarmReset(t *testing.T) {
	requireTools(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	module := buildApp(ctx, t, "v1", 6000)
	sum := sha256.Sum256(module)
	elf := fwbuild.Image(t, "mps2-an386")
	dir, err := os.MkdirTemp("", "wbqmp") // short: a unix socket path has ~100 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "qmp.sock")
	b := startQEMU(ctx, t, "mps2-an386", elf, "-qmp", "unix:"+sock+",server=on,wait=off")
	q := dialQMP(ctx, t, sock)

	if h, _ := b.hello(); len(h.Apps) != 0 {
		t.Fatalf("a fresh machine lists apps %+v", h.Apps)
	}
	b.logLine(ctx, "", readyLine)
	b.deploy(ctx, "demo", module, 4096)
	b.send(&protocol.Start{App: "demo"})
	b.status(ctx, "demo", protocol.StateRunning)
	b.logLine(ctx, "demo", "v1 tick") // the save follows the Running answer, before the app's loop

	b.warmReset(ctx, q)
	h, _ := b.hello()
	if len(h.Apps) != 1 || h.Apps[0].Name != "demo" || h.Apps[0].State != protocol.StateRunning ||
		!bytes.Equal(h.Apps[0].Digest, sum[:]) {
		t.Fatalf("Hello after the reset lists %+v, want demo Running with digest %x", h.Apps, sum)
	}
	b.logLine(ctx, "", readyLine)
	b.logLine(ctx, "", "store: restored 1 app(s)")
	b.logLine(ctx, "demo", "v1 tick")
	// The gateway's reconciliation: a Deploy of the held digest needs no chunk.
	b.send(&protocol.Deploy{App: "demo", Digest: sum[:], Size: uint32(len(module)),
		ChunkSize: protocol.ChunkSizeFor(4096), Config: map[string]string{"greeting": "hi"}})
	ack := b.next(ctx, "DeployAck", func(m protocol.Message) bool {
		_, ok := m.(*protocol.DeployAck)
		return ok
	}).(*protocol.DeployAck)
	if ack.Offset != uint32(len(module)) {
		t.Fatalf("DeployAck offset %d after the reset, want %d (held)", ack.Offset, len(module))
	}
	b.logLine(ctx, "demo", "v1 tick")
}
