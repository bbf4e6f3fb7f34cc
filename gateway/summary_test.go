package gateway_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/api/events"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/gateway"
	wasmfix "github.com/wasmbed/wasmbed/testdata/wasm"
)

// lastSummary returns the newest deployment.summarized event of app's variant of digest
// (the highest seq), or nil.
func lastSummary(t *testing.T, h *harness, app events.AppRef, digest string) *events.DeploymentSummaryData {
	t.Helper()
	var last *events.DeploymentSummaryData
	for _, e := range h.events.all(events.DeploymentSummarized) {
		d, err := events.DecodeAs[*events.DeploymentSummaryData](e, events.DeploymentSummarized)
		if err != nil {
			t.Fatalf("summary does not decode: %v", err)
		}
		if e.Subject() != app.Subject() || e.Extensions()[events.ExtPartitionKey] != gatewayName+"/"+app.Subject() {
			t.Errorf("summary subject %q partitionkey %v", e.Subject(), e.Extensions()[events.ExtPartitionKey])
		}
		if d.Application.Generation == app.Generation && string(d.Digest) == digest && (last == nil || d.Seq > last.Seq) {
			last = d
		}
	}
	return last
}

// TestSummaries: a gateway sums up its devices' results per module, in few events; a
// failed start is counted by failure type and named; devices not connected count as
// neither succeeded nor failed; a later deployment replaces the counts.
func TestSummaries(t *testing.T) {
	h := newHarness(t, func(c gateway.Config) gateway.Config { return c.WithSummaries(100*time.Millisecond, 0) })
	const n = 6
	h.fleet("sim-", n)
	eventually(t, 20*time.Second, func() bool { return h.srv.Sessions() == n }, "%d sessions", n)

	good, bad := h.put(wasmfix.Sensor), h.put(wasmfix.TrapSetup)
	names := func(from, to int) []string {
		var out []string
		for i := from; i < to; i++ {
			out = append(out, fmt.Sprintf("sim-%d", i))
		}
		return out
	}
	app := events.AppRef{Namespace: "default", Name: "sensor", Generation: 1, UID: "u1"}
	// Four connected devices get the good module, one more that never connects too.
	if code := h.deploy(app, good, len(wasmfix.Sensor), append(names(0, 4), "offline")); code != http.StatusAccepted {
		t.Fatalf("deploy answered %d", code)
	}
	other := events.AppRef{Namespace: "default", Name: "sensor", Generation: 2, UID: "u1"}
	if code := h.deploy(other, bad, len(wasmfix.TrapSetup), names(4, 6)); code != http.StatusAccepted {
		t.Fatalf("deploy answered %d", code)
	}
	eventually(t, 30*time.Second, func() bool {
		s := lastSummary(t, h, app, string(good))
		return s != nil && s.Succeeded == 4
	}, "a summary with 4 devices running")
	s := lastSummary(t, h, app, string(good))
	if s.Devices != 5 || s.Failed != 0 || s.Gateway != gatewayRef || s.Application.UID != "u1" || s.Epoch.IsZero() {
		t.Errorf("summary of the good module: %+v", s)
	}
	eventually(t, 30*time.Second, func() bool {
		s := lastSummary(t, h, other, string(bad))
		return s != nil && s.Failed == 2
	}, "a summary with 2 failed devices")
	s = lastSummary(t, h, other, string(bad))
	if s.Devices != 2 || s.Succeeded != 0 || s.FailuresByType[v1.FailureStart] != 2 || len(s.FirstFailures) != 2 ||
		s.FirstFailures[0].Device != "sim-4" || s.FirstFailures[0].Failure != v1.FailureStart || s.FirstFailures[0].Message == "" {
		t.Errorf("summary of the failing module: %+v", s)
	}
	// Coalesced: far fewer summaries than results.
	results := h.events.count(events.DeploymentSucceeded, nil) + h.events.count(events.DeploymentFailed, nil)
	if sums := h.events.count(events.DeploymentSummarized, nil); sums >= results+2 {
		t.Errorf("%d summaries for %d results", sums, results)
	}

	// The failing devices get the good module at generation 3: its devices move there.
	next := events.AppRef{Namespace: "default", Name: "sensor", Generation: 3, UID: "u1"}
	if code := h.deploy(next, good, len(wasmfix.Sensor), names(4, 6)); code != http.StatusAccepted {
		t.Fatalf("deploy answered %d", code)
	}
	eventually(t, 30*time.Second, func() bool {
		s := lastSummary(t, h, next, string(good))
		return s != nil && s.Succeeded == 2 && s.Devices == 2
	}, "generation 3 running on 2 devices")
	if s := lastSummary(t, h, app, string(good)); s.Devices != 5 || s.Succeeded != 4 {
		t.Errorf("generation 1 after generation 3: %+v", s)
	}
	if got := h.counter(gateway.MetricSummaries, ""); got < 3 {
		t.Errorf("summaries metric %v", got)
	}
	// Every summary is a valid event of the contract with a rising seq.
	var seq int64
	for _, e := range h.events.all(events.DeploymentSummarized) {
		d, _ := events.DecodeAs[*events.DeploymentSummaryData](e, events.DeploymentSummarized)
		if d.Seq <= seq {
			t.Errorf("seq %d after %d", d.Seq, seq)
		}
		seq = d.Seq
	}
}

// TestSummaryConfigRefused: summaries cannot be switched off by a zero or negative
// interval; rollouts count on them.
func TestSummaryConfigRefused(t *testing.T) {
	ca, cert := testCA(t), gatewayCert(t)
	for _, tc := range []struct{ interval, resync time.Duration }{{0, 0}, {-time.Second, 0}, {time.Second, -time.Second}} {
		_, err := gateway.New(gateway.NewConfig(ca.Pool(), cert).WithName(gatewayName).WithSummaries(tc.interval, tc.resync))
		if err == nil || !strings.Contains(err.Error(), "summary interval") {
			t.Errorf("interval %v resync %v: err = %v", tc.interval, tc.resync, err)
		}
	}
}
