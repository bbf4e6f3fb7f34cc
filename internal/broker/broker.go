// Package broker is the in-process event broker of the embedded platform (`make run`).
// It has the semantics of a Knative Eventing Broker with Triggers, so the functions,
// the operator and the gateways run unchanged on it:
//
//   - ingress: an HTTP endpoint accepting CloudEvents in binary or structured mode
//     (what K_SINK points at), answering 202 once the event is queued;
//   - Triggers: an exact match of every filter attribute (type, source, subject or any
//     extension), as Knative's Trigger `filter.attributes`;
//   - delivery over HTTP to the subscriber; a reply event is published back into the
//     broker, as in Knative;
//   - retries with linear or exponential backoff on transport errors and on 404, 408,
//     409, 429 and 5xx; other statuses go straight to the dead-letter sink, as do events
//     whose retries are exhausted, with the knativeerror* extensions Knative adds;
//   - ordering: events of one Trigger with the same partition key (the CloudEvents
//     partitioning extension "partitionkey", else the subject) are delivered in the
//     order they were accepted, one at a time (a retry holds back later events of that
//     key); different keys are delivered in parallel.
package broker

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmbed/wasmbed/internal/eventauth"
)

// BackoffPolicy is how the delay between retries grows.
type BackoffPolicy string

// Backoff policies, as in Knative's delivery spec.
const (
	BackoffLinear      BackoffPolicy = "linear"
	BackoffExponential BackoffPolicy = "exponential"
)

// Delivery is a Trigger's delivery spec.
type Delivery struct {
	// Retry is the number of retries after the first attempt.
	Retry int
	// BackoffPolicy and BackoffDelay set the delay before retry n: delay*n (linear)
	// or delay*2^(n-1) (exponential).
	BackoffPolicy BackoffPolicy
	BackoffDelay  time.Duration
	// Timeout bounds each attempt.
	Timeout time.Duration
	// DeadLetterSink receives events that could not be delivered; empty drops them
	// (they are still logged and counted).
	DeadLetterSink string
}

// DefaultDelivery is used for Triggers that leave Delivery zero.
var DefaultDelivery = Delivery{Retry: 5, BackoffPolicy: BackoffExponential, BackoffDelay: 200 * time.Millisecond, Timeout: 30 * time.Second}

// Trigger subscribes a URL to the events whose attributes match Filter exactly.
type Trigger struct {
	// Name identifies the Trigger in logs and metrics.
	Name string
	// Filter maps attribute names (type, source, subject, or an extension) to values.
	// An empty filter matches every event.
	Filter map[string]string
	// Subscriber is the URL events are POSTed to.
	Subscriber string
	// Delivery configures retries and the dead-letter sink.
	Delivery Delivery
	// Identity is the user name the Trigger's deliveries and replies carry (Knative's
	// per-Trigger OIDC ServiceAccount), and Tokens gives its tokens for the
	// subscriber's audience.
	Identity string
	Tokens   eventauth.TokenSource
}

// Config configures a Broker.
type Config struct {
	// Workers is the number of delivery lanes per Trigger (events of one partition key
	// always share a lane). Default 4.
	Workers int
	// QueueLength bounds each lane; a full lane makes ingress answer 503. Default 4096.
	QueueLength int
	// Logger receives delivery failures.
	Logger *slog.Logger
	// Registerer receives the broker's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Client sends events; nil uses a default HTTP client.
	Client *http.Client
	// Ingress says who may publish which event types, through the ingress and as a
	// Trigger's reply. Without it the ingress refuses every event (401).
	Ingress *eventauth.Policy
}

// Broker routes events from its ingress to its Triggers' subscribers.
type Broker struct {
	cfg      Config
	sender   cloudevents.Client
	triggers []*trigger
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	metrics  metrics
}

type trigger struct {
	Trigger
	lanes []chan cloudevents.Event
}

type metrics struct {
	accepted, delivered, retried, deadLettered, refusedReplies *prometheus.CounterVec
}

// New starts a broker with the given Triggers; Close stops it.
func New(cfg Config, triggers ...Trigger) (*Broker, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.QueueLength <= 0 {
		cfg.QueueLength = 4096
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	hc := cfg.Client
	if hc == nil {
		hc = &http.Client{}
	}
	p, err := cehttp.New(cehttp.WithClient(*hc))
	if err != nil {
		return nil, fmt.Errorf("broker: http protocol: %w", err)
	}
	sender, err := cloudevents.NewClient(p, cloudevents.WithTimeNow(), cloudevents.WithUUIDs())
	if err != nil {
		return nil, fmt.Errorf("broker: client: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Broker{cfg: cfg, sender: sender, ctx: ctx, cancel: cancel, metrics: newMetrics(cfg.Registerer)}
	names := map[string]bool{}
	for _, t := range triggers {
		if t.Name == "" || names[t.Name] {
			cancel()
			return nil, fmt.Errorf("broker: trigger name %q is empty or used twice", t.Name)
		}
		if t.Subscriber == "" {
			cancel()
			return nil, fmt.Errorf("broker: trigger %s has no subscriber", t.Name)
		}
		names[t.Name] = true
		if t.Delivery == (Delivery{}) {
			t.Delivery = DefaultDelivery
		}
		if t.Delivery.Timeout == 0 {
			t.Delivery.Timeout = DefaultDelivery.Timeout
		}
		tr := &trigger{Trigger: t}
		for i := 0; i < cfg.Workers; i++ {
			lane := make(chan cloudevents.Event, cfg.QueueLength)
			tr.lanes = append(tr.lanes, lane)
			b.wg.Add(1)
			go b.deliverLoop(tr, lane)
		}
		b.triggers = append(b.triggers, tr)
	}
	return b, nil
}

func newMetrics(r prometheus.Registerer) metrics {
	m := metrics{
		accepted:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wasmbed_broker_events_accepted_total", Help: "Events accepted by the broker ingress, by type."}, []string{"type"}),
		delivered:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wasmbed_broker_deliveries_total", Help: "Events delivered to a subscriber, by trigger."}, []string{"trigger"}),
		retried:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wasmbed_broker_retries_total", Help: "Delivery retries, by trigger."}, []string{"trigger"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wasmbed_broker_dead_letters_total", Help: "Events given up on, by trigger."}, []string{"trigger"}),
		refusedReplies: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wasmbed_broker_refused_replies_total",
			Help: "Replies dropped because the trigger's identity may not send their type, by trigger."}, []string{"trigger"}),
	}
	if r != nil {
		r.MustRegister(m.accepted, m.delivered, m.retried, m.deadLettered, m.refusedReplies)
	}
	return m
}

// Close stops delivery; queued events are dropped. It waits for in-flight attempts.
func (b *Broker) Close() {
	b.cancel()
	b.wg.Wait()
}

// ErrOverloaded is returned by Publish when a Trigger's queue is full.
var ErrOverloaded = errors.New("broker queue full")

// Publish queues e for every matching Trigger. It fails on an invalid event, or with
// ErrOverloaded when a matching Trigger's lane is full; Triggers before that one may
// already hold the event, so a retried publish can reach them twice (delivery is
// at least once, as in Knative).
func (b *Broker) Publish(e cloudevents.Event) error {
	if err := e.Validate(); err != nil {
		return fmt.Errorf("publish: invalid event: %w", err)
	}
	if b.ctx.Err() != nil {
		return errors.New("publish: broker closed")
	}
	b.metrics.accepted.WithLabelValues(e.Type()).Inc()
	for _, t := range b.triggers {
		if !matches(t.Filter, e) {
			continue
		}
		key := e.Subject()
		if pk, ok := e.Extensions()["partitionkey"].(string); ok && pk != "" {
			key = pk
		}
		lane := t.lanes[laneOf(key, len(t.lanes))]
		select {
		case lane <- e.Clone():
		default:
			return fmt.Errorf("publish %s to trigger %s: %w", e.Type(), t.Name, ErrOverloaded)
		}
	}
	return nil
}

func laneOf(subject string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(subject))
	return int(h.Sum32() % uint32(n))
}

// matches is Knative's exact-match attribute filter.
func matches(filter map[string]string, e cloudevents.Event) bool {
	for k, want := range filter {
		var got string
		switch k {
		case "type":
			got = e.Type()
		case "source":
			got = e.Source()
		case "subject":
			got = e.Subject()
		case "id":
			got = e.ID()
		case "specversion":
			got = e.SpecVersion()
		case "datacontenttype":
			got = e.DataContentType()
		case "dataschema":
			got = e.DataSchema()
		default:
			v, ok := e.Extensions()[k]
			if !ok {
				return false
			}
			got = fmt.Sprint(v)
		}
		if got != want {
			return false
		}
	}
	return true
}

func (b *Broker) deliverLoop(t *trigger, lane chan cloudevents.Event) {
	defer b.wg.Done()
	for {
		select {
		case <-b.ctx.Done():
			return
		case e := <-lane:
			b.deliver(t, e)
		}
	}
}

// deliver sends e to t's subscriber with retries, publishes a reply, and dead-letters
// on failure.
func (b *Broker) deliver(t *trigger, e cloudevents.Event) {
	d := t.Delivery
	var status int
	var lastErr error
	for attempt := 0; attempt <= d.Retry; attempt++ {
		if attempt > 0 {
			b.metrics.retried.WithLabelValues(t.Name).Inc()
			select {
			case <-b.ctx.Done():
				return
			case <-time.After(backoff(d, attempt)):
			}
		}
		var reply *cloudevents.Event
		reply, status, lastErr = b.send(t.Subscriber, t.Tokens, d.Timeout, e)
		if lastErr == nil {
			b.metrics.delivered.WithLabelValues(t.Name).Inc()
			if reply != nil {
				if b.cfg.Ingress == nil || !b.cfg.Ingress.Allows(t.Identity, reply.Type()) {
					b.metrics.refusedReplies.WithLabelValues(t.Name).Inc()
					b.cfg.Logger.Warn("reply refused: the trigger may not send its type", "trigger", t.Name, "identity", t.Identity, "type", reply.Type())
					return
				}
				if err := b.Publish(*reply); err != nil {
					b.cfg.Logger.Error("reply not published", "trigger", t.Name, "type", reply.Type(), "err", err)
				}
			}
			return
		}
		if b.ctx.Err() != nil {
			return
		}
		if !retryable(status) {
			break
		}
	}
	b.metrics.deadLettered.WithLabelValues(t.Name).Inc()
	b.cfg.Logger.Warn("event not delivered", "trigger", t.Name, "type", e.Type(), "subject", e.Subject(), "id", e.ID(), "status", status, "err", lastErr)
	if d.DeadLetterSink == "" {
		return
	}
	dl := e.Clone()
	dl.SetExtension("knativeerrordest", t.Subscriber)
	if status != 0 {
		dl.SetExtension("knativeerrorcode", strconv.Itoa(status))
	}
	if lastErr != nil {
		msg := lastErr.Error()
		if len(msg) > 1024 {
			msg = msg[:1024]
		}
		dl.SetExtension("knativeerrordata", base64.StdEncoding.EncodeToString([]byte(msg)))
	}
	if _, _, err := b.send(d.DeadLetterSink, t.Tokens, d.Timeout, dl); err != nil {
		b.cfg.Logger.Error("dead-letter sink failed", "trigger", t.Name, "id", e.ID(), "err", err)
	}
}

// send POSTs e to url. It returns the reply event (if any), the HTTP status (0 on a
// transport error) and an error for anything but 2xx.
func (b *Broker) send(url string, tokens eventauth.TokenSource, timeout time.Duration, e cloudevents.Event) (*cloudevents.Event, int, error) {
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	ctx = cloudevents.ContextWithTarget(ctx, url)
	if tokens != nil {
		h, err := eventauth.Header(ctx, tokens)
		if err != nil {
			return nil, 0, fmt.Errorf("deliver to %s: %w", url, err)
		}
		ctx = cehttp.WithCustomHeader(ctx, h)
	}
	reply, res := b.sender.Request(ctx, e)
	var hr *cehttp.Result
	status := 0
	if cloudevents.ResultAs(res, &hr) {
		status = hr.StatusCode
	}
	if cloudevents.IsACK(res) && (status == 0 || status/100 == 2) {
		return reply, status, nil
	}
	if status/100 == 2 {
		return reply, status, nil
	}
	return nil, status, fmt.Errorf("deliver to %s: %w", url, res)
}

// retryable is Knative's rule: transport errors, 404, 408, 409, 429 and 5xx are retried.
func retryable(status int) bool {
	switch {
	case status == 0, status == 404, status == 408, status == 409, status == 429, status >= 500:
		return true
	}
	return false
}

func backoff(d Delivery, attempt int) time.Duration {
	if d.BackoffDelay <= 0 {
		return 0
	}
	if d.BackoffPolicy == BackoffLinear {
		return d.BackoffDelay * time.Duration(attempt)
	}
	return d.BackoffDelay << (attempt - 1)
}

// ServeHTTP is the broker ingress: it accepts a CloudEvent (binary or structured) and
// answers 202 when queued, 400 for an invalid event and 503 when a queue is full.
func (b *Broker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST a CloudEvent", http.StatusMethodNotAllowed)
		return
	}
	sender, ok := eventauth.Admit(b.cfg.Ingress, w, r)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	e, err := cehttp.NewEventFromHTTPRequest(r)
	if err != nil {
		http.Error(w, "not a CloudEvent: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := b.cfg.Ingress.Authorize(r, sender, e.Type()); err != nil {
		eventauth.Write(w, err)
		return
	}
	if err := b.Publish(*e); err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, ErrOverloaded) {
			code = http.StatusServiceUnavailable
		}
		http.Error(w, err.Error(), code)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}
