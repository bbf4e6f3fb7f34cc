package builder

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Every parser returns redacted diagnostics and log text (redact.go): the raw
// output stays in the builder.

var (
	// gccRE matches clang's and wabt's "file:line:col: severity: message".
	gccRE = regexp.MustCompile(`^([^\s:][^:]*):(\d+):(?:(\d+):)? (fatal error|error|warning|note): (.*)$`)
	// lldRE matches wasm-ld's errors, which have no line: "wasm-ld-14: error: main.o: undefined symbol: foo".
	lldRE = regexp.MustCompile(`^\S*(?:wasm-ld|rust-lld)\S*: (error|warning): (?:[^\s:]+\.o: )?(.*)$`)
	// gccEndRE matches the lines that end a diagnostic's excerpt without starting another.
	gccEndRE = regexp.MustCompile(`^(In file included from |\d+ (errors?|warnings?)( and \d+ warnings?)? generated\.)`)
)

// parseGCC parses clang, wasm-ld, wabt and binaryen output. The excerpt lines that
// follow a diagnostic located outside the build directory are dropped.
func parseGCC(out []byte, src string) ([]Diagnostic, []byte) {
	var diags []Diagnostic
	var text bytes.Buffer
	hidden := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), maxCapture)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if m := gccRE.FindStringSubmatch(line); m != nil {
			d := Diagnostic{File: localName(m[1]), Severity: severity(m[4]), Message: redactPaths(m[5])}
			if hidden = !inBuildDir(m[1]); hidden {
				d = redactedDiagnostic(d.Severity)
				fmt.Fprintf(&text, "%s: %s: %s\n", d.File, m[4], d.Message)
			} else {
				d.Line, _ = strconv.Atoi(m[2])
				d.Column, _ = strconv.Atoi(m[3])
				text.WriteString(redactPaths(line) + "\n")
			}
			diags = append(diags, d)
			continue
		}
		if m := lldRE.FindStringSubmatch(line); m != nil {
			hidden = false
			diags = append(diags, Diagnostic{File: src, Severity: severity(m[1]), Message: redactPaths(m[2])})
		} else if gccEndRE.MatchString(line) {
			hidden = false
		}
		if !hidden {
			text.WriteString(redactPaths(line) + "\n")
		}
	}
	return diags, text.Bytes()
}

// redactedDiagnostic stands for a diagnostic located outside the build directory.
func redactedDiagnostic(sev Severity) Diagnostic {
	return Diagnostic{File: redactedPath, Severity: sev, Message: redactedMessage}
}

func severity(s string) Severity {
	switch strings.ToLower(s) {
	case "error", "fatal error":
		return SeverityError
	case "warning", "pedantic":
		return SeverityWarning
	}
	return SeverityNote
}

var (
	ascHeadRE = regexp.MustCompile(`^(ERROR|WARNING|INFO|PEDANTIC)(?: [A-Z]+\d+)?: (.*)$`)
	ascLocRE  = regexp.MustCompile(`in (\S+)\((\d+),(\d+)\)\s*$`)
)

// parseASC parses asc output: a "ERROR TS2304: message" header, a source excerpt,
// then "└─ in main.ts(4,13)". A diagnostic is held until its location is known, so
// that the excerpt of a file outside the build directory can be dropped.
func parseASC(out []byte, src string) ([]Diagnostic, []byte) {
	var diags []Diagnostic
	var text bytes.Buffer
	var pending *Diagnostic
	var block []string
	flush := func() {
		if pending != nil {
			diags = append(diags, *pending)
			for _, l := range block {
				text.WriteString(redactPaths(l) + "\n")
			}
		}
		pending, block = nil, nil
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), maxCapture)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if m := ascHeadRE.FindStringSubmatch(line); m != nil {
			flush()
			pending = &Diagnostic{File: src, Severity: severity(m[1]), Message: redactPaths(m[2])}
			block = []string{line}
			continue
		}
		if pending == nil {
			text.WriteString(redactPaths(line) + "\n")
			continue
		}
		block = append(block, line)
		m := ascLocRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if !inBuildDir(m[1]) {
			d := redactedDiagnostic(pending.Severity)
			pending = &d
			block = []string{fmt.Sprintf("%s: %s: %s", d.File, strings.ToUpper(string(d.Severity)), d.Message)}
		} else {
			pending.File = localName(m[1])
			pending.Line, _ = strconv.Atoi(m[2])
			pending.Column, _ = strconv.Atoi(m[3])
		}
		flush()
	}
	flush()
	return diags, text.Bytes()
}

// rustcMessage is the part of rustc's --error-format=json the builder reads.
type rustcMessage struct {
	Message  string         `json:"message"`
	Level    string         `json:"level"`
	Rendered string         `json:"rendered"`
	Spans    []rustcSpan    `json:"spans"`
	Children []rustcMessage `json:"children"`
}

type rustcSpan struct {
	FileName    string `json:"file_name"`
	LineStart   int    `json:"line_start"`
	ColumnStart int    `json:"column_start"`
	IsPrimary   bool   `json:"is_primary"`
}

// outside reports whether m or one of its notes points into a file outside the
// build directory.
func (m *rustcMessage) outside() bool {
	for _, s := range m.Spans {
		if !inBuildDir(s.FileName) {
			return true
		}
	}
	for i := range m.Children {
		if m.Children[i].outside() {
			return true
		}
	}
	return false
}

// parseRustc parses rustc's JSON diagnostics; the log gets their rendered text.
func parseRustc(out []byte, src string) ([]Diagnostic, []byte) {
	var diags []Diagnostic
	var text bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), maxCapture)
	for sc.Scan() {
		line := sc.Bytes()
		var m rustcMessage
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &m) != nil {
			text.WriteString(redactPaths(string(line)) + "\n")
			continue
		}
		// An internal compiler error stays out of the diagnostics: crashed() sees it
		// in the raw output.
		summary := strings.HasPrefix(m.Message, "aborting due to") || m.Level == "failure-note" ||
			strings.Contains(m.Level, "internal compiler error")
		if m.outside() {
			d := redactedDiagnostic(severity(m.Level))
			fmt.Fprintf(&text, "%s: %s: %s\n", m.Level, d.File, d.Message)
			if !summary {
				diags = append(diags, d)
			}
			continue
		}
		for _, l := range strings.SplitAfter(m.Rendered, "\n") {
			text.WriteString(redactPaths(l))
		}
		if summary {
			continue
		}
		d := Diagnostic{File: src, Severity: severity(m.Level), Message: redactPaths(m.Message)}
		for _, s := range m.Spans {
			if s.IsPrimary {
				d.File, d.Line, d.Column = localName(s.FileName), s.LineStart, s.ColumnStart
				break
			}
		}
		diags = append(diags, d)
	}
	return diags, text.Bytes()
}
