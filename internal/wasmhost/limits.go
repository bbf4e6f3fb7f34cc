package wasmhost

import (
	"fmt"
	"time"

	"github.com/wasmbed/wasmbed/api/abi"
)

// bucket is a token bucket kept in milliseconds of credit, as the firmware's wb_bucket
// (firmware/app/wasmbed_app.c), so that both hosts let the same lines through on the same
// clock: full it holds burst*period, time adds credit one for one, a token costs period.
type bucket struct {
	credit, period, full time.Duration
	at                   time.Time
}

func newBucket(now time.Time, periodMs, burst int) bucket {
	period := time.Duration(periodMs) * time.Millisecond
	return bucket{credit: period * time.Duration(burst), period: period, full: period * time.Duration(burst), at: now}
}

// ready refills for the time since the last look and reports whether a token is left,
// without taking it. A clock that went back adds nothing.
func (b *bucket) ready(now time.Time) bool {
	if d := now.Sub(b.at); d > 0 {
		b.credit = min(b.full, b.credit+d)
	}
	b.at = now
	return b.credit >= b.period
}

// take takes a token if there is one.
func (b *bucket) take(now time.Time) bool {
	if !b.ready(now) {
		return false
	}
	b.credit -= b.period
	return true
}

// limits are an application's rate limits and what they dropped since the last report.
type limits struct {
	logs, publishes bucket
	lines, records  uint32
}

func newLimits(now time.Time) limits {
	return limits{
		logs:      newBucket(now, abi.LogPeriodMs, abi.LogBurst),
		publishes: newBucket(now, abi.PublishPeriodMs, abi.PublishBurst),
	}
}

func count(n *uint32) {
	if *n != ^uint32(0) {
		*n++
	}
}

// reportDrops logs what the buckets dropped, as warnings of the application, once a log
// token is free again; the report takes none (there is at most one per accepted line or
// call, so it stays within the rate), as on a device.
func (a *App) reportDrops(now time.Time) {
	l := &a.limits
	if (l.lines == 0 && l.records == 0) || !l.logs.ready(now) {
		return
	}
	if l.lines > 0 {
		a.board.Log(LevelWarn, fmt.Sprintf("%d lines dropped", l.lines))
		l.lines = 0
	}
	if l.records > 0 {
		a.board.Log(LevelWarn, fmt.Sprintf("%d records dropped", l.records))
		l.records = 0
	}
}

// overTime reports whether the call in progress, plus d more, would last longer than its
// time budget. A sleep counts as long as it asked for (overslept is the difference): a
// device wakes within a millisecond, a virtual device on a loaded machine can wake tens
// of milliseconds late, which is not the app's doing. Time counts in whole milliseconds,
// as a device's clock does: sleep_ms(1000) twice fits a 2 s budget on both hosts.
func (a *App) overTime(now time.Time, d time.Duration) bool {
	elapsed := (now.Sub(a.callStart) - a.overslept).Milliseconds()
	return elapsed+d.Milliseconds() > a.host.cfg.timeBudget.Milliseconds()
}

// checkTime traps with ErrTimeBudget when the call in progress is past its time budget;
// every host function starts with it, as on a device.
func (a *App) checkTime(now time.Time) {
	if a.overTime(now, 0) {
		panic(timeTrap)
	}
}

var timeTrap = &hostTrap{reason: abi.ReasonTimeBudget, cause: ErrTimeBudget}
