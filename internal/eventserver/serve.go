// Package serve runs a Wasmbed function the way Knative runs it: an HTTP server on
// $PORT that accepts a CloudEvent (binary or structured mode) on POST /, replies with
// the next event, and answers health checks. Contract violations get a 4xx so the
// broker does not retry; other failures a 5xx so it does.
package eventserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/internal/eventauth"
	"github.com/wasmbed/wasmbed/internal/tracing"
)

// Handler is a function: it receives one event and returns the next one, or nil.
type Handler interface {
	Handle(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error)
}

// HandlerFunc adapts a plain function to Handler.
type HandlerFunc func(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	return f(ctx, e)
}

// StatusError carries the HTTP status a failure should be answered with.
type StatusError struct {
	Code int
	Err  error
}

func (e *StatusError) Error() string { return e.Err.Error() }
func (e *StatusError) Unwrap() error { return e.Err }

// Permanent marks err as the caller's fault (HTTP 422): the broker will not retry it.
func Permanent(err error) error { return &StatusError{Code: http.StatusUnprocessableEntity, Err: err} }

// StatusOf maps a handler error to an HTTP status: a *StatusError's own code, 400 for
// an *events.BadEventError, 500 for anything else (retried by the broker).
func StatusOf(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	var bad *events.BadEventError
	if errors.As(err, &bad) {
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// MaxEventBytes bounds an incoming event (a build request carries at most 256 KiB of
// source, which JSON escaping can grow).
const MaxEventBytes = 2 << 20

// Options configure NewHTTPHandler.
type Options struct {
	// Logger receives one line per failed request.
	Logger *slog.Logger
	// Registerer receives the function's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Gatherer serves /metrics; nil serves none.
	Gatherer prometheus.Gatherer
	// Timeout bounds one invocation. Default 5 minutes (Knative's default revision timeout).
	Timeout time.Duration
	// Auth says who may send which event types. Without one every event is refused
	// (401): a receiver never runs open by omission.
	Auth *eventauth.Policy
}

// NewHTTPHandler serves h: POST / takes an event, GET /healthz and /readyz answer 200,
// /metrics serves Prometheus metrics.
func NewHTTPHandler(name string, h Handler, o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Minute
	}
	tracer := tracing.New(name)
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wasmbed_function_requests_total", Help: "Events handled, by function, event type and HTTP status.",
		ConstLabels: prometheus.Labels{"function": name},
	}, []string{"type", "code"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "wasmbed_function_duration_seconds", Help: "Time to handle an event, by function and event type.",
		ConstLabels: prometheus.Labels{"function": name}, Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
	}, []string{"type"})
	if o.Registerer != nil {
		o.Registerer.MustRegister(requests, latency)
	}
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) }
	mux.HandleFunc("GET /healthz", ok)
	mux.HandleFunc("GET /readyz", ok)
	if o.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/" {
			http.Error(w, "POST a CloudEvent to /", http.StatusMethodNotAllowed)
			return
		}
		start := time.Now()
		if o.Auth == nil {
			requests.WithLabelValues("", "401").Inc()
			http.Error(w, "this receiver has no sender policy: every event is refused", http.StatusUnauthorized)
			return
		}
		sender, err := o.Auth.Authenticate(r.Context(), r)
		if err != nil {
			requests.WithLabelValues("", strconv.Itoa(refusalCode(err))).Inc()
			eventauth.Write(w, err)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxEventBytes)
		e, err := cehttp.NewEventFromHTTPRequest(r)
		if err != nil {
			requests.WithLabelValues("", "400").Inc()
			http.Error(w, "not a CloudEvent: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := e.Validate(); err != nil {
			requests.WithLabelValues(e.Type(), "400").Inc()
			http.Error(w, "invalid CloudEvent: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := o.Auth.Authorize(r, sender, e.Type()); err != nil {
			requests.WithLabelValues(e.Type(), "403").Inc()
			eventauth.Write(w, err)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), o.Timeout)
		defer cancel()
		// The handling continues the trace the event carries; what the handler sends
		// with ctx, and its reply, continue it further.
		ctx, endSpan := tracer.Process(ctx, e)
		reply, err := h.Handle(ctx, *e)
		endSpan(err)
		if reply != nil {
			tracing.Inject(ctx, reply)
		}
		latency.WithLabelValues(e.Type()).Observe(time.Since(start).Seconds())
		if err != nil {
			code := StatusOf(err)
			requests.WithLabelValues(e.Type(), strconv.Itoa(code)).Inc()
			o.Logger.Warn("event failed", "function", name, "type", e.Type(), "subject", e.Subject(), "id", e.ID(), "code", code, "err", err)
			http.Error(w, err.Error(), code)
			return
		}
		if reply == nil {
			requests.WithLabelValues(e.Type(), "202").Inc()
			w.WriteHeader(http.StatusAccepted)
			return
		}
		requests.WithLabelValues(e.Type(), "200").Inc()
		if err := cehttp.WriteResponseWriter(ctx, binding.ToMessage(reply), http.StatusOK, w); err != nil {
			o.Logger.Error("write reply", "function", name, "err", err)
		}
	})
	return mux
}

func refusalCode(err error) int {
	var ref *eventauth.Refusal
	if errors.As(err, &ref) {
		return ref.Code
	}
	return http.StatusForbidden
}

// Addr returns the listen address from $PORT (Knative sets it), default ":8080".
func Addr() string {
	if p := os.Getenv("PORT"); p != "" {
		return ":" + p
	}
	return ":8080"
}

// ListenAndServe serves handler on addr until ctx is cancelled, then shuts down
// gracefully within 10 s. ready, if not nil, is called once the listener is open.
func ListenAndServe(ctx context.Context, addr string, handler http.Handler, ready func(net.Addr)) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	if ready != nil {
		ready(l.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", addr, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
