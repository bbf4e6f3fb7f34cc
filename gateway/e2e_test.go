package gateway_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/api/protocol"
	wasmfix "github.com/wasmbed/wasmbed/testdata/wasm"
)

// TestThousandDevices connects 1,000 virtual devices, deploys a module to all of them
// through the HTTP API and waits until each reports it Running. It runs in `make test`
// (about 3 s on 2 cores); -short skips it.
func TestThousandDevices(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const n = 1000
	h := newHarness(t)
	start := time.Now()
	f := h.fleet("k-", n)
	issued := time.Since(start)
	eventually(t, 60*time.Second, func() bool { return h.srv.Sessions() == n }, "%d sessions", n)
	connected := time.Since(start)
	digest := h.put(wasmfix.Blink)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("k-%d", i)
	}
	deployAt := time.Now()
	if code := h.deploy(events.AppRef{Namespace: "default", Name: "blink", Generation: 1}, digest, len(wasmfix.Blink), names); code != 202 {
		t.Fatalf("deploy: %d", code)
	}
	eventually(t, 60*time.Second, func() bool {
		return h.events.count(events.DeploymentSucceeded, succeeded("Running")) == n
	}, "%d devices Running", n)
	running := time.Since(deployAt)
	for _, d := range f.Devices() {
		if st, why := d.AppState("blink"); st != protocol.StateRunning {
			t.Fatalf("%s: %v: %s", d.ID(), st, why)
		}
	}
	t.Logf("%d devices: certificates %v, all connected after %v, deploy to all Running in %v (total %v)",
		n, issued.Round(time.Millisecond), connected.Round(time.Millisecond), running.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}
