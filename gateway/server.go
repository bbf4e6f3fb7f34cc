package gateway

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/api/protocol"
	"github.com/wasmbed/wasmbed/internal/pki"
	"github.com/wasmbed/wasmbed/internal/tracing"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("gateway closed")

// logEvery is the period of the rate-limited log lines (accept failures, refused
// connections): at most one line per kind per period, with the count held back.
const logEvery = 10 * time.Second

// Server holds device sessions and delivers modules. Build it with New, run it with
// Serve or ListenAndServe, stop it with Shutdown.
type Server struct {
	cfg        Config
	ref        v1.Ref // the gateway's own name
	tlsConfig  *tls.Config
	log        *slog.Logger
	m          *metrics
	tr         tracker
	desired    DesiredStore
	modules    *moduleCache
	logs       *logBook
	source     string
	apiHandler http.Handler
	opsHandler http.Handler
	enroll     *Enroller
	sessionID  atomic.Uint64
	limits     Limits
	logLimit   *logLimiter
	faults     faultMarks // modules that reset their device (faults.go)
	sum        *summaries // the devices' last results, for summaries (summary.go)

	baseCtx context.Context
	stop    context.CancelFunc
	bgOnce  sync.Once

	mu          sync.Mutex
	listeners   map[net.Listener]struct{}
	httpServers []*http.Server
	sessions    map[pki.Identity]*session
	shutting    bool
	// Admission (admission.go): connections before their Hello, in total and by
	// source, and the per-source rate buckets.
	pending     int
	bySource    map[netip.Addr]int
	buckets     map[netip.Addr]bucket
	bucketSweep int
	ready       chan struct{}
}

// New checks cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.caPool == nil || len(cfg.cert.Certificate) == 0 {
		return nil, errors.New("new gateway: a ca pool and a server certificate are required")
	}
	if cfg.heartbeatInterval <= 0 || cfg.heartbeatTimeout <= cfg.heartbeatInterval {
		return nil, fmt.Errorf("new gateway: heartbeat timeout %v must exceed interval %v", cfg.heartbeatTimeout, cfg.heartbeatInterval)
	}
	if cfg.maxFrame < protocol.MinMaxFrame || cfg.maxFrame > protocol.HardMaxFrame {
		return nil, fmt.Errorf("new gateway: max frame %d not in %d..%d", cfg.maxFrame, protocol.MinMaxFrame, protocol.HardMaxFrame)
	}
	if cfg.writeQueue < 1 || cfg.maxSessions < 1 || cfg.maxPending < 1 || cfg.handshakeTimeout <= 0 || cfg.helloTimeout <= 0 || cfg.writeTimeout <= 0 {
		return nil, errors.New("new gateway: write queue, max sessions, max pending and timeouts must be positive")
	}
	if cfg.summaryInterval <= 0 || cfg.summaryResync < 0 {
		return nil, fmt.Errorf("new gateway: summary interval %v must be positive and resync %v not negative", cfg.summaryInterval, cfg.summaryResync)
	}
	if cfg.registryTimeout <= 0 {
		return nil, errors.New("new gateway: the registry timeout must be positive")
	}
	if !cfg.httpTimeouts.valid() {
		return nil, fmt.Errorf("new gateway: HTTP timeouts and header limit must be positive: %+v", cfg.httpTimeouts)
	}
	if cfg.maxPendingPerSource < 0 || cfg.sourceRate < 0 || (cfg.sourceRate > 0 && cfg.sourceBurst < 1) {
		return nil, fmt.Errorf("new gateway: per-source limits: pending %d, rate %v, burst %d", cfg.maxPendingPerSource, cfg.sourceRate, cfg.sourceBurst)
	}
	ref, err := v1.ParseRef(cfg.name)
	if err != nil {
		return nil, fmt.Errorf("new gateway: name: %w", err)
	}
	tc, err := pki.ServerTLSConfig(cfg.caPool, cfg.cert, pki.TLSOptions{AllowTLS12: cfg.allowTLS12})
	if err != nil {
		return nil, fmt.Errorf("new gateway: %w", err)
	}
	// Devices reconnect with a full handshake (the identity check and the registry
	// run every time), and large records keep module transfers cheap.
	tc.SessionTicketsDisabled = true
	tc.DynamicRecordSizingDisabled = true
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	if cfg.desired == nil {
		cfg.desired = NewMemoryDesired()
	}
	if cfg.sink == nil {
		cfg.sink = discardSink{}
	}
	s := &Server{
		cfg:       cfg,
		ref:       ref,
		tlsConfig: tc,
		log:       cfg.logger.With("gateway", cfg.name),
		desired:   cfg.desired,
		modules:   newModuleCache(cfg.store),
		logs:      newLogBook(cfg.logLines),
		source:    events.SourceGatewayPrefix + cfg.name,
		listeners: map[net.Listener]struct{}{},
		sessions:  map[pki.Identity]*session{},
		bySource:  map[netip.Addr]int{},
		buckets:   map[netip.Addr]bucket{},
		ready:     make(chan struct{}),
		logLimit:  newLogLimiter(logEvery),
		sum:       newSummaries(),

		bucketSweep: minBucketSweep,
	}
	m, err := newMetrics(cfg.registerer)
	if err != nil {
		return nil, fmt.Errorf("new gateway: %w", err)
	}
	s.m = m
	nofile := cfg.fileLimit
	if nofile == 0 {
		nofile = fileLimit()
	}
	s.limits = deriveLimits(nofile, cfg.maxSessions, cfg.maxPending)
	if s.limits.MaxSessions < cfg.maxSessions {
		s.log.Warn("session limit lowered to fit the file-descriptor limit", "max_sessions", cfg.maxSessions,
			"limit", s.limits.MaxSessions, "rlimit_nofile", nofile)
	}
	s.cfg.maxSessions, s.cfg.maxPending = s.limits.MaxSessions, s.limits.MaxPending
	m.maxSessions.Set(float64(s.limits.MaxSessions))
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	// Session ids start at a random point below 2^63, so they are never 0 and, unlike a
	// counter from 1, differ between gateway processes.
	s.sessionID.Store(binary.BigEndian.Uint64(seed[:]) >> 1)
	s.baseCtx, s.stop = context.WithCancel(context.Background())
	s.apiHandler = s.newAPIHandler()
	s.opsHandler = s.newOpsHandler()
	return s, nil
}

// Limits returns the bounds in effect, derived from the configuration and the
// file-descriptor limit.
func (s *Server) Limits() Limits { return s.limits }

// Name returns the gateway's "<namespace>/<name>".
func (s *Server) Name() string { return s.cfg.name }

// ListenAndServe listens on the configured address and serves devices.
func (s *Server) ListenAndServe() error {
	l, err := net.Listen("tcp", s.cfg.addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.cfg.addr, err)
	}
	return s.Serve(l)
}

// Serve accepts device connections on l until Shutdown; it returns ErrServerClosed
// then. The first call also starts the registry watch and device.seen reports.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.shutting {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	s.bgOnce.Do(func() {
		s.tr.Go(s.watchRegistry)
		s.tr.Go(s.reportSeen)
		s.tr.Go(s.reportSummaries)
		close(s.ready)
	})
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.isShutting() {
				return ErrServerClosed
			}
			kind, temporary := classifyAccept(err)
			if !temporary {
				return fmt.Errorf("accept: %w", err)
			}
			// Out of file descriptors (or another temporary failure): the connections
			// already held are the cure, so wait for some to close rather than exit.
			delay = nextAcceptDelay(delay)
			s.m.acceptErrors.WithLabelValues(string(kind)).Inc()
			if ok, held := s.logLimit.allow("accept/" + string(kind)); ok {
				s.log.Warn("accept failed, retrying", "error", kind, "err", err, "retry_in", delay, "suppressed", held)
			}
			if !s.pause(delay) {
				return ErrServerClosed
			}
			continue
		}
		delay = 0
		if !s.admit(c) {
			return ErrServerClosed
		}
	}
}

// pause waits for d, or until Shutdown; it reports false after Shutdown.
func (s *Server) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.baseCtx.Done():
		return false
	}
}

func (s *Server) isShutting() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutting
}

// Shutdown stops accepting connections, closes every session with going_away, shuts
// the HTTP servers down (their requests finish) and waits for every goroutine of the
// server, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutting = true
	for l := range s.listeners {
		l.Close()
	}
	sessions := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	https := s.httpServers
	s.mu.Unlock()
	// The HTTP servers finish their requests while the sessions close.
	var wg sync.WaitGroup
	for _, hs := range https {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = hs.Shutdown(ctx)
		}()
	}
	s.tr.Close()
	s.stop()
	for _, ss := range sessions {
		ss.close(ReasonGoingAway, nil)
	}
	err := s.tr.Wait(ctx)
	wg.Wait()
	return err
}

// Sessions returns how many device sessions are open.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Connected reports whether a device has an open session.
func (s *Server) Connected(id pki.Identity) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[id] != nil
}

// Devices returns the identities of the devices with an open session, sorted.
func (s *Server) Devices() []v1.Ref {
	s.mu.Lock()
	out := make([]v1.Ref, 0, len(s.sessions))
	for id := range s.sessions {
		out = append(out, v1.Ref(id))
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b v1.Ref) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// Revoke closes the session of a device that is no longer allowed, if it has one.
func (s *Server) Revoke(id pki.Identity) {
	s.mu.Lock()
	ss := s.sessions[id]
	s.mu.Unlock()
	if ss != nil {
		ss.close(ReasonRevoked, nil)
	}
}

func (s *Server) watchRegistry() {
	if s.cfg.registry == nil {
		return
	}
	if err := s.cfg.registry.Watch(s.baseCtx, s.Revoke); err != nil && s.baseCtx.Err() == nil {
		s.log.Error("registry watch ended", "err", err)
	}
}

func (s *Server) reportSeen() {
	if s.cfg.seenInterval <= 0 {
		return
	}
	t := time.NewTicker(s.cfg.seenInterval)
	defer t.Stop()
	for {
		select {
		case <-s.baseCtx.Done():
			return
		case <-t.C:
		}
		if devs := s.Devices(); len(devs) > 0 {
			s.emit(events.DeviceSeen, s.cfg.name, &events.DeviceSeenData{Gateway: s.ref, Devices: devs})
		}
	}
}

// emit builds and queues an event; a payload that does not validate is a bug, logged.
func (s *Server) emit(t events.Type, subject string, data events.Payload) {
	s.emitFor(pki.Identity{}, t, subject, data)
}

// emitFor emits an event about one device: its partition key is the device, so the
// events of a device stay in order while different devices' flow in parallel.
func (s *Server) emitFor(dev pki.Identity, t events.Type, subject string, data events.Payload) {
	s.emitTraced(dev, "", t, subject, data)
}

// emitTraced is emitFor continuing the trace traceparent names (a deployment's): the
// sink sends the event in a span of that trace.
func (s *Server) emitTraced(dev pki.Identity, traceparent string, t events.Type, subject string, data events.Payload) {
	e, err := events.New(t, s.source, subject, data)
	if err != nil {
		s.log.Error("build event", "type", t, "subject", subject, "err", err)
		return
	}
	if dev.Name != "" {
		e.SetExtension(events.ExtPartitionKey, dev.String())
	}
	if traceparent != "" {
		tracing.Inject(tracing.FromTraceParent(context.Background(), traceparent), &e)
	}
	s.cfg.sink.Emit(e)
}

// serveConn does the TLS handshake and Hello of one connection in a short-lived
// goroutine, then hands the session to a fresh goroutine whose stack stays small.
// admit counted it as pending from src; it stops being pending when it becomes a
// session (register) or is refused.
func (s *Server) serveConn(raw net.Conn, src netip.Addr) {
	ss := s.open(raw, src)
	if ss == nil {
		s.mu.Lock()
		s.releaseLocked(src)
		s.mu.Unlock()
		s.m.pending.Dec()
	}
	if ss != nil && !s.tr.Go(ss.run) {
		ss.close(ReasonGoingAway, nil)
	}
}

// open returns a registered session with Welcome sent, or nil after refusing.
func (s *Server) open(raw net.Conn, src netip.Addr) *session {
	remote := raw.RemoteAddr().String()
	_ = raw.SetDeadline(time.Now().Add(s.cfg.handshakeTimeout))
	rc := &recordConn{Conn: raw}
	tc := tls.Server(rc, s.tlsConfig)
	// The deadline on raw bounds the handshake; HandshakeContext would also work but
	// its context stays referenced by the connection for the session's lifetime.
	err := tc.Handshake()
	if err != nil {
		r := classifyHandshake(err)
		s.m.handshakes.WithLabelValues(string(r)).Inc()
		s.m.closes.WithLabelValues(string(ReasonHandshakeFailed)).Inc()
		// Anyone can fail a handshake, as often as they like: one line per reason
		// and period.
		if ok, held := s.logLimit.allow("handshake/" + string(r)); ok {
			s.log.Info("handshake failed", "remote", remote, "reason", r, "err", err, "suppressed", held)
		}
		raw.Close()
		return nil
	}
	s.m.handshakes.WithLabelValues(string(HandshakeOK)).Inc()
	id, err := pki.IdentityFromConnState(tc.ConnectionState())
	if err != nil { // VerifyConnection already refused these; kept as a guard.
		s.refuse(raw, pki.Identity{}, remote, ReasonUnauthorized, err)
		return nil
	}
	if reg := s.cfg.registry; reg != nil {
		rctx, cancel := context.WithTimeout(s.baseCtx, s.cfg.registryTimeout)
		err := reg.Check(rctx, id, tc.ConnectionState().VerifiedChains[0][0])
		cancel()
		switch {
		case errors.Is(err, ErrNotAllowed):
			s.refuse(tc, id, remote, ReasonNotAllowed, err)
			return nil
		case err != nil:
			// A registry that cannot answer admits nobody: fail closed.
			s.refuse(tc, id, remote, ReasonRegistryUnavailable, err)
			return nil
		}
	}
	_ = raw.SetDeadline(time.Now().Add(s.cfg.helloTimeout))
	r := protocol.NewReader(tc, protocol.DefaultMaxFrame)
	body, err := r.ReadFrame()
	if err != nil {
		reason := readFailure(err)
		if reason == ReasonHeartbeatTimeout {
			reason = ReasonHelloTimeout
		}
		s.refuseWithError(tc, id, remote, reason, err)
		return nil
	}
	msg, err := protocol.Decode(body)
	if err != nil {
		var pe *protocol.Error
		if !errors.As(err, &pe) {
			pe = protocol.NewError(protocol.CodeMalformed, 0, "bad hello")
		}
		s.m.protocolErrors.WithLabelValues("out", pe.Code.String()).Inc()
		writeFrameNow(raw, tc, pe)
		s.refuse(tc, id, remote, reasonForCode(pe.Code), err)
		return nil
	}
	hello, ok := msg.(*protocol.Hello)
	if !ok {
		pe := protocol.NewError(protocol.CodeUnexpectedMessage, msg.Type(), "hello first")
		s.m.protocolErrors.WithLabelValues("out", pe.Code.String()).Inc()
		writeFrameNow(raw, tc, pe)
		s.refuse(tc, id, remote, ReasonUnexpectedMessage, fmt.Errorf("first message is %s", msg.Type()))
		return nil
	}
	s.m.frameIn(protocol.TypeHello, len(body)+protocol.HeaderSize)
	if hello.DeviceID != id.String() {
		err := fmt.Errorf("hello claims %q, certificate is %s", hello.DeviceID, id)
		s.refuse(tc, id, remote, ReasonUnauthorized, err)
		return nil
	}
	maxFrame := min(int(hello.Caps.MaxFrame), s.cfg.maxFrame)
	ss := newSession(s, id, rc, tc, r, hello, maxFrame)
	welcome := &protocol.Welcome{
		SessionID:         ss.sid,
		HeartbeatInterval: seconds(s.cfg.heartbeatInterval),
		HeartbeatTimeout:  max(seconds(s.cfg.heartbeatTimeout), seconds(s.cfg.heartbeatInterval)+1),
		ServerTime:        uint64(time.Now().UnixMilli()),
		MaxFrame:          uint32(maxFrame),
	}
	if !s.register(ss, src) {
		s.refuse(tc, id, remote, ReasonGoingAway, ErrServerClosed)
		return nil
	}
	_ = raw.SetDeadline(time.Time{})
	frame, err := protocol.EncodeFrame(welcome)
	if err == nil {
		ss.send(frame)
	}
	r.SetMaxBody(maxFrame)
	ss.logger().Info("device connected", "board", hello.Board, "firmware", hello.Firmware, "apps", len(hello.Apps), "max_frame", maxFrame)
	s.emitFor(id, events.DeviceConnected, id.String(), connectedData(s.ref, ss, hello))
	return ss
}

// register adds a session, replacing (and closing) an older one of the same device;
// its connection from src stops being pending in the same step, so that it is never
// counted twice against the limits.
func (s *Server) register(ss *session, src netip.Addr) bool {
	s.mu.Lock()
	if s.shutting {
		s.mu.Unlock()
		return false
	}
	old := s.sessions[ss.id]
	s.sessions[ss.id] = ss
	s.releaseLocked(src)
	s.mu.Unlock()
	s.m.pending.Dec()
	s.m.sessions.Inc()
	if old != nil {
		old.close(ReasonReplaced, nil)
	}
	return true
}

// unregister removes ss if it is still the device's current session.
func (s *Server) unregister(ss *session) {
	s.mu.Lock()
	if s.sessions[ss.id] == ss {
		delete(s.sessions, ss.id)
	}
	s.mu.Unlock()
	s.m.sessions.Dec()
}

// refuseWithError sends the reason's protocol error (if any) and refuses.
func (s *Server) refuseWithError(c net.Conn, id pki.Identity, remote string, reason CloseReason, err error) {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		s.m.protocolErrors.WithLabelValues("out", pe.Code.String()).Inc()
		writeFrameNow(c, c, pe)
		s.closeRefused(c, id, remote, reason, err)
		return
	}
	s.refuse(c, id, remote, reason, err)
}

// refuse ends a connection that did not become a session, sending the reason's
// protocol error first when it has one.
func (s *Server) refuse(c net.Conn, id pki.Identity, remote string, reason CloseReason, err error) {
	if code := reason.code(); code != 0 {
		s.m.protocolErrors.WithLabelValues("out", code.String()).Inc()
		writeFrameNow(c, c, protocol.NewError(code, 0, string(reason)))
	}
	s.closeRefused(c, id, remote, reason, err)
}

func (s *Server) closeRefused(c net.Conn, id pki.Identity, remote string, reason CloseReason, err error) {
	c.Close()
	s.m.closes.WithLabelValues(string(reason)).Inc()
	attrs := []any{"remote", remote, "reason", reason, "err", err}
	if reason == ReasonRegistryUnavailable {
		// An outage refuses every device at once: one line per period.
		ok, held := s.logLimit.allow("refused/" + string(reason))
		if !ok {
			return
		}
		attrs = append(attrs, "suppressed", held)
	}
	if id.Name != "" {
		attrs = append(attrs, "device", id.String())
	}
	s.log.Warn("connection refused", attrs...)
}

// writeFrameNow writes one message directly (not through a queue), best effort, with
// a short deadline set on raw.
func writeFrameNow(raw net.Conn, w io.Writer, m protocol.Message) {
	frame, err := protocol.EncodeFrame(m)
	if err != nil {
		return
	}
	_ = raw.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = w.Write(frame)
}

// classifyHandshake names why a TLS handshake failed.
func classifyHandshake(err error) HandshakeReason {
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var ne net.Error
	switch {
	case errors.As(err, &ua):
		return HandshakeUnknownAuthority
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		return HandshakeExpired
	case errors.Is(err, pki.ErrNoIdentity):
		return HandshakeBadIdentity
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return HandshakeTimeout
	}
	msg := err.Error()
	switch {
	case containsAny(msg, "didn't provide a certificate", "client didn't provide"):
		return HandshakeNoClientCert
	case containsAny(msg, "protocol version", "no cipher suite", "unsupported versions"):
		return HandshakeVersion
	case containsAny(msg, "certificate has expired", "expired"):
		return HandshakeExpired
	case containsAny(msg, "unknown authority", "unknown certificate authority"):
		return HandshakeUnknownAuthority
	}
	return HandshakeOther
}

// readFailure maps an error of Reader.ReadFrame to a close reason.
func readFailure(err error) CloseReason {
	var pe *protocol.Error
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF):
		return ReasonClientClosed
	case errors.Is(err, io.ErrUnexpectedEOF):
		return ReasonTruncated
	case errors.As(err, &pe):
		return reasonForCode(pe.Code)
	case errors.As(err, &ne) && ne.Timeout():
		return ReasonHeartbeatTimeout
	}
	return ReasonReadError
}

func connectedData(gateway v1.Ref, ss *session, h *protocol.Hello) *events.DeviceConnectedData {
	d := &events.DeviceConnectedData{
		Namespace: ss.id.Namespace, Device: ss.id.Name, Gateway: gateway, Session: ss.sessionName(), Since: ss.openedAt(),
		Board: h.Board, FirmwareVersion: h.Firmware,
		RAMBytes: int64(h.Caps.RAM), FlashBytes: int64(h.Caps.Flash),
		MaxModuleBytes: int64(h.Caps.MaxModule), ABIVersion: int32(h.Caps.ABI),
	}
	for _, a := range h.Apps {
		d.Applications = append(d.Applications, events.AppOnDevice{Name: a.Name, Digest: wireDigest(a.Digest), State: platformState(a.State)})
	}
	return d
}
