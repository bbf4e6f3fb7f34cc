package gateway

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"time"
)

// Accept backoff, as net/http's Server.Serve: 5 ms after the first failure, doubling
// to at most one second while accept keeps failing.
const (
	acceptMinDelay = 5 * time.Millisecond
	acceptMaxDelay = time.Second
)

// AcceptError names a temporary accept failure; it labels
// wasmbed_gateway_accept_errors_total.
type AcceptError string

// Temporary accept failures. Out of file descriptors (the process's or the system's)
// is what a flood of idle connections causes; the others come from the kernel under
// memory pressure or from the listener's own deadline.
const (
	AcceptEMFILE  AcceptError = "emfile"
	AcceptENFILE  AcceptError = "enfile"
	AcceptENOBUFS AcceptError = "enobufs"
	AcceptENOMEM  AcceptError = "enomem"
	AcceptTimeout AcceptError = "timeout"
	AcceptOther   AcceptError = "other"
)

// classifyAccept says whether an accept error is temporary (the loop backs off and
// accepts again) and names it. A closed listener and unknown errors are permanent.
func classifyAccept(err error) (AcceptError, bool) {
	switch {
	case errors.Is(err, net.ErrClosed):
		return "", false
	case errors.Is(err, syscall.EMFILE):
		return AcceptEMFILE, true
	case errors.Is(err, syscall.ENFILE):
		return AcceptENFILE, true
	case errors.Is(err, syscall.ENOBUFS):
		return AcceptENOBUFS, true
	case errors.Is(err, syscall.ENOMEM):
		return AcceptENOMEM, true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return AcceptTimeout, true
	}
	// net.Error's Temporary is deprecated because it is ill-defined for reads and
	// writes; for accept it is still what net/http relies on (ECONNABORTED and the
	// like, which the runtime mostly retries itself).
	var te interface{ Temporary() bool }
	if errors.As(err, &te) && te.Temporary() {
		return AcceptOther, true
	}
	return "", false
}

// nextAcceptDelay returns the backoff after another failure, d being the previous
// one (0 after a success).
func nextAcceptDelay(d time.Duration) time.Duration {
	if d == 0 {
		return acceptMinDelay
	}
	return min(2*d, acceptMaxDelay)
}

// logLimiter lets one log line per key through every interval and counts the lines
// it held back, so that a flood (refused connections, accept failures) costs a line
// per interval rather than one per connection. Keys are a small fixed set (reasons).
type logLimiter struct {
	every time.Duration

	mu   sync.Mutex
	last map[string]time.Time
	held map[string]int
}

func newLogLimiter(every time.Duration) *logLimiter {
	return &logLimiter{every: every, last: map[string]time.Time{}, held: map[string]int{}}
}

// allow reports whether a line for key may be logged now, and how many lines of key
// were held back since the last one that was.
func (l *logLimiter) allow(key string) (ok bool, suppressed int) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if last, seen := l.last[key]; seen && now.Sub(last) < l.every {
		l.held[key]++
		return false, 0
	}
	l.last[key] = now
	suppressed = l.held[key]
	l.held[key] = 0
	return true, suppressed
}
