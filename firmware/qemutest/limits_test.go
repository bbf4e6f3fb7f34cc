package qemutest

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/api/protocol"
	"github.com/wasmbed/wasmbed/builder"
	"github.com/wasmbed/wasmbed/firmware/internal/fwbuild"
)

// The wall-clock limits of docs/abi.md ("Limits") on the emulated MPS2 (mps2-an386):
// the boards' numbers, in firmware/app/wasmbed_app.h.
const (
	callBudget = 2 * time.Second // WB_CALL_TIME_MS
	logBurst   = 20              // WB_LOG_BURST
	logPerSec  = 10              // 1000 / WB_LOG_PERIOD_MS
	// hbInterval and hbTimeout are what board.hello announces.
	hbInterval = time.Second
	hbTimeout  = 5 * time.Second
	// hbSlack is how much later than the interval after the one before a heartbeat may be
	// sent, on the device's clock (its uptime field): a few polls.
	hbSlack = 50 * time.Millisecond
)

// dropReport is the warning an app's log line reports its drops with.
var dropReport = regexp.MustCompile(`^\d+ (lines|records) dropped$`)

// watModule builds firmware/tests/wat/<name>.wat with the project's builder.
func watModule(ctx context.Context, t *testing.T, name string) []byte {
	t.Helper()
	dir, err := fwbuild.Dir()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(dir, "tests", "wat", name+".wat"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := builder.Build(ctx, builder.Request{Language: builder.WAT, Source: src})
	if err != nil {
		t.Fatalf("build %s.wat (see hack/deps.sh): %v", name, err)
	}
	return res.Module
}

// heartbeats checks every heartbeat against the one before: sent on time by the device's
// own clock (its uptime field; QEMU's clock may lag this machine's when it is busy, so
// the gateway's arrival times only have to stay within the heartbeat timeout), with the
// next sequence number.
type heartbeats struct {
	t       *testing.T
	arrived time.Time
	uptime  uint64
	seq     uint32
	n       int
}

func (h *heartbeats) see(hb *protocol.Heartbeat) {
	h.t.Helper()
	now := time.Now()
	if h.n > 0 {
		if gap := time.Duration(hb.Uptime-h.uptime) * time.Millisecond; gap > hbInterval+hbSlack {
			h.t.Errorf("heartbeat %d sent %v after the one before (interval %v)", hb.Seq, gap, hbInterval)
		}
		if gap := now.Sub(h.arrived); gap >= hbTimeout {
			h.t.Errorf("heartbeat %d arrived %v after the one before: the session timed out", hb.Seq, gap.Round(time.Millisecond))
		}
		if hb.Seq != h.seq+1 {
			h.t.Errorf("heartbeat seq %d after %d", hb.Seq, h.seq)
		}
	}
	h.arrived, h.uptime, h.seq = now, hb.Uptime, hb.Seq
	h.n++
}

// until reads the board's messages, passing heartbeats to hb, until done returns true for
// one; it fails on a read error, an Error from the board or the deadline.
func (b *board) until(ctx context.Context, hb *heartbeats, what string, done func(protocol.Message) bool) protocol.Message {
	b.t.Helper()
	for {
		select {
		case m := <-b.msgs:
			switch m := m.(type) {
			case *protocol.Heartbeat:
				hb.see(m)
			case *protocol.Error:
				b.t.Fatalf("waiting for %s: board sent error %v", what, m)
			}
			if done(m) {
				return m
			}
		case err := <-b.errs:
			b.t.Fatalf("waiting for %s: read from the board: %v (qemu: %s)", what, err, b.stderr.String())
		case <-ctx.Done():
			b.t.Fatalf("waiting for %s: %v", what, ctx.Err())
		}
	}
}

func statusOf(app string, state protocol.AppState) func(protocol.Message) bool {
	return func(m protocol.Message) bool {
		s, ok := m.(*protocol.AppStatus)
		return ok && s.App == app && s.State == state
	}
}

// TestSleepingApp runs an app whose loop sleeps 100 ms at a time and never returns. Each
// call must end at its 2 s budget with "time budget exceeded" while sleep_ms serves the
// session: heartbeats every second throughout, and a Stop that ends the call at once.
func TestSleepingApp(t *testing.T) {
	requireTools(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sleepy := watModule(ctx, t, "app_sleepy")
	b := startQEMU(ctx, t, "mps2-an386", fwbuild.Image(t, "mps2-an386"))
	_, maxFrame := b.hello()
	b.deploy(ctx, "sleepy", sleepy, maxFrame)

	hb := &heartbeats{t: t}
	for run := 0; run < 3; run++ { // 6 s inside loop calls: six heartbeat intervals
		b.send(&protocol.Start{App: "sleepy"})
		started := time.Now()
		b.until(ctx, hb, "sleepy Running", statusOf("sleepy", protocol.StateRunning))
		st := b.until(ctx, hb, "sleepy Failed", statusOf("sleepy", protocol.StateFailed)).(*protocol.AppStatus)
		took := time.Since(started)
		t.Logf("run %d: %q after %v", run, st.Error, took.Round(time.Millisecond))
		if st.Error != "time budget exceeded" {
			t.Fatalf("sleepy failed with %q, want %q", st.Error, "time budget exceeded")
		}
		// The call ends at its budget: not before (less than 2 s of sleeps), and not much
		// later (the generous margin is for QEMU's clock, which lags on a busy machine).
		if took < callBudget-100*time.Millisecond || took > 2*callBudget+time.Second {
			t.Errorf("the call ended %v after Start, want about %v", took.Round(time.Millisecond), callBudget)
		}
	}
	if hb.n < 5 {
		t.Errorf("%d heartbeats in three 2 s calls, want one a second", hb.n)
	}

	// A Stop while the app sleeps ends its call at once: Stopped, no failure.
	b.send(&protocol.Start{App: "sleepy"})
	b.until(ctx, hb, "sleepy Running", statusOf("sleepy", protocol.StateRunning))
	time.Sleep(300 * time.Millisecond) // well inside the first call
	b.send(&protocol.Stop{App: "sleepy"})
	sent := time.Now()
	st := b.until(ctx, hb, "sleepy Stopped", func(m protocol.Message) bool {
		s, ok := m.(*protocol.AppStatus)
		if ok && s.App == "sleepy" && s.State == protocol.StateFailed {
			t.Fatalf("sleepy failed (%q) instead of stopping", s.Error)
		}
		return ok && s.App == "sleepy" && s.State == protocol.StateStopped
	}).(*protocol.AppStatus)
	if took := time.Since(sent); took > callBudget/2 {
		t.Errorf("Stopped %v after the Stop: the call did not end at once", took.Round(time.Millisecond))
	}
	t.Logf("stopped while asleep: %d heartbeats on time, %d loops, error %q", hb.n, st.Loops, st.Error)
}

// TestLogFlood runs an app that logs 100 lines and publishes 20 records in every loop
// call and asks to be called again at once. The token buckets let 20 lines and 10 records
// through at first, then 10 of each a second; the drops are reported as the app's warning
// lines; the session keeps its heartbeats and answers a Stop.
func TestLogFlood(t *testing.T) {
	requireTools(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	flood := watModule(ctx, t, "app_flood")
	b := startQEMU(ctx, t, "mps2-an386", fwbuild.Image(t, "mps2-an386"))
	_, maxFrame := b.hello()
	b.deploy(ctx, "flood", flood, maxFrame)

	hb := &heartbeats{t: t}
	b.send(&protocol.Start{App: "flood"})
	b.until(ctx, hb, "flood Running", statusOf("flood", protocol.StateRunning))
	// Records carry the device's time: the rate limits are checked on its clock.
	var first, last uint64
	lines, records, reports := 0, 0, map[string]int{}
	b.until(ctx, hb, "4 s of flooding", func(m protocol.Message) bool {
		switch m := m.(type) {
		case *protocol.Log:
			switch {
			case m.App != "flood" || nativeRe.MatchString(m.Message):
			case m.Level == protocol.LevelWarn && dropReport.MatchString(m.Message):
				reports[strings.Fields(m.Message)[1]]++
			default:
				lines++
			}
		case *protocol.Telemetry:
			if records == 0 {
				first = m.Time
			}
			last = m.Time
			records++
		case *protocol.AppStatus:
			if m.App == "flood" && m.State != protocol.StateRunning {
				t.Fatalf("flood %v: %s", m.State, m.Error)
			}
		}
		return records > 0 && last-first >= 4000
	})
	secs := float64(last-first) / 1000
	t.Logf("%.1f s of the device's clock: %d lines, %d records, reports %v, %d heartbeats", secs, lines, records, reports, hb.n)
	if max := logBurst + int(logPerSec*(secs+1)); lines < logBurst || lines > max {
		t.Errorf("%d lines went out in %.1f s, want %d to %d", lines, secs, logBurst, max)
	}
	if reports["lines"] == 0 || reports["records"] == 0 {
		t.Errorf("drop reports %v, want both kinds", reports)
	}
	if hb.n < 3 {
		t.Errorf("%d heartbeats in %.1f s", hb.n, secs)
	}

	b.send(&protocol.Stop{App: "flood"})
	sent := time.Now()
	b.until(ctx, hb, "flood Stopped", statusOf("flood", protocol.StateStopped))
	if took := time.Since(sent); took > time.Second {
		t.Errorf("Stop answered after %v while the app floods", took.Round(time.Millisecond))
	}
}
