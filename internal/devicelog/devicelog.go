// Package devicelog decodes a device's console log as the gateway and the console
// serve it (GET .../devices/{namespace}/{name}/log), picks the lines a follower has not
// printed yet, and formats lines for a terminal without letting a device drive it.
package devicelog

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// MaxBody bounds the answer a reader accepts.
const MaxBody = 4 << 20

// Line is one line a device sent.
type Line struct {
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	App     string    `json:"app,omitempty"`
	Message string    `json:"message"`
}

// Log is the answer of the gateway's and the console's log endpoints: the device's
// kept lines, oldest first.
type Log struct {
	Device    string `json:"device"`
	Gateway   string `json:"gateway,omitempty"`
	Connected bool   `json:"connected"`
	Lines     []Line `json:"lines"`
	// Note explains an empty log (console only).
	Note string `json:"note,omitempty"`
}

// Decode decodes a log answer, refusing one larger than MaxBody or malformed.
func Decode(body []byte) (*Log, error) {
	if len(body) > MaxBody {
		return nil, fmt.Errorf("log answer larger than %d bytes", MaxBody)
	}
	var l Log
	if err := json.Unmarshal(body, &l); err != nil {
		return nil, fmt.Errorf("malformed log answer: %w", err)
	}
	return &l, nil
}

// Cursor remembers the newest line printed, so that the next poll of a log yields
// only the lines after it. Lines come oldest first; several may share a timestamp.
// The zero Cursor yields every line.
type Cursor struct {
	started bool      // false: every line is new
	last    time.Time // the newest timestamp printed
	atLast  int       // how many lines stamped last were printed
}

// Since returns a Cursor that yields only the lines stamped t or later.
func Since(t time.Time) *Cursor { return &Cursor{started: true, last: t} }

// Next returns the lines of a poll not yielded before, and moves past them.
func (c *Cursor) Next(lines []Line) []Line {
	var out []Line
	seen := 0 // lines of this poll stamped c.last
	for _, l := range lines {
		if c.started {
			if l.Time.Before(c.last) {
				continue
			}
			if l.Time.Equal(c.last) {
				if seen++; seen <= c.atLast {
					continue
				}
			}
		}
		out = append(out, l)
	}
	for _, l := range out {
		if !c.started || l.Time.After(c.last) {
			c.started, c.last, c.atLast = true, l.Time, 0
		}
		if l.Time.Equal(c.last) {
			c.atLast++
		}
	}
	return out
}

// Format is a line for a terminal: time (UTC, RFC 3339), level, application and
// message, with control characters escaped.
func Format(l Line) string {
	var b strings.Builder
	b.WriteString(l.Time.UTC().Format(time.RFC3339Nano))
	b.WriteString(" ")
	b.WriteString(Sanitize(l.Level))
	if l.App != "" {
		b.WriteString(" ")
		b.WriteString(Sanitize(l.App))
	}
	b.WriteString(": ")
	b.WriteString(Sanitize(l.Message))
	return b.String()
}

// Sanitize escapes control characters (all but tab) and invalid UTF-8 as \uXXXX, so
// that what a device sends cannot move the cursor, recolour or retitle a terminal, or
// forge a line.
func Sanitize(s string) string {
	bad := func(r rune) bool { return (unicode.IsControl(r) && r != '\t') || r == unicode.ReplacementChar }
	if strings.IndexFunc(s, bad) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if bad(r) {
			fmt.Fprintf(&b, "\\u%04x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
