package logging_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"k8s.io/klog/v2"

	"github.com/wasmbed/wasmbed/internal/logging"
)

func TestLevelSet(t *testing.T) {
	cases := []struct {
		in      string
		want    slog.Level
		verbose int
		err     string
	}{
		{in: "info", want: slog.LevelInfo},
		{in: "DEBUG", want: slog.LevelDebug, verbose: 4},
		{in: "warn", want: slog.LevelWarn},
		{in: "error", want: slog.LevelError},
		{in: "0", want: slog.LevelInfo},
		{in: "2", want: slog.Level(-2), verbose: 2},
		{in: "-1", err: "between 0 and 10"},
		{in: "11", err: "between 0 and 10"},
		{in: "loud", err: `log level "loud"`},
		{in: "", err: "want debug, info"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			var l logging.Level
			err := l.Set(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Set(%q) = %v, want an error containing %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.Level() != tc.want || l.Verbosity() != tc.verbose {
				t.Errorf("Set(%q): level %v verbosity %d, want %v and %d", tc.in, l.Level(), l.Verbosity(), tc.want, tc.verbose)
			}
		})
	}
}

// lines decodes the JSON log lines in b.
func lines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %q", l)
		}
		out = append(out, m)
	}
	return out
}

func TestKlogGoesToTheLogger(t *testing.T) {
	cases := []struct {
		level string
		want  []string // messages that come out
	}{
		{"info", []string{"plain"}},
		{"2", []string{"plain", "v2"}},
		{"error", nil},
	}
	for _, tc := range cases {
		t.Run(tc.level, func(t *testing.T) {
			var l logging.Level
			if err := l.Set(tc.level); err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			logging.New(&buf, &l)
			klog.InfoS("plain", "k", "v")
			klog.V(2).InfoS("v2")
			klog.V(3).InfoS("v3")
			klog.Flush()
			var got []string
			for _, m := range lines(t, &buf) {
				got = append(got, m["msg"].(string))
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("klog lines %v, want %v", got, tc.want)
			}
		})
	}
}
