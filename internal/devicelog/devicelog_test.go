package devicelog_test

import (
	"strings"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/internal/devicelog"
)

func TestCursorYieldsEachLineOnce(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int, msg string) devicelog.Line {
		return devicelog.Line{Time: t0.Add(time.Duration(s) * time.Second), Level: "info", Message: msg}
	}
	for _, tc := range []struct {
		name   string
		cursor *devicelog.Cursor
		polls  [][]devicelog.Line
		want   []string
	}{
		{"follow", &devicelog.Cursor{}, [][]devicelog.Line{
			{at(1, "a"), at(2, "b"), at(2, "c")},
			{at(1, "a"), at(2, "b"), at(2, "c")},             // nothing new
			{at(2, "b"), at(2, "c"), at(2, "d"), at(3, "e")}, // a third line in the same second
			{at(3, "e"), at(3, "f"), at(3, "g")},             // the ring dropped older lines
			{at(0, "clock went back"), at(3, "e"), at(3, "f"), at(3, "g")},
			{},
			{at(3, "e"), at(3, "f"), at(3, "g"), at(3, "h"), at(4, "i")},
		}, []string{"a,b,c", "", "d,e", "f,g", "", "", "h,i"}},
		{"since", devicelog.Since(t0.Add(2 * time.Second)), [][]devicelog.Line{
			{at(1, "a"), at(2, "b"), at(3, "c")},
			{at(2, "b"), at(3, "c"), at(3, "d")},
		}, []string{"b,c", "d"}},
	} {
		for i, poll := range tc.polls {
			var got []string
			for _, l := range tc.cursor.Next(poll) {
				got = append(got, l.Message)
			}
			if strings.Join(got, ",") != tc.want[i] {
				t.Errorf("%s, poll %d: %v, want %q", tc.name, i, got, tc.want[i])
			}
		}
	}
}

func TestFormatEscapesWhatCouldDriveATerminal(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.FixedZone("x", 3600))
	for _, tc := range []struct {
		line devicelog.Line
		want string
	}{
		{devicelog.Line{Time: t0, Level: "info", App: "blink", Message: "blink: started"}, "2026-01-01T11:00:00Z info blink: blink: started"},
		{devicelog.Line{Time: t0, Level: "warn", Message: "plain\ttext ünïcode"}, "2026-01-01T11:00:00Z warn: plain\ttext ünïcode"},
		{devicelog.Line{Time: t0, Level: "info", Message: "\x1b[2J\x1b]0;pwned\x07"}, `2026-01-01T11:00:00Z info: \u001b[2J\u001b]0;pwned\u0007`},
		{devicelog.Line{Time: t0, Level: "info\n", App: "a\rb", Message: "x\n2026-01-01T00:00:00Z info: forged"},
			`2026-01-01T11:00:00Z info\u000a a\u000db: x\u000a2026-01-01T00:00:00Z info: forged`},
		{devicelog.Line{Time: t0, Level: "info", Message: "c1 \u009b31m bad \xff"}, `2026-01-01T11:00:00Z info: c1 \u009b31m bad \ufffd`},
	} {
		if got := devicelog.Format(tc.line); got != tc.want {
			t.Errorf("Format = %q, want %q", got, tc.want)
		}
	}
}

func TestDecodeRefusesWhatIsNotALog(t *testing.T) {
	for _, tc := range []struct {
		body string
		err  string
	}{
		{`{"device":"default/sim-0","connected":true,"lines":[{"time":"2026-01-01T00:00:00Z","level":"info","message":"m"}]}`, ""},
		{`<html>bad gateway</html>`, "malformed log answer"},
		{`{"lines":[{"time":"yesterday"}]}`, "malformed log answer"},
		{`{"lines":` + strings.Repeat(" ", devicelog.MaxBody) + `[]}`, "larger than"},
	} {
		_, err := devicelog.Decode([]byte(tc.body))
		if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("Decode(%.40q): %v, want %q", tc.body, err, tc.err)
		}
	}
}

// FuzzDecode feeds arbitrary answers to the decoder: no panic, and no formatted line
// holds a control character other than a tab.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"device":"default/sim-0","connected":true,"lines":[{"time":"2026-01-01T00:00:00Z","level":"info","app":"blink","message":"blink: started"}]}`))
	f.Add([]byte(`{"lines":[{"message":"\u001b[31m","app":"\u0085"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := devicelog.Decode(b)
		if err != nil {
			return
		}
		for _, line := range l.Lines {
			for _, r := range devicelog.Format(line) {
				if r != '\t' && (r < 0x20 || (r >= 0x7f && r < 0xa0)) {
					t.Fatalf("control character %U formatted from %q", r, b)
				}
			}
		}
	})
}
