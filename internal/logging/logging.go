// Package logging builds the structured (JSON) loggers Wasmbed's commands write, at a
// level set by flag, and routes klog, which client-go and leader election log through,
// to the same logger and level.
package logging

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"

	"k8s.io/klog/v2"
)

// Level is a log level for a flag: a name (debug, info, warn, error) or a verbosity
// N ≥ 0 as in klog's -v, which also shows logr's V(1)..V(N) lines. The zero Level is info.
type Level struct {
	lv slog.Level
}

// Set parses s as a level name or a verbosity.
func (l *Level) Set(s string) error {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n > 10 {
			return fmt.Errorf("log level %d: a verbosity is between 0 and 10", n)
		}
		l.lv = slog.Level(-n)
		return nil
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(s)); err != nil {
		return fmt.Errorf("log level %q: want debug, info, warn, error or a verbosity 0-10", s)
	}
	l.lv = lv
	return nil
}

// String returns the level's name.
func (l *Level) String() string { return strings.ToLower(l.lv.String()) }

// Level returns the slog level, so a *Level is a slog.Leveler.
func (l *Level) Level() slog.Level { return l.lv }

// Verbosity is the klog -v equivalent of the level: how many V levels are shown.
func (l *Level) Verbosity() int { return max(0, -int(l.lv)) }

// New returns a JSON logger writing to w at level and routes klog to it, with klog's
// verbosity set to match, so that client-go's lines come out as the command's own.
func New(w io.Writer, level *Level) *slog.Logger {
	log := slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
	RouteKlog(log, level.Verbosity())
	return log
}

// RouteKlog sends klog's output to log and shows klog's V(1)..V(verbosity) lines.
func RouteKlog(log *slog.Logger, verbosity int) {
	klog.SetSlogLogger(log)
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("v", strconv.Itoa(verbosity)) // an integer klog accepts
}
