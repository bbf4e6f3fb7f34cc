package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wasmbed/wasmbed/api/digest"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/api/protocol"
	"github.com/wasmbed/wasmbed/internal/pki"
)

// session is one device's connection after Welcome. The read loop goroutine owns r;
// everything else is guarded by mu.
type session struct {
	srv       *Server
	id        pki.Identity
	sid       uint64
	opened    int64 // Unix nanoseconds; an int64 rather than a time.Time saves 16 bytes per session
	raw       *recordConn
	conn      *tls.Conn
	r         *protocol.Reader
	maxFrame  int
	maxModule uint32
	ctx       context.Context
	cancel    context.CancelCauseFunc
	helloApps []protocol.AppInfo

	closeOnce sync.Once

	mu      sync.Mutex
	closed  bool
	writing bool
	// handling is set while the read loop handles a message; frames queued meanwhile
	// are written by the read loop when it is done (flushHandled), not by a writer
	// goroutine of their own.
	handling bool
	queue    [][]byte
	apps     []protocol.AppInfo
	// failures are the errors of the Failed apps reported in this session: Hello carries
	// no error, so a device that resets because of an app's fault lists it Failed and then
	// says why in an AppStatus, which is news although the state is not.
	failures  map[string]string
	transfers map[string]*transfer
}

func newSession(s *Server, id pki.Identity, raw *recordConn, tc *tls.Conn, r *protocol.Reader, h *protocol.Hello, maxFrame int) *session {
	ss := &session{
		srv: s, id: id, sid: s.sessionID.Add(1), opened: time.Now().UnixNano(), raw: raw, conn: tc, r: r,
		maxFrame: maxFrame, maxModule: h.Caps.MaxModule, helloApps: h.Apps,
	}
	ss.apps = append([]protocol.AppInfo(nil), h.Apps...)
	ss.ctx, ss.cancel = context.WithCancelCause(context.Background())
	return ss
}

// logger returns the server's logger with the session's attributes. It is built on
// demand: sessions log rarely, and a stored logger would cost every idle session.
func (ss *session) logger() *slog.Logger {
	return ss.srv.log.With("device", ss.id.String(), "session", ss.sid)
}

// log logs with the session's attributes, building them only when the level is
// enabled: a fan-out reports every device, and the attributes cost more than the
// discarded line.
func (ss *session) log(level slog.Level, msg string, args ...any) {
	if !ss.srv.log.Enabled(context.Background(), level) {
		return
	}
	ss.logger().Log(context.Background(), level, msg, args...)
}

// run reconciles the device with its desired state, then reads until the session ends.
func (ss *session) run() {
	ss.beginHandling()
	ss.reconcile()
	ss.flushHandled()
	ss.readLoop()
}

func (ss *session) readLoop() {
	timeout := ss.srv.cfg.heartbeatTimeout
	for {
		_ = ss.raw.SetReadDeadline(time.Now().Add(timeout))
		body, err := ss.r.ReadFrame()
		if err != nil {
			reason := readFailure(err)
			var pe *protocol.Error
			if errors.As(err, &pe) {
				ss.srv.m.protocolErrors.WithLabelValues("out", pe.Code.String()).Inc()
				writeFrameNow(ss.raw, ss.conn, pe)
			}
			ss.close(reason, err)
			return
		}
		n := len(body) + protocol.HeaderSize
		msg, err := protocol.Decode(body)
		if err != nil {
			// The stream is still in sync: answer and go on (docs/protocol.md §2).
			ss.srv.m.frameIn(0, n)
			var pe *protocol.Error
			if !errors.As(err, &pe) {
				pe = protocol.NewError(protocol.CodeMalformed, 0, "bad message")
			}
			ss.logger().Info("bad message", "code", pe.Code.String(), "err", err)
			ss.sendError(pe)
			continue
		}
		ss.srv.m.frameIn(msg.Type(), n)
		ss.beginHandling()
		ss.handle(msg)
		ss.flushHandled()
	}
}

// beginHandling makes the read loop the writer of whatever handling a message queues.
// Most frames a session sends answer the device (acknowledgements, the next chunks,
// Start after Received); writing them from the goroutine that read the device's
// message spares a writer goroutine per answer, and its stack growth, which made up a
// large part of a fan-out's gateway CPU (docs/performance.md).
func (ss *session) beginHandling() {
	ss.mu.Lock()
	ss.handling = true
	ss.mu.Unlock()
}

// flushHandled writes what was queued while the read loop handled a message, unless a
// writer goroutine is already at it. A write that blocks holds only this session's
// read loop, and the write timeout bounds it as it bounds a writer goroutine.
func (ss *session) flushHandled() {
	ss.mu.Lock()
	ss.handling = false
	if ss.writing || ss.closed || len(ss.queue) == 0 {
		ss.mu.Unlock()
		return
	}
	ss.writing = true
	ss.mu.Unlock()
	ss.writeLoop()
}

func (ss *session) handle(msg protocol.Message) {
	switch m := msg.(type) {
	case *protocol.Heartbeat:
		ss.sendMessage(&protocol.HeartbeatAck{Seq: m.Seq, ServerTime: uint64(time.Now().UnixMilli())})
		ss.checkStale()
	case *protocol.DeployAck:
		ss.onDeployAck(m)
	case *protocol.ChunkAck:
		ss.onChunkAck(m)
	case *protocol.AppStatus:
		ss.onAppStatus(m)
	case *protocol.Telemetry:
		ss.onTelemetry(m)
	case *protocol.Log:
		ss.onLog(m)
	case *protocol.Error:
		ss.srv.m.protocolErrors.WithLabelValues("in", m.Code.String()).Inc()
		ss.logger().Info("device error", "code", m.Code.String(), "related", m.Related.String(), "app", m.App, "message", m.Message)
		if m.Code == protocol.CodeGoingAway {
			ss.close(ReasonClientClosed, m)
			return
		}
		ss.onDeviceError(m)
	default:
		// A second Hello, or a message only the gateway sends.
		ss.sendError(protocol.NewError(protocol.CodeUnexpectedMessage, msg.Type(), "not expected from a device"))
	}
}

func (ss *session) onTelemetry(m *protocol.Telemetry) {
	ss.srv.emitFor(ss.id, events.DeviceTelemetry, ss.id.String(), &events.DeviceTelemetryData{
		Namespace: ss.id.Namespace, Device: ss.id.Name,
		Application: ss.id.Namespace + "/" + m.App,
		Topic:       m.Topic, Payload: m.Payload, DeviceTime: int64(m.Time),
	})
}

func (ss *session) onLog(m *protocol.Log) {
	ss.srv.logs.add(ss.id, LogLine{Time: time.Now(), Level: m.Level.String(), App: m.App, Message: m.Message})
	level := slog.LevelInfo
	switch m.Level {
	case protocol.LevelDebug:
		level = slog.LevelDebug
	case protocol.LevelWarn:
		level = slog.LevelWarn
	case protocol.LevelError:
		level = slog.LevelError
	}
	ss.logger().Log(context.Background(), level, "device log", "app", m.App, "message", m.Message)
}

// sendMessage encodes and queues one message.
func (ss *session) sendMessage(m protocol.Message) {
	ss.mu.Lock()
	ss.sendMessageLocked(m)
	ss.mu.Unlock()
}

func (ss *session) sendMessageLocked(m protocol.Message) {
	frame, err := protocol.EncodeFrame(m)
	if err != nil {
		ss.logger().Error("encode message", "type", m.Type().String(), "err", err)
		return
	}
	ss.sendLocked(frame)
}

func (ss *session) sendError(e *protocol.Error) {
	ss.srv.m.protocolErrors.WithLabelValues("out", e.Code.String()).Inc()
	ss.sendMessage(e)
}

func (ss *session) send(frame []byte) {
	ss.mu.Lock()
	ss.sendLocked(frame)
	ss.mu.Unlock()
}

// sendLocked queues a frame and starts the writer if it is not running. A full
// queue closes the session as a slow consumer (from another goroutine, as close
// takes mu).
func (ss *session) sendLocked(frame []byte) {
	if ss.closed {
		return
	}
	if len(ss.queue) >= ss.srv.cfg.writeQueue {
		ss.closed = true // drop what follows; close records the reason
		ss.queue = nil
		if !ss.srv.tr.Go(func() { ss.close(ReasonSlowConsumer, errors.New("writer queue full")) }) {
			go ss.close(ReasonSlowConsumer, errors.New("writer queue full"))
		}
		return
	}
	ss.queue = append(ss.queue, frame)
	if !ss.writing && !ss.handling {
		ss.writing = true
		if !ss.srv.tr.Go(ss.writeLoop) {
			ss.writing = false
		}
	}
}

// writeBufSize is the most plaintext one Write hands to TLS: one full record's worth.
// The records of a batch then go to the socket together (recordConn, holdLimit).
const writeBufSize = 16 << 10

// holdLimit is how many bytes of records a batch holds before it writes them.
const holdLimit = 64 << 10

var (
	writeBufs  = sync.Pool{New: func() any { b := make([]byte, 0, writeBufSize+protocol.HardMaxFrame+protocol.HeaderSize); return &b }}
	recordBufs = sync.Pool{New: func() any { b := make([]byte, 0, holdLimit+2*writeBufSize); return &b }}
)

// writeLoop drains the queue, coalescing frames into writes of whole records, and
// returns when the queue is empty, so an idle session has no writer goroutine. It runs
// on a goroutine of its own or on the read loop (flushHandled).
func (ss *session) writeLoop() {
	for {
		ss.mu.Lock()
		batch := ss.queue
		ss.queue = nil
		if len(batch) == 0 || ss.closed {
			ss.writing = false
			ss.mu.Unlock()
			return
		}
		ss.mu.Unlock()
		if err := ss.writeBatch(batch); err != nil {
			reason := ReasonWriteError
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				reason = ReasonSlowConsumer
			}
			ss.mu.Lock()
			ss.writing = false
			ss.mu.Unlock()
			ss.close(reason, err)
			return
		}
	}
}

// writeBatch hands the frames to TLS a record's worth at a time and sends the records
// they make in as few writes as holdLimit allows (recordConn).
func (ss *session) writeBatch(batch [][]byte) error {
	bp := writeBufs.Get().(*[]byte)
	buf := (*bp)[:0]
	defer func() { *bp = buf[:0]; writeBufs.Put(bp) }()
	rp := recordBufs.Get().(*[]byte)
	defer recordBufs.Put(rp)
	_ = ss.raw.SetWriteDeadline(time.Now().Add(ss.srv.cfg.writeTimeout))
	ss.raw.hold(rp)
	for i, f := range batch {
		buf = append(buf, f...)
		if len(buf) >= writeBufSize || i == len(batch)-1 {
			if _, err := ss.conn.Write(buf); err != nil {
				_ = ss.raw.release() // best effort: the session closes
				return err
			}
			ss.srv.m.bytesOut.Add(float64(len(buf)))
			buf = buf[:0]
			if len(*rp) >= holdLimit {
				if err := ss.raw.release(); err != nil {
					return err
				}
				ss.raw.hold(rp)
			}
		}
		ss.srv.m.framesOut.Inc()
	}
	return ss.raw.release()
}

// close ends the session once: it records why, cancels the context, sends the
// reason's protocol error (best effort), closes the connection and reports it.
func (ss *session) close(reason CloseReason, err error) {
	ss.closeOnce.Do(func() {
		ss.mu.Lock()
		ss.closed = true
		ss.queue = nil
		ss.transfers = nil
		ss.mu.Unlock()
		ss.cancel(reason)
		if code := reason.code(); code != 0 {
			ss.srv.m.protocolErrors.WithLabelValues("out", code.String()).Inc()
			writeFrameNow(ss.raw, ss.conn, protocol.NewError(code, 0, string(reason)))
		}
		ss.raw.Close()
		ss.srv.unregister(ss)
		ss.srv.m.closes.WithLabelValues(string(reason)).Inc()
		attrs := []any{"reason", reason}
		if err != nil {
			attrs = append(attrs, "err", err)
		}
		switch reason {
		case ReasonClientClosed, ReasonReplaced, ReasonGoingAway:
			ss.logger().Info("session closed", attrs...)
		default:
			ss.logger().Warn("session closed", attrs...)
		}
		ss.srv.emitFor(ss.id, events.DeviceDisconnected, ss.id.String(), &events.DeviceDisconnectedData{
			Namespace: ss.id.Namespace, Device: ss.id.Name, Gateway: ss.srv.ref, Reason: string(reason),
			Session: ss.sessionName(), Since: ss.openedAt(),
		})
	})
}

// sessionName is the session's id in events.
func (ss *session) sessionName() string { return strconv.FormatUint(ss.sid, 10) }

// openedAt is when the session opened.
func (ss *session) openedAt() time.Time { return time.Unix(0, ss.opened) }

// app returns the device's record of an application, or nil.
func (ss *session) appLocked(name string) *protocol.AppInfo {
	for i := range ss.apps {
		if ss.apps[i].Name == name {
			return &ss.apps[i]
		}
	}
	return nil
}

func (ss *session) setAppLocked(name string, digest []byte, state protocol.AppState) (prev protocol.AppState, sameDigest bool) {
	for i := range ss.apps {
		a := &ss.apps[i]
		if a.Name != name {
			continue
		}
		prev, sameDigest = a.State, bytes.Equal(a.Digest, digest)
		if state == protocol.StateRemoved {
			ss.apps = slices.Delete(ss.apps, i, i+1)
			return prev, sameDigest
		}
		a.State = state
		if !sameDigest {
			a.Digest = append([]byte(nil), digest...)
		}
		return prev, sameDigest
	}
	if state != protocol.StateRemoved {
		ss.apps = append(ss.apps, protocol.AppInfo{Name: name, Digest: append([]byte(nil), digest...), State: state})
	}
	return 0, false
}

// wireDigest is a digest as the device protocol carries it (32 bytes, checked by the
// decoder), or "" when the device sent none.
func wireDigest(b []byte) digest.Digest {
	d, err := digest.FromBytes(b)
	if err != nil {
		return ""
	}
	return d
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
