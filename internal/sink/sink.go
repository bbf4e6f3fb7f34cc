// Package sink sends CloudEvents to a Knative sink (K_SINK): the broker ingress in a
// cluster, the in-process broker in `make run`.
package sink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/wasmbed/wasmbed/internal/eventauth"
	"github.com/wasmbed/wasmbed/internal/tracing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// DefaultTimeout bounds one send.
const DefaultTimeout = 10 * time.Second

// HTTP sends events to one URL in binary mode.
type HTTP struct {
	url     string
	timeout time.Duration
	client  cloudevents.Client
	tracer  *tracing.Tracer
}

// Option adjusts a sender made by NewHTTP.
type Option func(*options)

type options struct{ caCerts, component string }

// WithComponent names the component that sends, on its spans (default "wasmbed").
func WithComponent(name string) Option { return func(o *options) { o.component = name } }

// WithCACerts makes the sender trust the PEM certificates in pem as well as the system's
// roots: the broker's CA, which Knative's SinkBinding gives as K_CA_CERTS when K_SINK
// is https (transport encryption). Empty changes nothing.
func WithCACerts(pem string) Option { return func(o *options) { o.caCerts = pem } }

// CATransport returns a transport that trusts the system's roots and the PEM
// certificates in pem, or nil (the default transport) when pem is empty.
func CATransport(pem string) (http.RoundTripper, error) {
	if strings.TrimSpace(pem) == "" {
		return nil, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM([]byte(pem)) {
		return nil, errors.New("the sink's CA certificates (K_CA_CERTS) hold no PEM certificate")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return tr, nil
}

// NewHTTP returns a sender to target, an absolute http(s) URL, that attaches a token of
// tokens to every event (receivers refuse events without one).
func NewHTTP(target string, timeout time.Duration, tokens eventauth.TokenSource, opts ...Option) (*HTTP, error) {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("sink %q is not an absolute http(s) URL", target)
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	o := options{component: "wasmbed"}
	for _, opt := range opts {
		opt(&o)
	}
	base, err := CATransport(o.caCerts)
	if err != nil {
		return nil, fmt.Errorf("sink %s: %w", target, err)
	}
	hc := http.Client{}
	if base != nil {
		hc.Transport = base
	}
	if tokens != nil {
		hc.Transport = eventauth.Transport(base, tokens)
	}
	p, err := cehttp.New(cehttp.WithClient(hc))
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	c, err := cloudevents.NewClient(p, cloudevents.WithTimeNow(), cloudevents.WithUUIDs())
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	return &HTTP{url: target, timeout: timeout, client: c, tracer: tracing.New(o.component)}, nil
}

// FromEnv returns a sender to $K_SINK, as Knative's SinkBinding sets it, with the token
// Kubernetes projects for the broker's audience at $K_SINK_TOKEN_FILE, trusting the CA
// the SinkBinding gives in $K_CA_CERTS.
func FromEnv(opts ...Option) (*HTTP, error) {
	s := os.Getenv("K_SINK")
	if s == "" {
		return nil, errors.New("K_SINK is not set: it must name the broker that receives this component's events")
	}
	f := os.Getenv("K_SINK_TOKEN_FILE")
	if f == "" {
		return nil, errors.New("K_SINK_TOKEN_FILE is not set: it must name this component's projected token for the broker's audience")
	}
	return NewHTTP(s, DefaultTimeout, eventauth.File(f), append([]Option{WithCACerts(os.Getenv("K_CA_CERTS"))}, opts...)...)
}

// URL returns the sink's address.
func (h *HTTP) URL() string { return h.url }

// Send delivers e and fails unless the sink acknowledged it with a 2xx. e continues
// the trace of ctx: a producer span is started and e's traceparent names it.
func (h *HTTP) Send(ctx context.Context, e cloudevents.Event) (err error) {
	e = e.Clone()
	ctx, end := h.tracer.Send(ctx, &e)
	defer func() { end(err) }()
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	res := h.client.Send(cloudevents.ContextWithTarget(ctx, h.url), e)
	var hr *cehttp.Result
	if cloudevents.ResultAs(res, &hr) && hr.StatusCode/100 != 2 {
		return fmt.Errorf("send %s to %s: status %d: %v", e.Type(), h.url, hr.StatusCode, res)
	}
	if !cloudevents.IsACK(res) {
		return fmt.Errorf("send %s to %s: %w", e.Type(), h.url, res)
	}
	return nil
}
