package devicesim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmbed/wasmbed/api/digest"

	"github.com/wasmbed/wasmbed/api/protocol"
	"github.com/wasmbed/wasmbed/internal/pki"
	"github.com/wasmbed/wasmbed/internal/wasmhost"
)

// Device is one virtual device. Its applications (and partial transfers) survive
// reconnects, as a real device keeps them in flash.
type Device struct {
	fleet *Fleet
	id    pki.Identity
	claim string
	tls   *tls.Config

	sessions  atomic.Int64
	connected atomic.Bool
	cut       bool

	mu   sync.Mutex
	w    *protocol.Writer // current session's writer, nil when offline
	conn net.Conn
	apps map[string]*app
}

// app is one application on the device: a verified module, and/or a transfer in
// progress (pending).
type app struct {
	name    string
	module  *image // verified module, nil until received
	pending *image // transfer in progress
	state   protocol.AppState
	errMsg  string
	traps   uint64
	inst    *wasmhost.App
	stop    context.CancelFunc
	runID   int
}

// image is a module's bytes with what Deploy said about them.
type image struct {
	digest    []byte
	size      uint32
	chunkSize uint32
	config    map[string]string
	manifest  *protocol.Manifest // the verified manifest it came under; nil without a key
	data      []byte
}

// ID returns the device's identity.
func (d *Device) ID() pki.Identity { return d.id }

// Claim sets the device id sent in Hello (tests of identity mismatch).
func (d *Device) Claim(id string) { d.claim = id }

// Connected reports whether the device has a session with Welcome received.
func (d *Device) Connected() bool { return d.connected.Load() }

// Sessions returns how many sessions the device opened (Welcome received).
func (d *Device) Sessions() int { return int(d.sessions.Load()) }

// AppState returns an application's state and error, or 0 when the device lacks it.
func (d *Device) AppState(name string) (protocol.AppState, string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if a := d.apps[name]; a != nil {
		return a.state, a.errMsg
	}
	return 0, ""
}

// Module returns the digest of the module an application holds, or "" when the device
// lacks it.
func (d *Device) Module(name string) digest.Digest {
	d.mu.Lock()
	defer d.mu.Unlock()
	if a := d.apps[name]; a != nil && a.module != nil {
		if dg, err := digest.FromBytes(a.module.digest); err == nil {
			return dg
		}
	}
	return ""
}

// Partial returns how many bytes of a transfer in progress the device holds.
func (d *Device) Partial(name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if a := d.apps[name]; a != nil && a.pending != nil {
		return len(a.pending.data)
	}
	return 0
}

// Disconnect closes the current session, if any; Run reconnects after its backoff.
func (d *Device) Disconnect() {
	d.mu.Lock()
	c := d.conn
	d.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// Run keeps the device connected until ctx is done, reconnecting with a jittered
// exponential backoff, then stops its applications.
func (d *Device) Run(ctx context.Context) {
	cfg := &d.fleet.cfg
	backoff := cfg.MinBackoff
	for ctx.Err() == nil {
		welcomed, err := d.session(ctx)
		if ctx.Err() != nil {
			break
		}
		if welcomed {
			backoff = cfg.MinBackoff
		}
		cfg.Logger.Debug("device session ended", "device", d.id.String(), "err", err)
		// Full jitter: anywhere in [backoff/2, backoff).
		wait := backoff/2 + time.Duration(rand.Int64N(int64(backoff/2)+1))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		backoff = min(2*backoff, cfg.MaxBackoff)
	}
	d.stopAll()
}

// deadlineWriter sets a write deadline before every frame.
type deadlineWriter struct{ c net.Conn }

func (w deadlineWriter) Write(p []byte) (int, error) {
	_ = w.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return w.c.Write(p)
}

// session runs one connection; welcomed reports whether Welcome arrived.
func (d *Device) session(ctx context.Context) (welcomed bool, err error) {
	cfg := &d.fleet.cfg
	dctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	dialer := &tls.Dialer{NetDialer: &net.Dialer{Timeout: cfg.DialTimeout}, Config: d.tls}
	c, err := dialer.DialContext(dctx, "tcp", cfg.Gateway)
	cancel()
	if err != nil {
		return false, fmt.Errorf("dial: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	defer c.Close()
	w := protocol.NewWriter(deadlineWriter{c}, protocol.DefaultMaxFrame)
	r := protocol.NewReader(c, protocol.DefaultMaxFrame)
	if err := w.WriteMessage(d.hello()); err != nil {
		return false, err
	}
	_ = c.SetReadDeadline(time.Now().Add(protocol.HelloTimeout))
	m, err := r.ReadMessage()
	if err != nil {
		return false, fmt.Errorf("read welcome: %w", err)
	}
	welcome, ok := m.(*protocol.Welcome)
	if !ok {
		return false, fmt.Errorf("gateway answered hello with %v", m)
	}
	r.SetMaxBody(int(welcome.MaxFrame))
	w.SetMaxBody(int(welcome.MaxFrame))
	d.mu.Lock()
	d.w, d.conn = w, c
	d.mu.Unlock()
	d.connected.Store(true)
	d.sessions.Add(1)
	defer func() {
		d.connected.Store(false)
		d.mu.Lock()
		if d.w == w {
			d.w, d.conn = nil, nil
		}
		d.mu.Unlock()
	}()

	interval := time.Duration(welcome.HeartbeatInterval) * time.Second
	if cfg.Heartbeat > 0 {
		interval = cfg.Heartbeat
	}
	timeout := time.Duration(welcome.HeartbeatTimeout) * time.Second
	start := time.Now()
	var seq uint32
	var hb *time.Timer
	var hbMu sync.Mutex
	hb = time.AfterFunc(interval, func() {
		seq++
		if w.WriteMessage(&protocol.Heartbeat{Seq: seq, Uptime: uint64(time.Since(start).Milliseconds())}) != nil {
			c.Close()
			return
		}
		hbMu.Lock()
		hb.Reset(interval)
		hbMu.Unlock()
	})
	defer func() {
		hbMu.Lock()
		hb.Stop()
		hbMu.Unlock()
	}()
	d.reportRunning()
	for {
		_ = c.SetReadDeadline(time.Now().Add(timeout))
		body, err := r.ReadFrame()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return true, nil
			}
			return true, err
		}
		// A Chunk's data shares the frame buffer: onChunk copies it into the module
		// before the next read.
		m, err := protocol.DecodeShared(body)
		if err != nil {
			var pe *protocol.Error
			if errors.As(err, &pe) {
				_ = w.WriteMessage(pe) // the stream is in sync: answer and go on
			}
			continue
		}
		if e, ok := m.(*protocol.Error); ok && e.Code.Fatal() {
			return true, e
		}
		d.handle(w, m)
	}
}

func (d *Device) hello() *protocol.Hello {
	b := d.fleet.board
	h := &protocol.Hello{
		DeviceID: d.claim, Board: b.Name, Firmware: DefaultFirmware,
		Caps: protocol.Capabilities{
			RAM: uint32(b.RAMBytes), Flash: uint32(b.FlashBytes), MaxModule: uint32(b.MaxModuleBytes),
			ABI: uint32(b.ABIVersion), MaxFrame: d.fleet.cfg.MaxFrame,
		},
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range d.apps {
		switch {
		case a.module != nil:
			h.Apps = append(h.Apps, protocol.AppInfo{Name: a.name, Digest: a.module.digest, State: a.state})
		case a.pending != nil:
			h.Apps = append(h.Apps, protocol.AppInfo{Name: a.name, Digest: a.pending.digest, State: protocol.StateReceiving})
		}
		if len(h.Apps) == protocol.MaxApps {
			break
		}
	}
	return h
}

// send writes a message on the current session, if any.
func (d *Device) send(m protocol.Message) {
	d.mu.Lock()
	w := d.w
	d.mu.Unlock()
	if w != nil {
		_ = w.WriteMessage(m)
	}
}

func (d *Device) handle(w *protocol.Writer, m protocol.Message) {
	switch m := m.(type) {
	case *protocol.HeartbeatAck:
	case *protocol.Deploy:
		d.onDeploy(w, m)
	case *protocol.Chunk:
		d.onChunk(w, m)
	case *protocol.Start:
		d.onStart(w, m.App)
	case *protocol.Stop:
		d.onStop(w, m.App)
	case *protocol.Remove:
		d.onRemove(w, m.App)
	case *protocol.Error:
		d.fleet.cfg.Logger.Debug("gateway error", "device", d.id.String(), "err", m)
	default:
		_ = w.WriteMessage(protocol.NewError(protocol.CodeUnexpectedMessage, m.Type(), "not expected from a gateway"))
	}
}

func appError(code protocol.ErrorCode, related protocol.MessageType, app, msg string) *protocol.Error {
	e := protocol.NewError(code, related, msg)
	e.App = app
	return e
}

func (d *Device) onDeploy(w *protocol.Writer, m *protocol.Deploy) {
	if m.Size > uint32(d.fleet.board.MaxModuleBytes) {
		_ = w.WriteMessage(appError(protocol.CodeTooLarge, protocol.TypeDeploy, m.App, "module larger than max_module"))
		return
	}
	d.mu.Lock()
	a := d.apps[m.App]
	man, why := d.checkManifest(m, a)
	if why != "" {
		if a != nil && a.module == nil {
			delete(d.apps, m.App)
		}
		d.mu.Unlock()
		// The Error alone answers: the app keeps what it holds, and no AppStatus names
		// a module the device never took.
		_ = w.WriteMessage(appError(protocol.CodeBadSignature, protocol.TypeDeploy, m.App, why))
		return
	}
	if a == nil {
		if len(d.apps) >= protocol.MaxApps {
			d.mu.Unlock()
			_ = w.WriteMessage(appError(protocol.CodeNoSpace, protocol.TypeDeploy, m.App, "no room for another app"))
			return
		}
		a = &app{name: m.App}
		d.apps[m.App] = a
	}
	var offset uint32
	var status *protocol.AppStatus
	restart := false
	switch {
	case a.module != nil && bytes.Equal(a.module.digest, m.Digest):
		// The module is here already. A new configuration restarts a running app with
		// it (docs/protocol.md, Deploy); otherwise the app's state is the answer.
		restart = a.state == protocol.StateRunning && !maps.Equal(a.module.config, m.Config)
		a.module.config, a.module.manifest = m.Config, man
		a.pending = nil
		offset = m.Size
		if !restart {
			status = d.statusLocked(a)
		}
	case a.pending != nil && bytes.Equal(a.pending.digest, m.Digest) && a.pending.chunkSize == m.ChunkSize && a.pending.size == m.Size:
		a.pending.config, a.pending.manifest = m.Config, man
		offset = uint32(len(a.pending.data))
	default:
		a.pending = &image{digest: m.Digest, size: m.Size, chunkSize: m.ChunkSize, config: m.Config, manifest: man, data: make([]byte, 0, m.Size)}
	}
	d.mu.Unlock()
	_ = w.WriteMessage(&protocol.DeployAck{App: m.App, Digest: m.Digest, Offset: offset, Window: d.fleet.cfg.Window})
	if status != nil {
		d.status(w, status)
	}
	if restart {
		d.start(a)
	}
}

func (d *Device) onChunk(w *protocol.Writer, m *protocol.Chunk) {
	d.mu.Lock()
	a := d.apps[m.App]
	if a == nil || a.pending == nil {
		d.mu.Unlock()
		_ = w.WriteMessage(appError(protocol.CodeBadState, protocol.TypeChunk, m.App, "no transfer in progress"))
		return
	}
	p := a.pending
	held := uint32(len(p.data))
	want := min(p.chunkSize, p.size-held)
	if m.Offset != held || uint32(len(m.Data)) != want {
		d.mu.Unlock()
		_ = w.WriteMessage(appError(protocol.CodeBadOffset, protocol.TypeChunk, m.App, fmt.Sprintf("expected offset %d", held)))
		return
	}
	p.data = append(p.data, m.Data...)
	held = uint32(len(p.data))
	if held < p.size {
		if n := d.fleet.cfg.CutTransferAt; n > 0 && int(held) >= n && !d.cut {
			d.cut = true
			c := d.conn
			d.mu.Unlock()
			c.Close() // the link drops before the acknowledgement
			return
		}
		d.mu.Unlock()
		_ = w.WriteMessage(&protocol.ChunkAck{App: m.App, Next: held})
		return
	}
	a.pending = nil
	sum := sha256.Sum256(p.data)
	if !bytes.Equal(sum[:], p.digest) {
		a.state, a.errMsg = protocol.StateFailed, "digest mismatch"
		if a.module == nil {
			delete(d.apps, a.name)
		}
		d.mu.Unlock()
		_ = w.WriteMessage(appError(protocol.CodeDigestMismatch, protocol.TypeChunk, m.App, "sha256 differs"))
		d.status(w, &protocol.AppStatus{App: m.App, Digest: p.digest, State: protocol.StateFailed, Error: "digest mismatch"})
		return
	}
	d.stopLocked(a)
	a.module, a.state, a.errMsg = p, protocol.StateReceived, ""
	status := d.statusLocked(a)
	d.mu.Unlock()
	_ = w.WriteMessage(&protocol.ChunkAck{App: m.App, Next: held})
	d.status(w, status)
}

func (d *Device) onStart(w *protocol.Writer, name string) {
	d.mu.Lock()
	a := d.apps[name]
	if a == nil || a.module == nil {
		d.mu.Unlock()
		_ = w.WriteMessage(appError(protocol.CodeNotFound, protocol.TypeStart, name, "no such app"))
		return
	}
	if a.state == protocol.StateRunning {
		status := d.statusLocked(a)
		d.mu.Unlock()
		d.status(w, status)
		return
	}
	d.mu.Unlock()
	d.start(a)
}

func (d *Device) onStop(w *protocol.Writer, name string) {
	d.mu.Lock()
	a := d.apps[name]
	if a == nil || a.module == nil {
		d.mu.Unlock()
		_ = w.WriteMessage(appError(protocol.CodeNotFound, protocol.TypeStop, name, "no such app"))
		return
	}
	if a.state != protocol.StateRunning {
		d.mu.Unlock()
		_ = w.WriteMessage(appError(protocol.CodeBadState, protocol.TypeStop, name, "not running"))
		return
	}
	d.stopLocked(a)
	a.state = protocol.StateStopped
	status := d.statusLocked(a)
	d.mu.Unlock()
	d.status(w, status)
}

func (d *Device) onRemove(w *protocol.Writer, name string) {
	d.mu.Lock()
	a := d.apps[name]
	if a == nil {
		d.mu.Unlock()
		_ = w.WriteMessage(appError(protocol.CodeNotFound, protocol.TypeRemove, name, "no such app"))
		return
	}
	d.stopLocked(a)
	digest := make([]byte, sha256.Size)
	if a.module != nil {
		digest = a.module.digest
	} else if a.pending != nil {
		digest = a.pending.digest
	}
	delete(d.apps, name)
	d.mu.Unlock()
	d.status(w, &protocol.AppStatus{App: name, Digest: digest, State: protocol.StateRemoved})
}

// start instantiates the module and runs it in its own goroutine.
func (d *Device) start(a *app) {
	cfg := &d.fleet.cfg
	d.mu.Lock()
	d.stopLocked(a)
	mod := a.module
	a.runID++
	run := a.runID
	d.mu.Unlock()
	if cfg.NoRun {
		d.mu.Lock()
		a.state, a.errMsg = protocol.StateRunning, ""
		status := d.statusLocked(a)
		d.mu.Unlock()
		d.sendStatus(status)
		return
	}
	fail := func(reason string) {
		d.mu.Lock()
		if a.runID == run {
			a.state, a.errMsg = protocol.StateFailed, reason
			a.traps++
		}
		status := d.statusLocked(a)
		d.mu.Unlock()
		d.sendStatus(status)
	}
	host := d.fleet.host
	compiled, err := host.Compile(context.Background(), mod.data)
	if err != nil {
		fail(shortReason(err))
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	board := wasmhost.NewSimBoard(wasmhost.SimBoardConfig{
		Pins: d.fleet.board.GPIOs, LEDs: d.fleet.board.LEDs, Config: mod.config, Clock: wasmhost.RealClock{},
		OnLog: func(l wasmhost.LogRecord) {
			d.send(&protocol.Log{Level: l.Level, App: a.name, Message: truncate(l.Message, protocol.MaxLogMessageLen)})
		},
		OnPublish: func(r wasmhost.Record) error {
			d.send(&protocol.Telemetry{App: a.name, Topic: r.Topic, Payload: r.Data, Time: uint64(time.Now().UnixMilli())})
			return nil
		},
	})
	inst, err := host.Instantiate(ctx, compiled, board)
	if err != nil {
		cancel()
		fail(shortReason(err))
		return
	}
	// setup is part of starting, as on the firmware: an app whose setup traps is
	// reported Failed in answer to Start, never Running.
	if err := inst.Setup(ctx); err != nil {
		reason := shortReason(err)
		if st := inst.Status(); st.State == protocol.StateFailed && st.Reason != "" {
			reason = truncate(st.Reason, protocol.MaxErrorMessageLen)
		}
		cancel()
		_ = inst.Close(context.Background())
		fail(reason)
		return
	}
	d.mu.Lock()
	if a.runID != run || d.apps[a.name] != a {
		d.mu.Unlock()
		cancel()
		_ = inst.Close(context.Background())
		return
	}
	a.inst, a.stop = inst, cancel
	a.state, a.errMsg = protocol.StateRunning, ""
	status := d.statusLocked(a)
	d.mu.Unlock()
	d.sendStatus(status)
	go func() {
		st := inst.Run(ctx)
		_ = inst.Close(context.Background())
		d.mu.Lock()
		if a.runID != run || ctx.Err() != nil {
			d.mu.Unlock()
			return // stopped, removed or replaced
		}
		a.inst, a.stop = nil, nil
		switch st.State {
		case protocol.StateExited:
			a.state, a.errMsg = protocol.StateExited, ""
		case protocol.StateFailed:
			a.state, a.errMsg = protocol.StateFailed, truncate(st.Reason, protocol.MaxErrorMessageLen)
			a.traps++
		default: // the engine ended a run on its own yet calls it Running or Stopped
			a.state, a.errMsg = protocol.StateFailed, "engine ended in state "+st.State.String()
			a.traps++
		}
		status := d.statusLocked(a)
		d.mu.Unlock()
		cancel()
		d.sendStatus(status)
	}()
}

// stopLocked stops a running instance.
func (d *Device) stopLocked(a *app) {
	a.runID++
	if a.stop != nil {
		a.stop()
		a.stop, a.inst = nil, nil
	}
}

func (d *Device) stopAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range d.apps {
		if a.stop != nil {
			d.stopLocked(a)
			a.state = protocol.StateStopped
		}
	}
}

// reportRunning sends the status of running apps at the start of a session.
func (d *Device) reportRunning() {
	d.mu.Lock()
	var out []*protocol.AppStatus
	for _, a := range d.apps {
		if a.module != nil && a.state == protocol.StateRunning {
			out = append(out, d.statusLocked(a))
		}
	}
	d.mu.Unlock()
	for _, s := range out {
		d.sendStatus(s)
	}
}

func (d *Device) statusLocked(a *app) *protocol.AppStatus {
	s := &protocol.AppStatus{App: a.name, State: a.state, Error: a.errMsg, Traps: a.traps}
	if a.module != nil {
		s.Digest = a.module.digest
	} else if a.pending != nil {
		s.Digest = a.pending.digest
	} else {
		s.Digest = make([]byte, sha256.Size)
	}
	if a.inst != nil {
		s.Loops = a.inst.Status().Loops
	}
	return s
}

func (d *Device) status(w *protocol.Writer, s *protocol.AppStatus) {
	if f := d.fleet.cfg.OnStatus; f != nil {
		f(d, s)
	}
	_ = w.WriteMessage(s)
}

// sendStatus reports a status on the current session, if any.
func (d *Device) sendStatus(s *protocol.AppStatus) {
	if f := d.fleet.cfg.OnStatus; f != nil {
		f(d, s)
	}
	d.send(s)
}

func shortReason(err error) string {
	var trap *wasmhost.TrapError
	if errors.As(err, &trap) {
		return truncate(trap.Reason, protocol.MaxErrorMessageLen)
	}
	return truncate(err.Error(), protocol.MaxErrorMessageLen)
}

// truncate cuts s to n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n]
}

// checkManifest applies the device rule of docs/protocol.md ("Deployment manifest")
// to a Deploy for app a (nil: not on the device): with a deployment key, the Deploy
// must carry a manifest that verifies, names this device's namespace and the Deploy's
// app, module and configuration, and does not go below the version the app holds. It
// returns the verified manifest, or why the Deploy is refused.
func (d *Device) checkManifest(m *protocol.Deploy, a *app) (*protocol.Manifest, string) {
	key := d.fleet.cfg.DeploymentKey
	if len(key) == 0 {
		return nil, ""
	}
	man, err := protocol.VerifyManifest(key, m.Manifest, m.Signature)
	if err == nil {
		err = man.Matches(d.id.Namespace, m.App, m.Digest, m.Config)
	}
	if err != nil {
		return nil, truncate(err.Error(), protocol.MaxErrorMessageLen)
	}
	if a != nil && a.module != nil && !man.Supersedes(a.module.manifest) {
		return nil, fmt.Sprintf("manifest version %d is below the held %d: a rollback needs a newer manifest", man.Version, a.module.manifest.Version)
	}
	return man, ""
}
