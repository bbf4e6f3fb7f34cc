package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/api/digest"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/api/protocol"
	"github.com/wasmbed/wasmbed/gateway"
	wasmfix "github.com/wasmbed/wasmbed/testdata/wasm"
)

const (
	uidA = "6f1d3c8e-0000-4000-8000-00000000000a"
	uidB = "6f1d3c8e-0000-4000-8000-00000000000b"
)

// req is one deployment request in a table: what is asked, and for which devices.
type req struct {
	app     gateway.DesiredApp
	devices []string
}

func want(uid string, gen int64, digest digest.Digest, mods ...func(*gateway.DesiredApp)) gateway.DesiredApp {
	d := gateway.DesiredApp{Namespace: "default", Name: "app", UID: uid, Generation: gen, Digest: digest, Size: 1}
	for _, m := range mods {
		m(&d)
	}
	return d
}

func rollback(d *gateway.DesiredApp) { d.Rollback = true }
func removal(d *gateway.DesiredApp)  { d.Remove = true; d.Digest, d.Size = "", 0 }

// TestDesiredOrdering: requests stored out of order never undo a later decision, on the
// devices they name only; the others keep what they had.
func TestDesiredOrdering(t *testing.T) {
	both := []string{"d1", "d2"}
	for _, tc := range []struct {
		name string
		reqs []req
		want map[string]gateway.DesiredApp // by device; absent: nothing desired
	}{{
		name: "a late step request after the rollback of its generation is stale",
		reqs: []req{
			{want(uidA, 2, "new"), both},
			{want(uidA, 2, "old", rollback), both},
			{want(uidA, 2, "new"), both},
		},
		want: map[string]gateway.DesiredApp{"d1": want(uidA, 2, "old", rollback), "d2": want(uidA, 2, "old", rollback)},
	}, {
		name: "a rollback of some devices leaves the others on the step",
		reqs: []req{
			{want(uidA, 2, "new"), both},
			{want(uidA, 2, "old", rollback), []string{"d1"}},
			{want(uidA, 2, "new"), both},
		},
		want: map[string]gateway.DesiredApp{"d1": want(uidA, 2, "old", rollback), "d2": want(uidA, 2, "new")},
	}, {
		name: "the next generation replaces a rollback",
		reqs: []req{
			{want(uidA, 2, "old", rollback), both},
			{want(uidA, 3, "fixed"), both},
		},
		want: map[string]gateway.DesiredApp{"d1": want(uidA, 3, "fixed"), "d2": want(uidA, 3, "fixed")},
	}, {
		name: "an older generation is stale",
		reqs: []req{
			{want(uidA, 3, "v3"), both},
			{want(uidA, 2, "v2"), []string{"d2"}},
		},
		want: map[string]gateway.DesiredApp{"d1": want(uidA, 3, "v3"), "d2": want(uidA, 3, "v3")},
	}, {
		name: "a deployment after the removal of its object is stale",
		reqs: []req{
			{want(uidA, 2, "", removal), both},
			{want(uidA, 2, "v2"), both},
		},
		want: map[string]gateway.DesiredApp{"d1": want(uidA, 2, "", removal), "d2": want(uidA, 2, "", removal)},
	}, {
		name: "the removal of a deleted object never removes its successor",
		reqs: []req{
			{want(uidB, 1, "v1"), both},
			{want(uidA, 4, "", removal), both},
		},
		want: map[string]gateway.DesiredApp{"d1": want(uidB, 1, "v1"), "d2": want(uidB, 1, "v1")},
	}, {
		name: "a re-created object replaces its predecessor, whatever the generations",
		reqs: []req{
			{want(uidA, 7, "v7"), both},
			{want(uidB, 1, "v1"), both},
		},
		want: map[string]gateway.DesiredApp{"d1": want(uidB, 1, "v1"), "d2": want(uidB, 1, "v1")},
	}, {
		name: "a late deployment of a deleted object loses to its successor",
		reqs: []req{
			{want(uidA, 3, "a3"), both},
			{want(uidA, 4, "", removal), both},
			{want(uidB, 1, "b1"), []string{"d1"}},
			{want(uidA, 3, "a3"), both},
		},
		want: map[string]gateway.DesiredApp{"d1": want(uidB, 1, "b1"), "d2": want(uidA, 4, "", removal)},
	}, {
		name: "a late deployment of a deleted object goes nowhere",
		reqs: []req{
			{want(uidA, 4, "", removal), []string{"d1"}},
			{want(uidA, 3, "a3"), []string{"d2"}},
		},
		want: map[string]gateway.DesiredApp{"d1": want(uidA, 4, "", removal)},
	}, {
		name: "the removal of a successor replaces what a deleted object left",
		reqs: []req{
			{want(uidA, 3, "a3"), []string{"d1"}},
			{want(uidA, 4, "", removal), []string{"d2"}},
			{want(uidB, 2, "", removal), []string{"d1"}},
		},
		want: map[string]gateway.DesiredApp{"d1": want(uidB, 2, "", removal), "d2": want(uidA, 4, "", removal)},
	}, {
		name: "requests that do not name their object are taken in arrival order",
		reqs: []req{
			{want("", 3, "v3"), both},
			{want("", 2, "v2"), both},
			{want(uidA, 1, "v1"), []string{"d1"}},
		},
		want: map[string]gateway.DesiredApp{"d1": want(uidA, 1, "v1"), "d2": want("", 2, "v2")},
	}, {
		name: "stale for every device: nothing changes",
		reqs: []req{
			{want(uidA, 2, "old", rollback), []string{"d1"}},
			{want(uidA, 1, "v1"), []string{"d1"}},
		},
		want: map[string]gateway.DesiredApp{"d1": want(uidA, 2, "old", rollback)},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			durable, err := gateway.NewDirDesired(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range tc.reqs {
				if err := durable.Apply(ctx, r.app, r.devices); err != nil {
					t.Fatal(err)
				}
			}
			reloaded, err := gateway.NewDirDesired(dir)
			if err != nil {
				t.Fatal(err)
			}
			for store, s := range map[string]gateway.DesiredStore{"written": durable, "reloaded": reloaded} {
				for _, dev := range both {
					got, ok, err := s.Current(ctx, id("default", dev), "app")
					if err != nil {
						t.Fatal(err)
					}
					w, wok := tc.want[dev]
					if ok != wok || fmt.Sprint(got) != fmt.Sprint(w) {
						t.Errorf("%s: %s has %+v (%v), want %+v (%v)", store, dev, got, ok, w, wok)
					}
				}
			}
		})
	}
}

// TestRacingRequestsEndWithTheLatest sends a step request and the rollback that
// supersedes it many times, in parallel and in both orders, to devices that are
// connected: whatever the interleaving, every device ends up running the rollback's
// module, which is what the gateway stores.
func TestRacingRequestsEndWithTheLatest(t *testing.T) {
	h := newHarness(t)
	const n = 6
	f := h.fleet("race-", n)
	eventually(t, 20*time.Second, func() bool { return h.srv.Sessions() == n }, "%d sessions", n)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("race-%d", i)
	}
	good, bad := h.put(wasmfix.Blink), h.put(wasmfix.Sensor)
	app := events.AppRef{Namespace: "default", Name: "race", Generation: 2, UID: uidA}
	step := func() int { return h.deploy(app, bad, len(wasmfix.Sensor), names) }
	back := func() int {
		return h.deploy(app, good, len(wasmfix.Blink), names, func(d *events.DeploymentRequestedData) { d.Rollback = true })
	}
	if code := step(); code != http.StatusAccepted {
		t.Fatalf("step answered %d", code)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			send := []func() int{step, back}[i%2]
			if code := send(); code != http.StatusAccepted {
				t.Errorf("request %d answered %d", i, code)
			}
		}()
	}
	wg.Wait()
	onGood := func() bool {
		for _, d := range f.Devices() {
			if st, _ := d.AppState("race"); st != protocol.StateRunning || d.Module("race") != good {
				return false
			}
		}
		return true
	}
	eventually(t, 30*time.Second, onGood, "every device runs the rollback's module")
	// Nothing older is still on its way: after one more rollback request is answered
	// by every device, they all still run it.
	before := h.events.count(events.DeploymentSucceeded, runningDigest(good))
	back()
	eventually(t, 30*time.Second, func() bool {
		return h.events.count(events.DeploymentSucceeded, runningDigest(good)) >= before+n
	}, "the last rollback request answered")
	if !onGood() {
		t.Errorf("a device left the rollback's module")
	}
}

func runningDigest(digest digest.Digest) func(cloudevents.Event) bool {
	return func(e cloudevents.Event) bool {
		d, err := events.DecodeAs[*events.DeploymentResultData](e, events.DeploymentSucceeded)
		return err == nil && d.State == "Running" && d.Digest == digest
	}
}

// TestSupersededRequestReportsNothing: a step request that arrives after the rollback
// of its generation is not stored, and reports nothing for the device, not even that
// its module is too large for it.
func TestSupersededRequestReportsNothing(t *testing.T) {
	h := newHarness(t)
	h.connect(id("default", "big-0"), 4096)
	eventually(t, 10*time.Second, func() bool { return h.srv.Sessions() == 1 }, "session")
	good := h.put(wasmfix.Blink)
	huge := padModule(wasmfix.Blink, 300<<10)
	big := h.put(huge)
	app := events.AppRef{Namespace: "default", Name: "big", Generation: 2, UID: uidA}
	if code := h.deploy(app, good, len(wasmfix.Blink), []string{"big-0"}, func(d *events.DeploymentRequestedData) { d.Rollback = true }); code != http.StatusAccepted {
		t.Fatalf("rollback answered %d", code)
	}
	// Handle reports synchronously to the sink: after the answer, any report is there.
	if code := h.deploy(app, big, len(huge), []string{"big-0"}); code != http.StatusAccepted {
		t.Fatalf("late step request answered %d", code)
	}
	if n := h.events.count(events.DeploymentFailed, nil); n != 0 {
		t.Errorf("%d deployment.failed events for a superseded request: %v", n, h.events.all(events.DeploymentFailed))
	}
	// The same request for the next generation is current, and fails as too large.
	app.Generation = 3
	if code := h.deploy(app, big, len(huge), []string{"big-0"}); code != http.StatusAccepted {
		t.Fatalf("next generation answered %d", code)
	}
	if n := h.events.count(events.DeploymentFailed, failedWith("too_large")); n != 1 {
		t.Errorf("%d too_large failures for the current request, want 1", n)
	}
}
