package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/gateway"
	wasmfix "github.com/wasmbed/wasmbed/testdata/wasm"
)

// TestHTTPSink sends the gateway's events to an httptest CloudEvents endpoint that
// fails the first request with 503: the sender retries, and every device.connected,
// deployment.succeeded and device.seen event arrives.
func TestHTTPSink(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{}
	var calls atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		e, err := cehttp.NewEventFromHTTPRequest(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got[e.Type()]++
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer ts.Close()
	sink, err := gateway.NewHTTPSink(ts.URL, gateway.HTTPSinkOptions{Backoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c gateway.Config) gateway.Config {
		return c.WithSink(sink).WithSeenInterval(100 * time.Millisecond)
	})
	const n = 20
	h.fleet("sink-", n)
	eventually(t, 10*time.Second, func() bool { return h.srv.Sessions() == n }, "sessions")
	names := make([]string, n)
	for i := range names {
		names[i] = "sink-" + itoa(i)
	}
	digest := h.put(wasmfix.Blink)
	h.deploy(events.AppRef{Namespace: "default", Name: "blink", Generation: 1}, digest, len(wasmfix.Blink), names)
	count := func(t events.Type) int { mu.Lock(); defer mu.Unlock(); return got[string(t)] }
	eventually(t, 20*time.Second, func() bool {
		return count(events.DeviceConnected) == n && count(events.DeploymentSucceeded) == n && count(events.DeviceSeen) >= 1
	}, "events at the sink")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sink.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
