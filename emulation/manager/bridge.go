package manager

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"time"

	"github.com/wasmbed/wasmbed/api/protocol"
	"github.com/wasmbed/wasmbed/internal/pki"
)

// Defaults of BridgeConfig.
const (
	DefaultDialTimeout  = 10 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultUARTRetry    = 200 * time.Millisecond
	DefaultMinBackoff   = 500 * time.Millisecond
	DefaultMaxBackoff   = 30 * time.Second
)

// BridgeConfig describes the link between one board's UART and the gateway. Zero
// durations take the defaults above.
type BridgeConfig struct {
	// UART is the host:port the emulator serves the board's UART on.
	UART string
	// Gateway is the gateway's host:port; TLS returns the device's client configuration
	// for a new session (pki.ClientTLSConfig with the device's current certificate), or
	// an error wrapping ErrNotEnrolled while the device has none yet.
	Gateway string
	TLS     func() (*tls.Config, error)
	// Identity is the device the certificate names; Board its model (logs, metrics).
	Identity pki.Identity
	Board    string
	// DialTimeout bounds a UART connection and a gateway dial with its TLS handshake;
	// WriteTimeout bounds each frame written to either side.
	DialTimeout, WriteTimeout time.Duration
	// UARTRetry is the pause between attempts to reach the UART (emulator starting).
	UARTRetry time.Duration
	// MinBackoff and MaxBackoff bound the jittered exponential backoff between gateway
	// sessions.
	MinBackoff, MaxBackoff time.Duration
	Logger                 *slog.Logger
	Metrics                *Metrics
}

// Bridge copies protocol frames between a board's UART (plain, as the firmware speaks
// them) and a mutual-TLS session with the gateway that the bridge opens with the
// device's certificate: TLS offload. It works frame by frame, so that a framing error on
// the UART ends only the gateway session and the bridge can resynchronise on the board's
// next Hello.
//
// Each Hello from the board starts a gateway session (an earlier one is closed first).
// When the gateway ends a session, the board gets an Error going_away, after which the
// firmware sends a fresh Hello. On a framing error from the board (wrong version, empty
// or oversized frame) the bridge closes the gateway session, sends going_away to the
// board, and discards UART bytes until a complete Hello frame arrives.
type Bridge struct {
	cfg       BridgeConfig
	log       *slog.Logger
	connected atomic.Bool
	sessions  atomic.Int64
	uartConns atomic.Int64
	frameErrs atomic.Int64
}

// NewBridge checks cfg and returns a Bridge; Run runs it.
func NewBridge(cfg BridgeConfig) (*Bridge, error) {
	if cfg.UART == "" || cfg.Gateway == "" {
		return nil, errors.New("new bridge: uart and gateway addresses are required")
	}
	if cfg.TLS == nil {
		return nil, errors.New("new bridge: a source of the device's tls configuration is required")
	}
	if err := cfg.Identity.Validate(); err != nil {
		return nil, fmt.Errorf("new bridge: %w", err)
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.UARTRetry <= 0 {
		cfg.UARTRetry = DefaultUARTRetry
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = discardMetrics
	}
	return &Bridge{cfg: cfg, log: cfg.Logger.With("device", cfg.Identity.String(), "board", cfg.Board)}, nil
}

// Connected reports whether a gateway session is open and welcomed.
func (b *Bridge) Connected() bool { return b.connected.Load() }

// Sessions returns how many gateway sessions were welcomed.
func (b *Bridge) Sessions() int { return int(b.sessions.Load()) }

// UARTConnections returns how many times the bridge connected to the UART.
func (b *Bridge) UARTConnections() int { return int(b.uartConns.Load()) }

// FramingErrors returns how many framing errors the board's UART produced.
func (b *Bridge) FramingErrors() int { return int(b.frameErrs.Load()) }

// Run bridges until ctx is done, reconnecting to the UART whenever it closes (the
// emulator restarted) and to the gateway on each Hello. It returns nil once ctx is done.
func (b *Bridge) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		conn, err := b.dialUART(ctx)
		if err != nil {
			break // ctx done
		}
		b.uartConns.Add(1)
		err = b.serveUART(ctx, conn)
		if ctx.Err() == nil {
			b.log.Info("uart link ended, reconnecting", "err", err)
		}
	}
	return nil
}

// dialUART retries until the emulator listens or ctx is done.
func (b *Bridge) dialUART(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: b.cfg.DialTimeout}
	logged := false
	for {
		conn, err := d.DialContext(ctx, "tcp", b.cfg.UART)
		if err == nil {
			b.log.Debug("uart connected", "addr", b.cfg.UART)
			return conn, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !logged {
			b.log.Debug("waiting for the board's uart", "addr", b.cfg.UART, "err", err)
			logged = true
		}
		if !sleep(ctx, b.cfg.UARTRetry) {
			return nil, ctx.Err()
		}
	}
}

// item is one frame, or the error that ended a reader.
type item struct {
	frame   []byte
	err     error
	welcome *protocol.Welcome // set on a gateway's Welcome
}

// reader runs next in a goroutine until it fails or stop is closed.
type reader struct {
	out  chan item
	stop chan struct{}
	done chan struct{}
}

func startReader(next func() item, keepOnError func(error) bool) *reader {
	r := &reader{out: make(chan item), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			it := next()
			select {
			case r.out <- it:
			case <-r.stop:
				return
			}
			if it.err != nil && (keepOnError == nil || !keepOnError(it.err)) {
				return
			}
		}
	}()
	return r
}

// close stops the reader; the caller has closed its connection, so next returns.
func (r *reader) close() {
	close(r.stop)
	<-r.done
}

// session is one gateway connection.
type session struct {
	conn     *tls.Conn
	r        *reader
	welcomed bool
	errored  bool // the gateway's last frame was an Error
}

func (s *session) close() {
	s.conn.Close()
	s.r.close()
}

// serveUART runs the bridge over one UART connection until it ends or ctx is done.
func (b *Bridge) serveUART(ctx context.Context, uart net.Conn) error {
	stopCtx := context.AfterFunc(ctx, func() { uart.Close() })
	defer stopCtx()
	ur := newUARTReader(uart)
	board := startReader(func() item {
		f, err := ur.next()
		return item{frame: f, err: err}
	}, func(err error) bool {
		var fe *frameError
		return errors.As(err, &fe)
	})
	var sess *session
	defer func() {
		uart.Close()
		board.close()
		if sess != nil {
			b.endSession(sess)
		}
	}()

	var hello []byte // the board's Hello waiting for a gateway session
	backoff := b.cfg.MinBackoff
	var notBefore time.Time
	var retry *time.Timer
	var retryC <-chan time.Time
	waitingCert := false
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	toBoard := func(frame []byte) error {
		_ = uart.SetWriteDeadline(time.Now().Add(b.cfg.WriteTimeout))
		if _, err := uart.Write(frame); err != nil {
			return fmt.Errorf("write uart: %w", err)
		}
		b.count(ToBoard, frame)
		return nil
	}
	goingAway := func(why string) error {
		frame, err := protocol.EncodeFrame(protocol.NewError(protocol.CodeGoingAway, 0, why))
		if err != nil {
			return err
		}
		return toBoard(frame)
	}
	// endGateway closes the session and tells the board, unless the gateway already
	// did with an Error.
	endGateway := func(why string) error {
		if sess == nil {
			return nil
		}
		told := sess.errored
		b.endSession(sess)
		sess = nil
		ur.setLimit(protocol.DefaultMaxFrame)
		if told {
			return nil
		}
		return goingAway(why)
	}
	// attempt opens a gateway session for the held Hello, or schedules a retry.
	attempt := func() {
		if wait := time.Until(notBefore); wait > 0 {
			if retry == nil {
				retry = time.NewTimer(wait)
			} else {
				retry.Reset(wait)
			}
			retryC = retry.C
			return
		}
		retryC = nil
		s, err := b.open(ctx, hello)
		if errors.Is(err, ErrNotEnrolled) {
			// Not a failed session: the board waits for its certificate, quietly.
			if !waitingCert {
				b.log.Info("holding the board's hello until the device certificate is issued")
				waitingCert = true
			}
			notBefore = time.Now().Add(b.cfg.UARTRetry * 5)
			if retry == nil {
				retry = time.NewTimer(time.Until(notBefore))
			} else {
				retry.Reset(time.Until(notBefore))
			}
			retryC = retry.C
			return
		}
		waitingCert = false
		if err != nil {
			b.cfg.Metrics.sessions.WithLabelValues("failed").Inc()
			b.log.Warn("gateway session failed", "err", err, "retry_in", backoff)
			notBefore = time.Now().Add(jitter(backoff))
			backoff = min(2*backoff, b.cfg.MaxBackoff)
			if retry == nil {
				retry = time.NewTimer(time.Until(notBefore))
			} else {
				retry.Reset(time.Until(notBefore))
			}
			retryC = retry.C
			return
		}
		hello, sess = nil, s
	}

	for {
		var gw <-chan item
		if sess != nil {
			gw = sess.r.out
		}
		select {
		case <-ctx.Done():
			return ctx.Err()

		case <-retryC:
			retryC = nil
			if hello != nil && sess == nil {
				attempt()
			}

		case it := <-board.out:
			if it.err != nil {
				var fe *frameError
				if !errors.As(it.err, &fe) {
					return fmt.Errorf("read uart: %w", it.err)
				}
				b.frameErrs.Add(1)
				b.cfg.Metrics.frameErrors.WithLabelValues(b.cfg.Board).Inc()
				b.log.Warn("framing error from the board: closing the gateway session, waiting for a new hello", "err", it.err)
				hello = nil
				if sess != nil {
					if err := endGateway("framing error on the uart"); err != nil {
						return err
					}
				} else if err := goingAway("framing error on the uart"); err != nil {
					return err
				}
				continue
			}
			if frameType(it.frame) == protocol.TypeHello {
				if sess != nil {
					// The board reset or gave up on the session: it needs no going_away.
					b.log.Info("board sent a new hello: starting a new gateway session")
					b.endSession(sess)
					sess = nil
				}
				ur.setLimit(protocol.DefaultMaxFrame)
				hello = b.claim(it.frame)
				attempt()
				continue
			}
			if sess == nil {
				b.log.Debug("dropping a frame from the board outside a session", "type", frameType(it.frame).String())
				continue
			}
			_ = sess.conn.SetWriteDeadline(time.Now().Add(b.cfg.WriteTimeout))
			if _, err := sess.conn.Write(it.frame); err != nil {
				b.log.Info("gateway write failed", "err", err)
				if err := endGateway("gateway connection lost"); err != nil {
					return err
				}
				continue
			}
			b.count(ToGateway, it.frame)

		case it := <-gw:
			if it.err != nil {
				b.log.Info("gateway session ended", "err", it.err, "welcomed", sess.welcomed)
				welcomed := sess.welcomed
				if err := endGateway("gateway session closed"); err != nil {
					return err
				}
				if welcomed {
					backoff = b.cfg.MinBackoff
				}
				notBefore = time.Now().Add(jitter(backoff))
				backoff = min(2*backoff, b.cfg.MaxBackoff)
				continue
			}
			t := frameType(it.frame)
			sess.errored = t == protocol.TypeError
			if it.welcome != nil && !sess.welcomed {
				sess.welcomed = true
				ur.setLimit(int(it.welcome.MaxFrame))
				b.connected.Store(true)
				b.sessions.Add(1)
				b.cfg.Metrics.sessions.WithLabelValues("welcomed").Inc()
				b.log.Info("gateway session open", "session", it.welcome.SessionID, "max_frame", it.welcome.MaxFrame)
			} else if !sess.welcomed && t == protocol.TypeError {
				b.cfg.Metrics.sessions.WithLabelValues("refused").Inc()
			}
			if err := toBoard(it.frame); err != nil {
				return err
			}
		}
	}
}

// endSession closes a gateway session and forgets it.
func (b *Bridge) endSession(s *session) {
	s.close()
	b.connected.Store(false)
}

// open dials the gateway with the device's certificate, sends the Hello and starts
// reading the gateway's frames.
func (b *Bridge) open(ctx context.Context, hello []byte) (*session, error) {
	tc, err := b.cfg.TLS()
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, b.cfg.DialTimeout)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: b.cfg.DialTimeout}, Config: tc}
	c, err := d.DialContext(dctx, "tcp", b.cfg.Gateway)
	if err != nil {
		return nil, fmt.Errorf("dial gateway: %w", err)
	}
	conn := c.(*tls.Conn)
	_ = conn.SetWriteDeadline(time.Now().Add(b.cfg.WriteTimeout))
	if _, err := conn.Write(hello); err != nil {
		conn.Close()
		return nil, fmt.Errorf("send hello: %w", err)
	}
	b.count(ToGateway, hello)
	pr := protocol.NewReader(conn, protocol.DefaultMaxFrame)
	welcomed := false
	var idle time.Duration
	next := func() item {
		deadline := protocol.HelloTimeout + b.cfg.DialTimeout
		if welcomed {
			deadline = idle
		}
		_ = conn.SetReadDeadline(time.Now().Add(deadline))
		body, err := pr.ReadFrame()
		if err != nil {
			return item{err: err}
		}
		frame := make([]byte, protocol.HeaderSize+len(body))
		frame[0], frame[1], frame[2] = protocol.Version, byte(len(body)>>8), byte(len(body))
		copy(frame[protocol.HeaderSize:], body)
		it := item{frame: frame}
		if !welcomed {
			if m, err := protocol.Decode(body); err == nil {
				if w, ok := m.(*protocol.Welcome); ok {
					welcomed = true
					pr.SetMaxBody(int(w.MaxFrame))
					// The gateway answers every heartbeat: a session silent for twice
					// the heartbeat timeout is dead.
					idle = 2 * time.Duration(max(w.HeartbeatTimeout, 1)) * time.Second
					it.welcome = w
				}
			}
		}
		return it
	}
	return &session{conn: conn, r: startReader(next, nil)}, nil
}

// claim returns the Hello frame with the device id of the certificate. The bridge is
// the host-side transport of a UART board and holds its key: the firmware image is the
// same for every such board and claims a placeholder id, and the gateway takes the
// identity from the certificate anyway (docs/protocol.md, Hello). A Hello that does not
// decode is forwarded unchanged for the gateway to refuse.
func (b *Bridge) claim(frame []byte) []byte {
	m, err := protocol.Decode(frame[protocol.HeaderSize:])
	if err != nil {
		return frame
	}
	h, ok := m.(*protocol.Hello)
	if !ok || h.DeviceID == b.cfg.Identity.String() {
		return frame
	}
	h.DeviceID = b.cfg.Identity.String()
	out, err := protocol.EncodeFrame(h)
	if err != nil || len(out)-protocol.HeaderSize > protocol.DefaultMaxFrame {
		return frame
	}
	return out
}

func (b *Bridge) count(direction string, frame []byte) {
	b.cfg.Metrics.frames.WithLabelValues(direction).Inc()
	b.cfg.Metrics.bytes.WithLabelValues(direction).Add(float64(len(frame)))
}

// jitter returns a duration in [d/2, d).
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}

// sleep waits d or until ctx is done; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
