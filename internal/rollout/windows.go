package rollout

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	// The operator's image has no zoneinfo: the time zones travel in the binary, so the
	// operator and the apiserver's CEL agree on which names exist.
	_ "time/tzdata"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
)

// Windows are recurring maintenance windows in one time zone.
type Windows struct {
	loc     *time.Location
	windows []window
}

type window struct {
	days     [7]bool // by time.Weekday
	hour     int
	minute   int
	duration time.Duration
}

var weekdays = map[v1.Weekday]time.Weekday{
	"Sun": time.Sunday, "Mon": time.Monday, "Tue": time.Tuesday, "Wed": time.Wednesday,
	"Thu": time.Thursday, "Fri": time.Friday, "Sat": time.Saturday,
}

// ParseWindows checks spec.rollout.maintenance; nil stands for none (always open).
func ParseWindows(m *v1.MaintenanceWindows) (*Windows, error) {
	if m == nil {
		return nil, nil
	}
	tz := m.TimeZone
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil || strings.EqualFold(tz, "local") {
		return nil, fmt.Errorf("spec.rollout.maintenance.timeZone %q is not an IANA time zone", tz)
	}
	if len(m.Windows) == 0 {
		return nil, fmt.Errorf("spec.rollout.maintenance.windows lists no window")
	}
	w := &Windows{loc: loc}
	for i, mw := range m.Windows {
		var x window
		hh, mm, ok := strings.Cut(mw.Start, ":")
		h, herr := strconv.Atoi(hh)
		mi, merr := strconv.Atoi(mm)
		if !ok || herr != nil || merr != nil || h < 0 || h > 23 || mi < 0 || mi > 59 {
			return nil, fmt.Errorf("spec.rollout.maintenance.windows[%d].start %q is not HH:MM", i, mw.Start)
		}
		if mw.Duration.Duration < time.Minute || mw.Duration.Duration > 7*24*time.Hour {
			return nil, fmt.Errorf("spec.rollout.maintenance.windows[%d].duration %s is not between 1m and 168h", i, mw.Duration.Duration)
		}
		x.hour, x.minute, x.duration = h, mi, mw.Duration.Duration
		if len(mw.Days) == 0 {
			x.days = [7]bool{true, true, true, true, true, true, true}
		}
		for _, d := range mw.Days {
			wd, ok := weekdays[d]
			if !ok {
				return nil, fmt.Errorf("spec.rollout.maintenance.windows[%d].days: %q is not Mon..Sun", i, d)
			}
			x.days[wd] = true
		}
		w.windows = append(w.windows, x)
	}
	return w, nil
}

// openings calls f with each opening (start, end) of every window whose start lies in
// the local days from..to, in order of day.
func (w *Windows) openings(from, to time.Time, f func(start, end time.Time) bool) {
	day := time.Date(from.In(w.loc).Year(), from.In(w.loc).Month(), from.In(w.loc).Day(), 0, 0, 0, 0, w.loc)
	for ; !day.After(to); day = day.AddDate(0, 0, 1) {
		for _, x := range w.windows {
			if !x.days[day.Weekday()] {
				continue
			}
			start := time.Date(day.Year(), day.Month(), day.Day(), x.hour, x.minute, 0, 0, w.loc)
			if !f(start, start.Add(x.duration)) {
				return
			}
		}
	}
}

// openUntil reports whether a window is open at t and, if so, when the last open one
// closes (windows that overlap count as one).
func (w *Windows) openUntil(t time.Time) (bool, time.Time) {
	var until time.Time
	w.openings(t.Add(-8*24*time.Hour), t, func(start, end time.Time) bool {
		if !start.After(t) && t.Before(end) && end.After(until) {
			until = end
		}
		return true
	})
	return !until.IsZero(), until
}

// Open reports whether a window is open at t.
func (w *Windows) Open(t time.Time) bool {
	if w == nil {
		return true
	}
	open, _ := w.openUntil(t)
	return open
}

// NextOpen returns when a window next opens after t (t itself when one is open); false
// when none opens within eight days, which valid windows always do.
func (w *Windows) NextOpen(t time.Time) (time.Time, bool) {
	if w == nil || w.Open(t) {
		return t, true
	}
	var next time.Time
	w.openings(t, t.Add(8*24*time.Hour), func(start, _ time.Time) bool {
		if start.After(t) && (next.IsZero() || start.Before(next)) {
			next = start
		}
		return true
	})
	return next, !next.IsZero()
}
