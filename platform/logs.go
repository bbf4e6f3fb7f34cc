package platform

import (
	"bytes"
	"io"
	"log/slog"
	"sync"
)

// prefixWriter prefixes every line with a component name, so the interleaved logs of
// `wasmbed dev` stay readable. Writers made from one Logs share a lock.
type prefixWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix []byte
}

func (p prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if _, err := p.w.Write(append(append([]byte(nil), p.prefix...), line...)); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

// Logs hands out one logger per component, all writing to w with a "name | " prefix.
type Logs struct {
	mu    sync.Mutex
	w     io.Writer
	level slog.Level
}

// NewLogs returns loggers writing to w at level.
func NewLogs(w io.Writer, level slog.Level) *Logs { return &Logs{w: w, level: level} }

// For returns the logger of one component.
func (l *Logs) For(component string) *slog.Logger {
	pad := component
	for len(pad) < 10 {
		pad += " "
	}
	return slog.New(slog.NewTextHandler(prefixWriter{mu: &l.mu, w: l.w, prefix: []byte(pad + "| ")},
		&slog.HandlerOptions{Level: l.level, ReplaceAttr: dropTime}))
}

// dropTime leaves the timestamp out: the lines are read live in a terminal.
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
