package gateway

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/wasmbed/wasmbed/internal/eventauth"
	"github.com/wasmbed/wasmbed/internal/sink"
	"github.com/wasmbed/wasmbed/internal/tracing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmbed/wasmbed/api/events"
)

// Sink receives the gateway's events. Emit must not block: the gateway calls it from
// session read loops.
type Sink interface {
	Emit(e cloudevents.Event)
}

// SinkFunc adapts a function to Sink; the function must not block.
type SinkFunc func(cloudevents.Event)

// Emit calls f.
func (f SinkFunc) Emit(e cloudevents.Event) { f(e) }

// HTTPSink defaults.
const (
	DefaultSinkQueue    = 8192
	DefaultSinkTimeout  = 5 * time.Second
	DefaultSinkAttempts = 4
	DefaultSinkWorkers  = 4
)

// HTTPSink sends events to a CloudEvents HTTP endpoint (K_SINK: a broker or a
// function) from bounded queues, with a timeout and retries with backoff on 5xx and
// network errors. Events with the same partition key (else the same subject) share a
// queue and one sender, so they reach the endpoint in the order they were emitted: a
// device's Failed and the Running that follows it can never swap. When a queue is full,
// Emit drops the event and counts it.
type HTTPSink struct {
	target   string
	client   cloudevents.Client
	lanes    []chan cloudevents.Event
	logger   *slog.Logger
	attempts int
	timeout  time.Duration
	backoff  time.Duration
	counter  *prometheus.CounterVec
	tracer   *tracing.Tracer

	mu      sync.Mutex
	closed  bool
	workers sync.WaitGroup
}

// HTTPSinkOptions tune an HTTPSink; zero values take the defaults.
type HTTPSinkOptions struct {
	Queue      int
	Timeout    time.Duration
	Attempts   int
	Backoff    time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Tokens gives the gateway's tokens for the target's audience; the broker refuses
	// events without one.
	Tokens eventauth.TokenSource
	// CACerts are PEM certificates trusted for an https target besides the system's
	// roots (K_CA_CERTS from a SinkBinding under transport encryption).
	CACerts string
}

// NewHTTPSink returns a sink for target and starts its workers; Close stops them.
func NewHTTPSink(target string, o HTTPSinkOptions) (*HTTPSink, error) {
	if target == "" {
		return nil, errors.New("http sink: empty target")
	}
	if o.Queue <= 0 {
		o.Queue = DefaultSinkQueue
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultSinkTimeout
	}
	if o.Attempts <= 0 {
		o.Attempts = DefaultSinkAttempts
	}
	if o.Backoff <= 0 {
		o.Backoff = 200 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	base, err := sink.CATransport(o.CACerts)
	if err != nil {
		return nil, fmt.Errorf("http sink: %w", err)
	}
	hc := http.Client{Timeout: o.Timeout}
	if base != nil {
		hc.Transport = base
	}
	if o.Tokens != nil {
		hc.Transport = eventauth.Transport(base, o.Tokens)
	}
	p, err := cehttp.New(cehttp.WithTarget(target), cehttp.WithClient(hc))
	if err != nil {
		return nil, fmt.Errorf("http sink: %w", err)
	}
	c, err := cloudevents.NewClient(p)
	if err != nil {
		return nil, fmt.Errorf("http sink: %w", err)
	}
	s := &HTTPSink{
		target: target, client: c, logger: o.Logger,
		attempts: o.Attempts, timeout: o.Timeout, backoff: o.Backoff, tracer: tracing.New("gateway"),
		counter: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricEvents,
			Help: "CloudEvents by type and result (sent, dropped, failed)."}, []string{"type", "result"}),
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(s.counter)
	}
	for range DefaultSinkWorkers {
		lane := make(chan cloudevents.Event, max(1, o.Queue/DefaultSinkWorkers))
		s.lanes = append(s.lanes, lane)
		s.workers.Add(1)
		go s.work(lane)
	}
	return s, nil
}

// laneOf picks the queue of e: by its partition key, else its subject.
func (s *HTTPSink) laneOf(e cloudevents.Event) chan cloudevents.Event {
	key, _ := e.Extensions()[events.ExtPartitionKey].(string)
	if key == "" {
		key = e.Subject()
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	return s.lanes[h.Sum32()%uint32(len(s.lanes))]
}

// Emit queues e, or drops it when the queue is full or the sink is closed.
func (s *HTTPSink) Emit(e cloudevents.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.counter.WithLabelValues(e.Type(), "dropped").Inc()
		return
	}
	select {
	case s.laneOf(e) <- e:
	default:
		s.counter.WithLabelValues(e.Type(), "dropped").Inc()
		s.logger.Warn("event queue full, event dropped", "type", e.Type(), "subject", e.Subject())
	}
}

// Close stops accepting events, sends what is queued, and returns when the workers
// are done or ctx ends.
func (s *HTTPSink) Close(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		for _, lane := range s.lanes {
			close(lane)
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.workers.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *HTTPSink) work(lane chan cloudevents.Event) {
	defer s.workers.Done()
	for e := range lane {
		s.send(e)
	}
}

func (s *HTTPSink) send(e cloudevents.Event) {
	// One span for every attempt, continuing the trace the event carries (a
	// deployment's), and named in the traceparent it goes out with.
	base, end := s.tracer.Send(tracing.Continue(context.Background(), e), &e)
	var res error
	defer func() { end(res) }()
	delay := s.backoff
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(base, s.timeout)
		res = s.client.Send(ctx, e)
		cancel()
		if cloudevents.IsACK(res) {
			res = nil
			s.counter.WithLabelValues(e.Type(), "sent").Inc()
			return
		}
		var hr *cehttp.Result
		permanent := cloudevents.ResultAs(res, &hr) && hr.StatusCode >= 400 && hr.StatusCode < 500 &&
			hr.StatusCode != http.StatusTooManyRequests && hr.StatusCode != http.StatusRequestTimeout
		if permanent || attempt >= s.attempts {
			s.counter.WithLabelValues(e.Type(), "failed").Inc()
			s.logger.Warn("event not delivered", "type", e.Type(), "subject", e.Subject(), "attempts", attempt, "err", res)
			return
		}
		time.Sleep(delay)
		delay *= 2
	}
}

type discardSink struct{}

func (discardSink) Emit(cloudevents.Event) {}
