// Package sink sends CloudEvents to a Knative sink (K_SINK): the broker ingress in a
// cluster, the in-process broker in `make run`.
package sink

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/wasmbed/wasmbed/internal/eventauth"

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
}

// NewHTTP returns a sender to target, an absolute http(s) URL, that attaches a token of
// tokens to every event (receivers refuse events without one).
func NewHTTP(target string, timeout time.Duration, tokens eventauth.TokenSource) (*HTTP, error) {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("sink %q is not an absolute http(s) URL", target)
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	hc := http.Client{}
	if tokens != nil {
		hc.Transport = eventauth.Transport(nil, tokens)
	}
	p, err := cehttp.New(cehttp.WithClient(hc))
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	c, err := cloudevents.NewClient(p, cloudevents.WithTimeNow(), cloudevents.WithUUIDs())
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	return &HTTP{url: target, timeout: timeout, client: c}, nil
}

// FromEnv returns a sender to $K_SINK, as Knative's SinkBinding sets it, with the token
// Kubernetes projects for the broker's audience at $K_SINK_TOKEN_FILE.
func FromEnv() (*HTTP, error) {
	s := os.Getenv("K_SINK")
	if s == "" {
		return nil, errors.New("K_SINK is not set: it must name the broker that receives this component's events")
	}
	f := os.Getenv("K_SINK_TOKEN_FILE")
	if f == "" {
		return nil, errors.New("K_SINK_TOKEN_FILE is not set: it must name this component's projected token for the broker's audience")
	}
	return NewHTTP(s, DefaultTimeout, eventauth.File(f))
}

// URL returns the sink's address.
func (h *HTTP) URL() string { return h.url }

// Send delivers e and fails unless the sink acknowledged it with a 2xx.
func (h *HTTP) Send(ctx context.Context, e cloudevents.Event) error {
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
