package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/wasmbed/wasmbed/internal/pki"
)

// Defaults of the enrollment rate limit.
const (
	// DefaultEnrollBurst is how many failed enrollments one source may make in a row.
	DefaultEnrollBurst = 5
	// DefaultEnrollRefill is how often a source earns back one failed enrollment.
	DefaultEnrollRefill = time.Minute
	// maxEnrollSources bounds the sources the limiter remembers.
	maxEnrollSources = 10_000
)

// Results of enrollment requests: the "result" label of MetricEnrollments.
const (
	EnrollSigned      = "signed"
	EnrollDenied      = "denied"
	EnrollBadRequest  = "bad-request"
	EnrollRateLimited = "rate-limited"
	EnrollInsecure    = "insecure"
	EnrollError       = "error"
)

// EnrollerOptions tune an Enroller.
type EnrollerOptions struct {
	// Logger receives a line per refused and per signed enrollment.
	Logger *slog.Logger
	// Burst is how many failed requests (bad token, bad request) one source (IP
	// address) may make before its requests are refused with 429 whatever they carry;
	// it earns one back every Refill. Defaults: DefaultEnrollBurst, DefaultEnrollRefill.
	Burst  int
	Refill time.Duration
}

// Enroller serves POST /enroll: a device sends {"token", "csr"} (PEM) and gets back
// {"certificate", "ca"} (PEM) for the identity its bootstrap token is bound to. It
// serves only requests that came over TLS, limits failed attempts per source, and
// spends each token once (Tokens).
type Enroller struct {
	signer *pki.Signer
	tokens *Tokens
	caPEM  []byte
	log    *slog.Logger
	count  func(result string)
	limit  *failureLimiter
}

// NewEnroller returns an enrollment handler signing with signer (whose Approver should
// be tokens) and returning caPEM as the CA devices must trust.
func NewEnroller(signer *pki.Signer, tokens *Tokens, caPEM []byte, o EnrollerOptions) *Enroller {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Burst <= 0 {
		o.Burst = DefaultEnrollBurst
	}
	if o.Refill <= 0 {
		o.Refill = DefaultEnrollRefill
	}
	return &Enroller{signer: signer, tokens: tokens, caPEM: caPEM, log: o.Logger, count: func(string) {},
		limit: &failureLimiter{burst: o.Burst, refill: o.Refill, sources: map[string]*budget{}}}
}

// SetEnroller enables POST /enroll on the HTTP handler.
func (s *Server) SetEnroller(e *Enroller) {
	e.count = func(result string) { s.m.enrollments.WithLabelValues(result).Inc() }
	e.log = s.log
	s.mu.Lock()
	s.enroll = e
	s.mu.Unlock()
}

func (s *Server) enroller() *Enroller {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.enroll
}

type enrollRequest struct {
	Token string `json:"token"`
	CSR   string `json:"csr"`
}

type enrollResponse struct {
	Certificate string `json:"certificate"`
	CA          string `json:"ca"`
}

// ServeHTTP handles one enrollment.
func (e *Enroller) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil {
		// The token would cross the network in the clear, for anyone on the path to
		// replay first. Refuse before reading it, so that nobody builds on it.
		e.count(EnrollInsecure)
		e.log.Warn("enrollment refused", "reason", "plain HTTP", "remote", r.RemoteAddr)
		http.Error(w, "POST /enroll is served over TLS only: a bootstrap token sent in the clear can be replayed "+
			"(serve the gateway's HTTP port with --http-tls)", http.StatusForbidden)
		return
	}
	src := source(r)
	if wait := e.limit.wait(src, time.Now()); wait > 0 {
		e.count(EnrollRateLimited)
		e.log.Warn("enrollment refused", "reason", "too many failed attempts", "remote", r.RemoteAddr)
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		http.Error(w, "too many failed enrollments from this address; try again later", http.StatusTooManyRequests)
		return
	}
	fail := func(result string, status int, msg string, attrs ...any) {
		e.limit.fail(src, time.Now())
		e.count(result)
		e.log.Warn("enrollment refused", append([]any{"remote", r.RemoteAddr}, attrs...)...)
		http.Error(w, msg, status)
	}
	var req enrollRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil || req.Token == "" || req.CSR == "" {
		fail(EnrollBadRequest, http.StatusBadRequest, "want JSON {\"token\", \"csr\"}", "reason", "bad request")
		return
	}
	id, err := e.tokens.live(req.Token)
	if err != nil {
		// The device is told no more than "refused"; the log says why.
		fail(EnrollDenied, http.StatusForbidden, ErrTokenRefused.Error(), "reason", err.Error())
		return
	}
	ctx := context.WithValue(r.Context(), tokenKey{}, req.Token)
	certPEM, err := e.signer.Sign(ctx, []byte(req.CSR), id)
	switch {
	case errors.Is(err, ErrTokenStore):
		e.count(EnrollError)
		e.log.Error("enrollment failed", "device", id.String(), "err", err)
		http.Error(w, "the gateway cannot record the token as spent; try again later", http.StatusServiceUnavailable)
		return
	case errors.Is(err, ErrTokenRefused):
		fail(EnrollDenied, http.StatusForbidden, ErrTokenRefused.Error(), "device", id.String(), "reason", err.Error())
		return
	case err != nil:
		fail(EnrollBadRequest, http.StatusBadRequest, err.Error(), "device", id.String(), "reason", err.Error())
		return
	}
	e.count(EnrollSigned)
	e.log.Info("device enrolled", "device", id.String(), "remote", r.RemoteAddr)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(enrollResponse{Certificate: string(certPEM), CA: string(e.caPEM)})
}

// source is who a request comes from, for the rate limit: the peer's IPv4 address,
// or its IPv6 /64 (what one host is usually given). Forwarding headers are not
// trusted; a proxy in front of /enroll would need its own limit.
func source(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.To4() != nil {
		return host
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// failureLimiter is a token bucket per source, spent by failed requests only: a
// device that enrolls at the first attempt never waits, a source guessing tokens is
// held to one guess per refill after its burst.
type failureLimiter struct {
	burst  int
	refill time.Duration

	mu      sync.Mutex
	sources map[string]*budget
}

type budget struct {
	left float64
	at   time.Time
}

// refilled returns b's budget at now.
func (l *failureLimiter) refilled(b *budget, now time.Time) float64 {
	return min(float64(l.burst), b.left+float64(now.Sub(b.at))/float64(l.refill))
}

// wait returns how long src must wait before its next request, 0 when it may go on.
func (l *failureLimiter) wait(src string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.sources[src]
	if b == nil {
		return 0
	}
	left := l.refilled(b, now)
	if left >= 1 {
		return 0
	}
	return time.Duration((1 - left) * float64(l.refill))
}

// fail spends one of src's failures.
func (l *failureLimiter) fail(src string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.sources[src]
	if b == nil {
		if len(l.sources) >= maxEnrollSources {
			l.forget(now)
		}
		b = &budget{left: float64(l.burst), at: now}
		l.sources[src] = b
	}
	b.left, b.at = max(0, l.refilled(b, now)-1), now
}

// forget drops the sources whose budget is whole again, and all of them if that is
// not enough: a bound on memory, at worst a fresh burst for an address.
func (l *failureLimiter) forget(now time.Time) {
	for src, b := range l.sources {
		if l.refilled(b, now) >= float64(l.burst) {
			delete(l.sources, src)
		}
	}
	if len(l.sources) >= maxEnrollSources {
		l.sources = map[string]*budget{}
	}
}
