package gateway_test

import (
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"

	"github.com/wasmbed/wasmbed/api/digest"

	"context"
	"math/rand/v2"
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

// TestHTTPSinkKeepsEachDevicesOrder emits numbered events for several devices to an
// endpoint that answers after a random delay: each device's events must arrive in the
// order they were emitted (a device's Failed overtaking its later Running left the
// device on a rolled-back module), while different devices may interleave.
func TestHTTPSinkKeepsEachDevicesOrder(t *testing.T) {
	const devices, per = 8, 40
	var mu sync.Mutex
	seen := map[string][]int{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := cehttp.NewEventFromHTTPRequest(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
		var d events.DeploymentResultData
		if err := e.DataAs(&d); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		seen[d.Device] = append(seen[d.Device], int(d.Application.Generation))
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer ts.Close()
	sink, err := gateway.NewHTTPSink(ts.URL, gateway.HTTPSinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= per; i++ {
		for dev := range devices {
			name := "sim-" + itoa(dev)
			e, err := events.New(events.DeploymentSucceeded, "/test", "default/app", &events.DeploymentResultData{
				Application: events.AppRef{Namespace: "default", Name: "app", Generation: int64(i)},
				Device:      name, Gateway: v1.Ref{Namespace: "wasmbed-system", Name: "gateway"}, Digest: digest.Of([]byte("a")), State: "Running"})
			if err != nil {
				t.Fatal(err)
			}
			e.SetExtension(events.ExtPartitionKey, name)
			sink.Emit(e)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sink.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for dev := range devices {
		got := seen["sim-"+itoa(dev)]
		if len(got) != per {
			t.Fatalf("sim-%d: %d events arrived, want %d", dev, len(got), per)
		}
		for i, g := range got {
			if g != i+1 {
				t.Fatalf("sim-%d: events arrived as %v, want 1..%d in order", dev, got, per)
			}
		}
	}
}
