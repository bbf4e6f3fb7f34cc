package wasmhost_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/api/abi"
	"github.com/wasmbed/wasmbed/api/protocol"
	"github.com/wasmbed/wasmbed/internal/wasmhost"
	fixtures "github.com/wasmbed/wasmbed/testdata/wasm"
)

// TestTimeBudget: a call is bounded on the board's clock, sleep_ms included, and fails as
// a device fails it; a sleep that would end past the budget fails the call at once.
func TestTimeBudget(t *testing.T) {
	tests := []struct {
		name      string
		wasm      []byte
		budget    time.Duration // 0: the devices' default
		setup     bool          // the call under test is setup, else one loop
		wantErr   bool
		wantSlept time.Duration // on the simulated clock
	}{
		// 1 s, 1 s, then a third second that would end at 3 s: refused at 2 s.
		{name: "three 1 s sleeps in one loop", wasm: fixtures.Sleeper, wantErr: true, wantSlept: 2 * time.Second},
		{name: "a 3.5 s budget lets them end", wasm: fixtures.Sleeper, budget: 3500 * time.Millisecond, wantSlept: 3 * time.Second},
		// the probe's setup sleeps 50 ms, then 1000 ms (5000 clamped): within 2 s...
		{name: "probe setup within the default", wasm: fixtures.Probe, setup: true, wantSlept: 1050 * time.Millisecond},
		// ...but its second sleep would end past 500 ms
		{name: "probe setup over 500 ms", wasm: fixtures.Probe, budget: 500 * time.Millisecond, setup: true, wantErr: true,
			wantSlept: 50 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := wasmhost.NewSimClock(t0)
			cfg := wasmhost.NewHostConfig()
			if tt.budget != 0 {
				cfg = cfg.WithTimeBudget(tt.budget)
			}
			board := wasmhost.NewSimBoard(wasmhost.SimBoardConfig{Clock: clock, Config: map[string]string{"k": "v"}})
			app := instantiate(t, newHost(t, cfg), tt.wasm, board)
			var err error
			if tt.setup {
				err = app.Setup(context.Background())
			} else {
				_, _, err = app.Loop(context.Background())
			}
			if slept := clock.Now().Sub(t0); slept != tt.wantSlept {
				t.Errorf("the call slept %v, want %v", slept, tt.wantSlept)
			}
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			var trap *wasmhost.TrapError
			if !errors.As(err, &trap) || trap.Reason != abi.ReasonTimeBudget || !errors.Is(err, wasmhost.ErrTimeBudget) {
				t.Fatalf("err = %v, want a TrapError %q wrapping ErrTimeBudget", err, abi.ReasonTimeBudget)
			}
			if st := app.Status(); st.State != protocol.StateFailed || st.Reason != abi.ReasonTimeBudget {
				t.Errorf("status = %+v", st)
			}
		})
	}
}

// tickingClock is a simulated clock that every reading moves forward: host calls that
// take time.
type tickingClock struct {
	*wasmhost.SimClock
	tick time.Duration
}

func (c *tickingClock) Now() time.Time {
	c.Advance(c.tick)
	return c.SimClock.Now()
}

// TestTimeBudgetOnReturn: a call that returns after its budget fails too, although each
// host call started within it (the firmware checks when the call returns as well).
func TestTimeBudgetOnReturn(t *testing.T) {
	for _, tt := range []struct {
		tick    time.Duration
		wantErr bool
	}{{10 * time.Millisecond, false}, {40 * time.Millisecond, true}} {
		t.Run(tt.tick.String(), func(t *testing.T) {
			clock := &tickingClock{SimClock: wasmhost.NewSimClock(t0)}
			board := wasmhost.NewSimBoard(wasmhost.SimBoardConfig{Clock: clock})
			app := instantiate(t, newHost(t, wasmhost.NewHostConfig().WithTimeBudget(100*time.Millisecond)), fixtures.Sensor, board)
			clock.tick = tt.tick
			_, _, err := app.Loop(context.Background())
			if got := errors.Is(err, wasmhost.ErrTimeBudget); got != tt.wantErr {
				t.Fatalf("clock readings %v apart: err = %v, want a time budget failure: %v", tt.tick, err, tt.wantErr)
			}
		})
	}
}

// TestLogRateLimit follows the log bucket of docs/abi.md: 20 lines at once, then one
// every 100 ms, and a warning line with the count of dropped lines before the next one
// that passes.
func TestLogRateLimit(t *testing.T) {
	clock := wasmhost.NewSimClock(t0)
	board := wasmhost.NewSimBoard(wasmhost.SimBoardConfig{Clock: clock})
	app := instantiate(t, newHost(t, wasmhost.NewHostConfig()), fixtures.LogFlood, board)
	lines := func() (n int, reports []string) {
		for _, l := range board.Logs() {
			if l.Level == wasmhost.LevelWarn {
				reports = append(reports, l.Message)
			} else {
				n++
			}
		}
		return n, reports
	}
	if _, _, err := app.Loop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, reports := lines(); n != abi.LogBurst || len(reports) != 0 {
		t.Fatalf("first call: %d lines, reports %q; want %d lines, no report yet", n, reports, abi.LogBurst)
	}
	clock.Advance(time.Second) // 10 tokens back
	if _, _, err := app.Loop(context.Background()); err != nil {
		t.Fatal(err)
	}
	n, reports := lines()
	if want := abi.LogBurst + 10; n != want || fmt.Sprint(reports) != "[10 lines dropped]" {
		t.Fatalf("after 1 s: %d lines, reports %q; want %d lines, [10 lines dropped]", n, reports, want)
	}
	if logs := board.Logs(); logs[abi.LogBurst].Message != "10 lines dropped" {
		t.Errorf("the report is line %d, want it first in the second call", abi.LogBurst)
	}
}

// lateClock is a simulated clock whose sleeps end late, as a loaded machine's do.
type lateClock struct {
	*wasmhost.SimClock
	late time.Duration
}

func (c *lateClock) Sleep(ctx context.Context, d time.Duration) error {
	return c.SimClock.Sleep(ctx, d+c.late)
}

// TestLateWakeUpIsNotCounted: a sleep counts as long as it asked for, so a host that
// wakes the app 60 ms late does not fail it earlier than a device would.
func TestLateWakeUpIsNotCounted(t *testing.T) {
	clock := &lateClock{SimClock: wasmhost.NewSimClock(t0), late: 60 * time.Millisecond}
	board := wasmhost.NewSimBoard(wasmhost.SimBoardConfig{Clock: clock})
	app := instantiate(t, newHost(t, wasmhost.NewHostConfig()), fixtures.Sleeper, board)
	_, _, err := app.Loop(context.Background())
	if !errors.Is(err, wasmhost.ErrTimeBudget) {
		t.Fatalf("err = %v, want ErrTimeBudget", err)
	}
	if slept := clock.Now().Sub(t0); slept != 2*(time.Second+clock.late) {
		t.Errorf("slept %v: want two 1 s sleeps, each 60 ms late, before the third is refused", slept)
	}
}
