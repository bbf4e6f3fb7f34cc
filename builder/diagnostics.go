package builder

import (
	"bufio"
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
)

// gccRE matches clang's and wabt's "file:line:col: severity: message".
var gccRE = regexp.MustCompile(`^([^\s:][^:]*):(\d+):(?:(\d+):)? (fatal error|error|warning|note): (.*)$`)

// lldRE matches wasm-ld's errors, which have no line: "wasm-ld-14: error: main.o: undefined symbol: foo".
var lldRE = regexp.MustCompile(`^\S*(?:wasm-ld|rust-lld)\S*: (error|warning): (?:[^\s:]+\.o: )?(.*)$`)

// parseGCC parses clang, wasm-ld, wabt and binaryen output.
func parseGCC(out []byte, src string) ([]Diagnostic, []byte) {
	var diags []Diagnostic
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), maxCapture)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if m := gccRE.FindStringSubmatch(line); m != nil {
			d := Diagnostic{File: cleanFile(m[1]), Severity: severity(m[4]), Message: m[5]}
			d.Line, _ = strconv.Atoi(m[2])
			d.Column, _ = strconv.Atoi(m[3])
			diags = append(diags, d)
			continue
		}
		if m := lldRE.FindStringSubmatch(line); m != nil {
			diags = append(diags, Diagnostic{File: src, Severity: severity(m[1]), Message: m[2]})
		}
	}
	return diags, out
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

// cleanFile strips the "./" clang puts before files found next to the source.
func cleanFile(f string) string {
	return strings.TrimPrefix(f, "./")
}

var (
	ascHeadRE = regexp.MustCompile(`^(ERROR|WARNING|INFO|PEDANTIC)(?: [A-Z]+\d+)?: (.*)$`)
	ascLocRE  = regexp.MustCompile(`in (\S+)\((\d+),(\d+)\)\s*$`)
)

// parseASC parses asc output: a "ERROR TS2304: message" header, a source excerpt,
// then "└─ in main.ts(4,13)".
func parseASC(out []byte, src string) ([]Diagnostic, []byte) {
	var diags []Diagnostic
	var pending *Diagnostic
	flush := func() {
		if pending != nil {
			diags = append(diags, *pending)
			pending = nil
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), maxCapture)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if m := ascHeadRE.FindStringSubmatch(line); m != nil {
			flush()
			sev := severity(m[1])
			pending = &Diagnostic{File: src, Severity: sev, Message: m[2]}
			continue
		}
		if pending == nil {
			continue
		}
		if m := ascLocRE.FindStringSubmatch(line); m != nil {
			pending.File = m[1]
			pending.Line, _ = strconv.Atoi(m[2])
			pending.Column, _ = strconv.Atoi(m[3])
			flush()
		}
	}
	flush()
	return diags, out
}

// rustcMessage is the part of rustc's --error-format=json the builder reads.
type rustcMessage struct {
	Message  string `json:"message"`
	Level    string `json:"level"`
	Rendered string `json:"rendered"`
	Spans    []struct {
		FileName    string `json:"file_name"`
		LineStart   int    `json:"line_start"`
		ColumnStart int    `json:"column_start"`
		IsPrimary   bool   `json:"is_primary"`
	} `json:"spans"`
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
			text.Write(line)
			text.WriteByte('\n')
			continue
		}
		text.WriteString(m.Rendered)
		if strings.HasPrefix(m.Message, "aborting due to") || m.Level == "failure-note" {
			continue
		}
		if strings.Contains(m.Level, "internal compiler error") {
			// Keep it out of the diagnostics: crashed() sees it in the raw output.
			continue
		}
		d := Diagnostic{File: src, Severity: severity(m.Level), Message: m.Message}
		for _, s := range m.Spans {
			if s.IsPrimary {
				d.File, d.Line, d.Column = s.FileName, s.LineStart, s.ColumnStart
				break
			}
		}
		diags = append(diags, d)
	}
	return diags, text.Bytes()
}
