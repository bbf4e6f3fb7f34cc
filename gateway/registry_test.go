package gateway_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/api/protocol"
	"github.com/wasmbed/wasmbed/gateway"
	"github.com/wasmbed/wasmbed/internal/pki"
)

// checkFunc is a Registry whose Check is the function; it revokes nothing.
type checkFunc func(ctx context.Context, id pki.Identity) error

func (f checkFunc) Check(ctx context.Context, id pki.Identity, _ *x509.Certificate) error {
	return f(ctx, id)
}
func (f checkFunc) Watch(ctx context.Context, _ func(pki.Identity)) error {
	<-ctx.Done()
	return nil
}

// TestRegistryFailsClosed: a device the registry refuses is told unauthorized; a
// registry that cannot answer (an error, or no answer in time) refuses the device too,
// told busy so that it retries, and counted as registry-unavailable.
func TestRegistryFailsClosed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		check  checkFunc
		code   protocol.ErrorCode
		reason gateway.CloseReason
	}{
		{"allowed", func(context.Context, pki.Identity) error { return nil }, 0, ""},
		{"not allowed", func(_ context.Context, id pki.Identity) error {
			return fmt.Errorf("%w: %s is disabled", gateway.ErrNotAllowed, id)
		}, protocol.CodeUnauthorized, gateway.ReasonNotAllowed},
		{"registry fails", func(context.Context, pki.Identity) error {
			return errors.New("list devices: connection refused")
		}, protocol.CodeBusy, gateway.ReasonRegistryUnavailable},
		{"registry does not answer", func(ctx context.Context, _ pki.Identity) error {
			<-ctx.Done()
			return fmt.Errorf("device cache not synced: %w", ctx.Err())
		}, protocol.CodeBusy, gateway.ReasonRegistryUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c gateway.Config) gateway.Config {
				return c.WithRegistry(tc.check).WithRegistryTimeout(200 * time.Millisecond)
			})
			dev := id("default", "reg-0")
			if tc.reason == "" {
				h.connect(dev, 2048)
				return
			}
			d, err := h.dialRaw(deviceCert(t, h.ca, dev), nil)
			if err != nil {
				t.Fatal(err)
			}
			d.send(helloFor(dev.String(), 2048))
			if e := d.expectClosed(); e == nil || e.Code != tc.code {
				t.Fatalf("got %v, want %s", e, tc.code)
			}
			label := "reason=" + string(tc.reason)
			eventually(t, 5*time.Second, func() bool { return h.counter(gateway.MetricCloses, label) == 1 }, "%s counted", label)
			// The refusal is counted, then logged: wait for the line too.
			eventually(t, 5*time.Second, func() bool { return hasLog(h, "connection refused", label, "device=default/reg-0") }, "a log line")
			if h.srv.Connected(dev) {
				t.Fatal("the refused device has a session")
			}
		})
	}
}
