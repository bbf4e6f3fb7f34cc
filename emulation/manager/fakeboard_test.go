package manager

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmbed/wasmbed/api/protocol"
)

// fakeBoard stands in for an emulated board: a TCP server on the board's UART port (as
// QEMU's -serial tcp:...,server=on) speaking the device side of the protocol over the
// plain socket, as the firmware does on its UART. It claims a placeholder device id,
// as a firmware image shared by every device does.
type fakeBoard struct {
	l         net.Listener
	heartbeat time.Duration

	hellos, welcomes, goingAways atomic.Int64

	wmu  sync.Mutex // serialises writes: frames and injected bytes never interleave
	mu   sync.Mutex
	conn net.Conn
	wg   sync.WaitGroup
}

type lockedWriter struct {
	mu *sync.Mutex
	c  net.Conn
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.c.Write(p)
}

const fakeClaim = "emulated/board"

func startFakeBoard(l net.Listener, heartbeat time.Duration) *fakeBoard {
	f := &fakeBoard{l: l, heartbeat: heartbeat}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			// One client at a time, like a UART.
			f.session(c)
		}
	}()
	return f
}

func (f *fakeBoard) hello(w *protocol.Writer) error {
	f.hellos.Add(1)
	return w.WriteMessage(&protocol.Hello{DeviceID: fakeClaim, Board: "stm32f4-discovery", Firmware: "fake/0.1.0",
		Caps: protocol.Capabilities{RAM: 192 << 10, Flash: 1 << 20, MaxModule: 256 << 10, ABI: 1, MaxFrame: 4096},
		Apps: []protocol.AppInfo{}})
}

// session speaks the protocol on one connection until it closes.
func (f *fakeBoard) session(c net.Conn) {
	defer c.Close()
	w := protocol.NewWriter(lockedWriter{&f.wmu, c}, protocol.DefaultMaxFrame)
	r := protocol.NewReader(c, protocol.DefaultMaxFrame)
	f.mu.Lock()
	f.conn = c
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.conn = nil
		f.mu.Unlock()
	}()
	if f.hello(w) != nil {
		return
	}
	var welcomed atomic.Bool
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(f.heartbeat)
		defer t.Stop()
		var seq uint32
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if welcomed.Load() {
					seq++
					_ = w.WriteMessage(&protocol.Heartbeat{Seq: seq, Uptime: uint64(seq)})
				}
			}
		}
	}()
	for {
		m, err := r.ReadMessage()
		if err != nil {
			var perr *protocol.Error
			if errors.As(err, &perr) && (perr.Code == protocol.CodeMalformed || perr.Code == protocol.CodeUnknownMessage) {
				continue
			}
			return
		}
		switch m := m.(type) {
		case *protocol.Welcome:
			welcomed.Store(true)
			r.SetMaxBody(int(m.MaxFrame))
			w.SetMaxBody(int(m.MaxFrame))
			f.welcomes.Add(1)
		case *protocol.Error:
			if m.Code == protocol.CodeGoingAway || m.Code == protocol.CodeUnauthorized || m.Code == protocol.CodeHeartbeatTimeout {
				// The session is over: start a new one, as the firmware does.
				f.goingAways.Add(1)
				welcomed.Store(false)
				r.SetMaxBody(protocol.DefaultMaxFrame)
				w.SetMaxBody(protocol.DefaultMaxFrame)
				if f.hello(w) != nil {
					return
				}
			}
		}
	}
}

// inject writes raw bytes on the current connection, as a resetting board would.
func (f *fakeBoard) inject(b []byte) error {
	f.mu.Lock()
	c := f.conn
	f.mu.Unlock()
	if c == nil {
		return errors.New("no uart connection")
	}
	_, err := lockedWriter{&f.wmu, c}.Write(b)
	return err
}

// dropConn closes the current connection (the emulator's socket went away).
func (f *fakeBoard) dropConn() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn != nil {
		f.conn.Close()
	}
}

func (f *fakeBoard) close() {
	f.l.Close()
	f.dropConn()
	f.wg.Wait()
}
