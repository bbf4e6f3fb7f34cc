package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmbed/wasmbed/api/protocol"
	"github.com/wasmbed/wasmbed/internal/pki"
)

// leanWindow is the chunk window a lean device offers, devicesim's default.
const leanWindow = 8

// leanFleet holds lean devices: each speaks the device protocol as the bench needs it
// (Deploy, Chunk, Start, heartbeats) and nothing else, so that the fan-out measures
// the gateway rather than a simulator's bookkeeping. Like a device it decodes every
// frame with the protocol's decoder, checks offsets and the module's sha256, and
// reports Received and Running. It hashes a chunk where the frame arrived
// (protocol.DecodeShared) and keeps nothing, as a device with one frame buffer hashing
// into flash. Two things make it cheaper than devicesim, both
// allowed by docs/protocol.md §6: it acknowledges chunks cumulatively, once per
// window or when the module is complete, and it sends what one received message
// calls for in one write (the last ChunkAck with AppStatus Received).
type leanFleet struct {
	conns []*leanDevice
	wg    sync.WaitGroup
}

type leanDevice struct {
	conn *tls.Conn
	r    *protocol.Reader

	wmu sync.Mutex // the read loop and the heartbeat timer both write
	hb  *time.Timer

	// Owned by the read loop: the transfer in progress. The module is hashed as it
	// arrives and not kept: the baseline's clients keep nothing either.
	app       string
	digest    []byte
	size      uint32
	chunkSize uint32
	held      uint32
	sum       hash.Hash
	unacked   int
	state     protocol.AppState
}

// connectLean connects n lean devices named bench/d-<i>, 256 handshakes at a time.
func connectLean(ca *pki.CA, n int) (*leanFleet, error) {
	f := &leanFleet{conns: make([]*leanDevice, n)}
	pool := ca.Pool()
	failed, first := parallel(n, 256, func(i int) error {
		d, err := dialLean(ca, pool, pki.Identity{Namespace: "bench", Name: "d-" + strconv.Itoa(i)})
		if err != nil {
			return err
		}
		f.conns[i] = d
		f.wg.Add(1)
		go func() { defer f.wg.Done(); d.run() }()
		return nil
	})
	if failed > 0 {
		f.close()
		return nil, fmt.Errorf("%d of %d lean devices failed to connect, first: %v", failed, n, first)
	}
	return f, nil
}

// parallel runs do(0..n-1) with at most width at a time and returns how many failed
// and the first error.
func parallel(n, width int, do func(i int) error) (failed int64, first error) {
	var wg sync.WaitGroup
	var count atomic.Int64
	var firstErr atomic.Value
	sem := make(chan struct{}, width)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := do(i); err != nil {
				count.Add(1)
				firstErr.CompareAndSwap(nil, err)
			}
		}()
	}
	wg.Wait()
	if e, ok := firstErr.Load().(error); ok {
		first = e
	}
	return count.Load(), first
}

func (f *leanFleet) close() {
	for _, d := range f.conns {
		if d != nil {
			d.conn.Close()
		}
	}
	f.wg.Wait()
}

// dialLean does the handshake, Hello and Welcome of one device. Every device has a key
// and certificate of its own, and what the client process keeps of them is no more
// than a device keeps: the CA pool is the fleet's, and the parsed certificate is
// dropped (crypto/tls parses it again for the handshake). Every GC cycle of the client
// process marks what its devices keep, and the baseline's clients share one identity.
func dialLean(ca *pki.CA, pool *x509.CertPool, id pki.Identity) (*leanDevice, error) {
	certPEM, keyPEM, err := ca.IssueDevice(id, 0)
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", id, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", id, err)
	}
	cert.Leaf = nil
	tc, err := pki.ClientTLSConfig(pool, cert, "localhost", pki.TLSOptions{})
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", id, err)
	}
	tc.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256} // as clientConfig
	c, err := dialRecords(tc, 30*time.Second)
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", id, err)
	}
	d := &leanDevice{conn: c, r: protocol.NewReader(c, protocol.HardMaxFrame)}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	hello := &protocol.Hello{DeviceID: id.String(), Board: "virtual", Firmware: "bench-lean",
		Caps: protocol.Capabilities{RAM: 1 << 20, Flash: 1 << 22, MaxModule: 1 << 20, ABI: 2, MaxFrame: protocol.HardMaxFrame}}
	if err := d.write(hello); err != nil {
		c.Close()
		return nil, fmt.Errorf("device %s: hello: %w", id, err)
	}
	m, err := d.r.ReadMessage()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("device %s: welcome: %w", id, err)
	}
	w, ok := m.(*protocol.Welcome)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("device %s: hello answered with %s", id, m.Type())
	}
	_ = c.SetDeadline(time.Time{})
	d.r.SetMaxBody(int(w.MaxFrame))
	d.r.Reserve() // a device's static frame buffer, as the baseline's clients' read buffers
	d.heartbeat(time.Duration(w.HeartbeatInterval) * time.Second)
	return d, nil
}

// heartbeat keeps the session alive across the bench's idle phase.
func (d *leanDevice) heartbeat(every time.Duration) {
	var seq atomic.Uint32
	d.wmu.Lock()
	defer d.wmu.Unlock()
	d.hb = time.AfterFunc(every, func() {
		if d.write(&protocol.Heartbeat{Seq: seq.Add(1)}) != nil {
			return
		}
		d.wmu.Lock()
		d.hb.Reset(every)
		d.wmu.Unlock()
	})
}

// write sends messages in one write.
func (d *leanDevice) write(ms ...protocol.Message) error {
	var buf []byte
	for _, m := range ms {
		f, err := protocol.EncodeFrame(m)
		if err != nil {
			return fmt.Errorf("encode %s: %w", m.Type(), err)
		}
		buf = append(buf, f...)
	}
	d.wmu.Lock()
	defer d.wmu.Unlock()
	_, err := d.conn.Write(buf)
	return err
}

// run reads until the connection closes.
func (d *leanDevice) run() {
	defer func() {
		d.wmu.Lock()
		d.hb.Stop()
		d.wmu.Unlock()
		d.conn.Close()
	}()
	for {
		// A Chunk's data shares the frame buffer, as a device's static one: it is
		// hashed before the next read.
		m, err := d.r.ReadMessageShared()
		if err != nil {
			var pe *protocol.Error
			if errors.As(err, &pe) && !pe.Code.Fatal() {
				continue // the stream is still in sync
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				fmt.Printf("lean device: %v\n", err)
			}
			return
		}
		if err := d.handle(m); err != nil {
			return
		}
	}
}

func (d *leanDevice) handle(m protocol.Message) error {
	switch m := m.(type) {
	case *protocol.Deploy:
		return d.onDeploy(m)
	case *protocol.Chunk:
		return d.onChunk(m)
	case *protocol.Start:
		if m.App != d.app || d.state != protocol.StateReceived {
			return d.write(appError(protocol.CodeNotFound, protocol.TypeStart, m.App, "no such app"))
		}
		d.state = protocol.StateRunning
		return d.write(&protocol.AppStatus{App: d.app, Digest: d.digest, State: d.state})
	case *protocol.Error:
		if m.Code.Fatal() {
			return m
		}
	}
	return nil // HeartbeatAck and whatever the bench does not use
}

func (d *leanDevice) onDeploy(m *protocol.Deploy) error {
	d.app, d.digest, d.size, d.chunkSize = m.App, m.Digest, m.Size, m.ChunkSize
	d.held, d.unacked, d.state = 0, 0, protocol.StateReceiving
	if d.sum == nil {
		d.sum = sha256.New()
	}
	d.sum.Reset()
	return d.write(&protocol.DeployAck{App: m.App, Digest: m.Digest, Offset: 0, Window: leanWindow})
}

func (d *leanDevice) onChunk(m *protocol.Chunk) error {
	if d.state != protocol.StateReceiving || m.App != d.app || m.Offset != d.held || uint32(len(m.Data)) != min(d.chunkSize, d.size-d.held) {
		return d.write(appError(protocol.CodeBadOffset, protocol.TypeChunk, m.App, "expected offset "+strconv.Itoa(int(d.held))))
	}
	d.sum.Write(m.Data)
	d.held += uint32(len(m.Data))
	d.unacked++
	ack := &protocol.ChunkAck{App: d.app, Next: d.held}
	if d.held < d.size {
		if d.unacked < leanWindow {
			return nil // cumulative: the window's last chunk, or the module's, is acknowledged
		}
		d.unacked = 0
		return d.write(ack)
	}
	if !bytes.Equal(d.sum.Sum(nil), d.digest) {
		d.state = protocol.StateFailed
		return d.write(ack, &protocol.AppStatus{App: d.app, Digest: d.digest, State: d.state, Error: "digest mismatch"})
	}
	d.state = protocol.StateReceived
	return d.write(ack, &protocol.AppStatus{App: d.app, Digest: d.digest, State: d.state})
}

func appError(code protocol.ErrorCode, related protocol.MessageType, app, msg string) *protocol.Error {
	e := protocol.NewError(code, related, msg)
	e.App = app
	return e
}
