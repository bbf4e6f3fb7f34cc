package hosttest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/api/abi"
	"github.com/wasmbed/wasmbed/builder"
	"github.com/wasmbed/wasmbed/internal/wasmhost"
)

// TestLimitsMatchABI keeps the device's wall-clock limits and the Go hosts' (api/abi) one
// set of numbers, as docs/abi.md states them.
func TestLimitsMatchABI(t *testing.T) {
	for _, c := range []struct {
		name   string
		c, abi int
	}{
		{"call time (ms)", CallTimeMs, abi.CallTimeMs},
		{"log period (ms)", LogPeriodMs, abi.LogPeriodMs},
		{"log burst", LogBurst, abi.LogBurst},
		{"publish period (ms)", PublishPeriodMs, abi.PublishPeriodMs},
		{"publish burst", PublishBurst, abi.PublishBurst},
	} {
		if c.c != c.abi {
			t.Errorf("%s: firmware %d, api/abi %d", c.name, c.c, c.abi)
		}
	}
}

// testWat builds firmware/tests/wat/<name>.wat.
func testWat(t *testing.T, name string) []byte {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "tests", "wat", name+".wat"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := builder.Build(context.Background(), builder.Request{Language: builder.WAT, Source: src})
	if err != nil {
		t.Fatalf("build %s.wat: %v", name, err)
	}
	return res.Module
}

func goApp(t *testing.T, bin []byte, clock wasmhost.Clock) (*wasmhost.App, *wasmhost.SimBoard) {
	t.Helper()
	ctx := context.Background()
	// A compute budget far above the time budget: only the time budget may stop these.
	host, err := wasmhost.NewHost(ctx, wasmhost.NewHostConfig().WithCallBudget(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close(ctx) })
	board := wasmhost.NewSimBoard(wasmhost.SimBoardConfig{Clock: clock})
	mod, err := host.Compile(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	app, err := host.Instantiate(ctx, mod, board)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close(ctx) })
	return app, board
}

// TestFloodAgreesWithWazero floods both hosts on equal simulated clocks, 250 ms apart:
// the same lines and records must pass the buckets and the same drop reports come out.
func TestFloodAgreesWithWazero(t *testing.T) {
	bin := testWat(t, "app_flood")
	const calls, step = 12, 250
	clock := wasmhost.NewSimClock(time.Unix(1000, 0))
	app, board := goApp(t, bin, clock)
	for i := 0; i < calls; i++ {
		if _, _, err := app.Loop(context.Background()); err != nil {
			t.Fatalf("go loop %d: %v", i, err)
		}
		clock.Advance(step * time.Millisecond)
	}
	var gt strings.Builder
	for _, l := range board.Logs() {
		fmt.Fprintf(&gt, "log %d %s\n", l.Level, l.Message)
	}
	for _, r := range board.Records() {
		fmt.Fprintf(&gt, "publish %s %s\n", r.Topic, r.Data)
	}

	b := NewBoard([4]int32{}, "", "")
	defer b.Close()
	if err := b.Start(bin); err != nil {
		t.Fatalf("C start: %v", err)
	}
	for i := 0; i < calls; i++ {
		if _, err := b.Loop(); err != nil {
			t.Fatalf("C loop %d: %v", i, err)
		}
		b.Advance(step)
	}
	var logs, pubs []string
	for _, l := range strings.SplitAfter(b.Trace(), "\n") {
		switch {
		case strings.HasPrefix(l, "log "):
			logs = append(logs, l)
		case strings.HasPrefix(l, "publish "):
			pubs = append(pubs, l)
		}
	}
	ct := strings.Join(logs, "") + strings.Join(pubs, "")
	if gt.String() != ct {
		t.Errorf("trace differs:\nwazero:\n%s\nC:\n%s", gt.String(), ct)
	}
	if !strings.Contains(ct, "lines dropped") || !strings.Contains(ct, "records dropped") {
		t.Errorf("no drop reports in the trace: the comparison proves little:\n%s", ct)
	}
}

// TestSleeperAgreesWithWazero: an app sleeping 100 ms at a time inside one loop call
// fails on both hosts with the same reason, after the same time on their clocks.
func TestSleeperAgreesWithWazero(t *testing.T) {
	bin := testWat(t, "app_sleepy")
	clock := wasmhost.NewSimClock(time.Unix(1000, 0))
	app, _ := goApp(t, bin, clock)
	start := clock.Now()
	_, _, err := app.Loop(context.Background())
	goTook := clock.Now().Sub(start).Milliseconds()
	st := app.Status()

	b := NewBoard([4]int32{}, "", "")
	defer b.Close()
	if err := b.Start(bin); err != nil {
		t.Fatalf("C start: %v", err)
	}
	cStart := b.Now()
	_, cerr := b.Loop()
	cTook := b.Now() - cStart
	if err == nil || cerr == nil || st.Reason != b.Failure() || st.Reason != abi.ReasonTimeBudget {
		t.Fatalf("wazero: %v (%q), C: %v (%q); want both %q", err, st.Reason, cerr, b.Failure(), abi.ReasonTimeBudget)
	}
	if goTook != cTook || goTook != abi.CallTimeMs {
		t.Errorf("the call lasted %d ms on wazero, %d ms on the device runtime, want %d", goTook, cTook, abi.CallTimeMs)
	}
}
