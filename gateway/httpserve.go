package gateway

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// HTTPTimeouts bound every HTTP server of the gateway (ServeAPI, ServeOps), so that a
// client that sends slowly (slowloris), reads slowly or idles cannot hold a
// connection, and with it a file descriptor and a goroutine.
type HTTPTimeouts struct {
	// ReadHeader bounds reading a request's headers (and the TLS handshake).
	ReadHeader time.Duration
	// Read bounds reading a whole request, body included.
	Read time.Duration
	// Write bounds a request from the end of its headers to the end of the response:
	// the handler's work included. A deployment request may fetch its module, so it
	// is generous; the handler's own deadline is three quarters of it.
	Write time.Duration
	// Idle bounds the wait for the next request on a kept-alive connection.
	Idle time.Duration
	// MaxHeaderBytes bounds a request's headers.
	MaxHeaderBytes int
}

// DefaultHTTPTimeouts are the gateway's HTTP timeouts unless WithHTTPTimeouts.
var DefaultHTTPTimeouts = HTTPTimeouts{
	ReadHeader:     5 * time.Second,
	Read:           30 * time.Second,
	Write:          2 * time.Minute,
	Idle:           90 * time.Second,
	MaxHeaderBytes: 64 << 10,
}

func (t HTTPTimeouts) valid() bool {
	return t.ReadHeader > 0 && t.Read > 0 && t.Write > 0 && t.Idle > 0 && t.MaxHeaderBytes > 0
}

// ServeAPI serves APIHandler on l until Shutdown, and returns ErrServerClosed then:
// the deploy API, device logs and enrollment, over TLS when WithAPITLS is set. At most
// Limits().HTTPConns connections are served at once; more wait in the listen queue.
func (s *Server) ServeAPI(l net.Listener) error {
	return s.serveHTTP("api", l, s.apiHandler, s.cfg.apiTLS)
}

// ServeEnroll serves only POST /enroll on l, over TLS with tc (pki.APITLSConfig), until
// Shutdown: a listener of its own for devices outside a cluster, where the deploy API
// stays on its own listener. It needs SetEnroller.
func (s *Server) ServeEnroll(l net.Listener, tc *tls.Config) error {
	if tc == nil {
		l.Close()
		return errors.New("serve enroll: a tls configuration is required: a bootstrap token must not travel in the clear")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /enroll", s.serveEnrollment)
	return s.serveHTTP("enroll", l, mux, tc)
}

// ServeOps serves OpsHandler on l until Shutdown, and returns ErrServerClosed then:
// /healthz, /readyz and /metrics, apart from the deploy API so that probes and
// scrapers need no access to it (and the other way round).
func (s *Server) ServeOps(l net.Listener) error {
	return s.serveHTTP("ops", l, s.opsHandler, nil)
}

func (s *Server) serveHTTP(name string, l net.Listener, h http.Handler, tc *tls.Config) error {
	t := s.cfg.httpTimeouts
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    t.MaxHeaderBytes,
		ErrorLog:          log.New(&httpErrorLog{s: s, listener: name}, "", 0),
	}
	s.mu.Lock()
	if s.shutting {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.httpServers = append(s.httpServers, hs)
	s.mu.Unlock()
	l = newLimitListener(l, s.limits.HTTPConns)
	if tc != nil {
		l = tls.NewListener(l, tc)
	}
	if err := hs.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", name, err)
	}
	return ErrServerClosed
}

// httpErrorLog takes net/http's error log (failed TLS handshakes, accept errors it
// retries) into the gateway's log, at most one line per listener and period: a
// client decides how often those happen.
type httpErrorLog struct {
	s        *Server
	listener string
}

func (w *httpErrorLog) Write(p []byte) (int, error) {
	if ok, held := w.s.logLimit.allow("http/" + w.listener); ok {
		w.s.log.Warn("http server", "listener", w.listener, "msg", strings.TrimSpace(string(p)), "suppressed", held)
	}
	return len(p), nil
}

// limitListener hands out at most n connections at once; Accept waits for one to
// close. Waiting connections stay in the kernel's listen queue and hold no descriptor
// of the process.
type limitListener struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func newLimitListener(l net.Listener, n int) *limitListener {
	return &limitListener{Listener: l, sem: make(chan struct{}, n), done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
