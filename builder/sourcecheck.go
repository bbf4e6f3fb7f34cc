package builder

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// checkSource refuses, before any compiler runs, a source that names a file by an
// absolute path or a path with "..": an #include, include_str!, #[path] or import
// can only reach the files of the build directory (the source and the SDK file)
// and the toolchain's own headers and libraries. The sandbox is what keeps the
// compilers from the host's files; this check says what is wrong instead of
// "file not found", without quoting anything but the user's own source position.
func checkSource(lang Language, name string, src []byte) []Diagnostic {
	switch lang {
	case C:
		return checkC(name, src)
	case Rust:
		return checkRust(name, src)
	case AssemblyScript:
		return checkAssemblyScript(name, src)
	}
	return nil
}

// pathProblem says what is wrong with a file name the source gives, or "".
func pathProblem(p string) string {
	if strings.HasPrefix(p, "/") {
		return "an absolute path"
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return "a path with '..'"
		}
	}
	return ""
}

// locator turns offsets of a source into diagnostics at line:column.
type locator struct {
	name string
	src  []byte
}

func (l locator) at(off int, format string, args ...any) Diagnostic {
	before := l.src[:min(off, len(l.src))]
	line := bytes.Count(before, []byte("\n")) + 1
	col := utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:]) + 1
	return Diagnostic{File: l.name, Line: line, Column: col, Severity: SeverityError, Message: fmt.Sprintf(format, args...)}
}

var (
	cIncludeRE = regexp.MustCompile(`(?m)^[ \t\f\v]*(?:#|%:)[ \t\f\v]*(include|include_next|import)\b[ \t\f\v]*`)
	cHeaderRE  = regexp.MustCompile(`^(?:"([^"\n]*)"|<([^>\n]*)>)`)
	// asmIncludeRE finds assembler directives that read a file, in inline assembly.
	asmIncludeRE = regexp.MustCompile(`\.(incbin|include)[ \t]+\\?"((?:[^"\\\n]|\\[^"])*)`)
)

// checkC checks #include, #include_next and #import, and the .incbin and .include
// assembler directives. An #include must name its file literally: a macro could
// expand to any path.
func checkC(name string, src []byte) []Diagnostic {
	spliced, offsets := spliceLines(src)
	text, code := stripComments(spliced, cSyntax), codeOnly(spliced, cSyntax)
	loc := locator{name, src}
	var diags []Diagnostic
	for _, m := range cIncludeRE.FindAllSubmatchIndex(code, -1) {
		directive, start := string(text[m[2]:m[3]]), m[1]
		h := cHeaderRE.FindSubmatch(text[start:])
		switch {
		case h == nil:
			diags = append(diags, loc.at(offsets[start], "#%s with a macro: name the file with \"...\" or <...>", directive))
		case pathProblem(string(h[1])+string(h[2])) != "":
			diags = append(diags, loc.at(offsets[start], "#%s of %s: only files in the build directory (%s, wasmbed.h) and the compiler's own headers can be included",
				directive, pathProblem(string(h[1])+string(h[2])), name))
		}
	}
	return append(diags, checkAsm(loc, text, offsets)...)
}

func checkAsm(loc locator, text []byte, offsets []int) []Diagnostic {
	var diags []Diagnostic
	for _, m := range asmIncludeRE.FindAllSubmatchIndex(text, -1) {
		if p := pathProblem(strings.ReplaceAll(string(text[m[4]:m[5]]), `\\`, `\`)); p != "" {
			diags = append(diags, loc.at(offsets[m[0]], ".%s of %s: only files in the build directory can be read", text[m[2]:m[3]], p))
		}
	}
	return diags
}

// spliceLines removes backslash-newlines, as C's translation phase 2 does, and
// returns the offset in src of each byte of the result.
func spliceLines(src []byte) ([]byte, []int) {
	out := make([]byte, 0, len(src))
	offsets := make([]int, 0, len(src)+1)
	for i := 0; i < len(src); i++ {
		if src[i] == '\\' && i+1 < len(src) && src[i+1] == '\n' {
			i++
			continue
		}
		if src[i] == '\\' && i+2 < len(src) && src[i+1] == '\r' && src[i+2] == '\n' {
			i += 2
			continue
		}
		out = append(out, src[i])
		offsets = append(offsets, i)
	}
	return out, append(offsets, len(src))
}

var (
	rustIncludeRE = regexp.MustCompile(`\b(include|include_str|include_bytes)[ \t\r\n]*![ \t\r\n]*[(\[{][ \t\r\n]*`)
	rustPathRE    = regexp.MustCompile(`#!?[ \t\r\n]*\[[^\]]*?\bpath[ \t\r\n]*=[ \t\r\n]*`)
)

// checkRust checks include!, include_str!, include_bytes! and #[path = "..."],
// which must name their file with a string literal.
func checkRust(name string, src []byte) []Diagnostic {
	text, code := stripComments(src, rustSyntax), codeOnly(src, rustSyntax)
	loc := locator{name, src}
	var diags []Diagnostic
	check := func(what string, m []int) {
		lit, ok := rustString(text[m[1]:])
		switch {
		case !ok:
			diags = append(diags, loc.at(m[1], "%s needs a string literal naming a file in the build directory", what))
		case pathProblem(lit) != "":
			diags = append(diags, loc.at(m[1], "%s of %s: only files in the build directory can be included", what, pathProblem(lit)))
		}
	}
	for _, m := range rustIncludeRE.FindAllSubmatchIndex(code, -1) {
		check(string(text[m[2]:m[3]])+"!", m)
	}
	for _, m := range rustPathRE.FindAllIndex(code, -1) {
		check("#[path]", m)
	}
	return append(diags, checkAsm(loc, text, identity(len(src)))...)
}

func identity(n int) []int {
	offsets := make([]int, n+1)
	for i := range offsets {
		offsets[i] = i
	}
	return offsets
}

// rustString reads the string literal at the start of s ("...", r#"..."#, b"..."),
// with its escapes decoded.
func rustString(s []byte) (string, bool) {
	s = bytes.TrimPrefix(s, []byte("b"))
	if len(s) > 0 && s[0] == 'r' {
		hashes := 0
		for hashes+1 < len(s) && s[hashes+1] == '#' {
			hashes++
		}
		body := s[1+hashes:]
		if len(body) == 0 || body[0] != '"' {
			return "", false
		}
		end := bytes.Index(body[1:], append([]byte{'"'}, bytes.Repeat([]byte("#"), hashes)...))
		if end < 0 {
			return "", false
		}
		return string(body[1 : 1+end]), true
	}
	return quoted(s, '"')
}

var (
	asImportRE = regexp.MustCompile(`\b(?:from|import|require)[ \t\r\n]*\(?[ \t\r\n]*["']`)
)

// checkAssemblyScript checks the module names of import, export ... from and
// require: relative names ("./wasmbed") and packages only.
func checkAssemblyScript(name string, src []byte) []Diagnostic {
	text, code := stripComments(src, tsSyntax), codeOnly(src, tsSyntax)
	loc := locator{name, src}
	var diags []Diagnostic
	for _, m := range asImportRE.FindAllIndex(code, -1) {
		start := m[1] - 1
		spec, ok := quoted(text[start:], text[start])
		if !ok {
			continue
		}
		if p := pathProblem(spec); p != "" {
			diags = append(diags, loc.at(start, "import from %s: only files in the build directory (./wasmbed) can be imported", p))
		}
	}
	return diags
}

// quoted reads the string literal that starts s with quote, decoding the escapes
// that Rust and JavaScript share (\x41, \u{41}, \u0041, \n...).
func quoted(s []byte, quote byte) (string, bool) {
	if len(s) == 0 || s[0] != quote {
		return "", false
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == quote:
			return b.String(), true
		case c != '\\':
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(s) {
			return "", false
		}
		switch e := s[i]; e {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case '0':
			b.WriteByte(0)
		case '\n':
			// A line continuation.
		case 'x', 'u':
			r, n, ok := escapedRune(s[i+1:], e)
			if !ok {
				return "", false
			}
			b.WriteRune(r)
			i += n
		default:
			b.WriteByte(e)
		}
	}
	return "", false
}

// escapedRune decodes the digits after \x (two) or \u (four, or {1-6}).
func escapedRune(s []byte, kind byte) (rune, int, bool) {
	digits, n := s, 0
	switch {
	case kind == 'x':
		n = 2
	case len(s) > 0 && s[0] == '{':
		end := bytes.IndexByte(s, '}')
		if end < 0 {
			return 0, 0, false
		}
		v, err := strconv.ParseUint(strings.ReplaceAll(string(s[1:end]), "_", ""), 16, 32)
		return rune(v), end + 1, err == nil
	default:
		n = 4
	}
	if len(digits) < n {
		return 0, 0, false
	}
	v, err := strconv.ParseUint(string(digits[:n]), 16, 32)
	return rune(v), n, err == nil
}

// syntax is what stripComments needs to know of a language's lexical structure.
type syntax struct {
	nested  bool   // block comments nest (Rust)
	quotes  string // string delimiters
	chars   bool   // 'x' is a character literal (C); in Rust, only when it closes
	rust    bool   // r"..." raw strings and 'a lifetimes
	eolEnds bool   // strings end at a newline (C, JavaScript quotes)
}

var (
	cSyntax    = syntax{quotes: `"`, chars: true, eolEnds: true}
	rustSyntax = syntax{nested: true, quotes: `"`, rust: true}
	tsSyntax   = syntax{quotes: "\"'`", eolEnds: true}
)

// stripComments returns src with every comment replaced by spaces (newlines kept),
// so offsets and lines stay those of src; string literals are kept.
func stripComments(src []byte, syn syntax) []byte {
	return blankOut(src, syn, false)
}

// codeOnly is stripComments with the contents of string literals blanked too
// (their quotes stay), to find keywords that are code and not text.
func codeOnly(src []byte, syn syntax) []byte {
	return blankOut(src, syn, true)
}

func blankOut(src []byte, syn syntax, strings bool) []byte {
	out := bytes.Clone(src)
	blank := func(from, to int) {
		for i := from; i < to && i < len(out); i++ {
			if out[i] != '\n' {
				out[i] = ' '
			}
		}
	}
	for i := 0; i < len(src); {
		switch {
		case bytes.HasPrefix(src[i:], []byte("//")):
			end := bytes.IndexByte(src[i:], '\n')
			if end < 0 {
				end = len(src) - i
			}
			blank(i, i+end)
			i += end
		case bytes.HasPrefix(src[i:], []byte("/*")):
			end := blockCommentEnd(src, i, syn.nested)
			blank(i, end)
			i = end
		case syn.rust && rawStringStart(src, i) > 0:
			end, hashes := rawStringEnd(src, i), rawStringStart(src, i)-1
			if strings {
				blank(bytes.IndexByte(src[i:], '"')+i+1, end-1-hashes)
			}
			i = end
		case bytes.IndexByte([]byte(syn.quotes), src[i]) >= 0:
			end := stringEnd(src, i, src[i], syn.eolEnds)
			if strings {
				blank(i+1, end-1)
			}
			i = end
		case src[i] == '\'' && (syn.chars || syn.rust):
			i = charEnd(src, i, syn.rust)
		default:
			i++
		}
	}
	return out
}

func blockCommentEnd(src []byte, i int, nested bool) int {
	depth := 0
	for j := i; j+1 < len(src); j++ {
		switch {
		case src[j] == '/' && src[j+1] == '*' && (nested || depth == 0):
			depth++
			j++
		case src[j] == '*' && src[j+1] == '/':
			depth--
			j++
			if depth == 0 {
				return j + 1
			}
		}
	}
	return len(src)
}

// stringEnd returns the offset after the string literal at i.
func stringEnd(src []byte, i int, quote byte, eolEnds bool) int {
	for j := i + 1; j < len(src); j++ {
		switch src[j] {
		case '\\':
			j++
		case quote:
			return j + 1
		case '\n':
			if eolEnds {
				return j
			}
		}
	}
	return len(src)
}

// charEnd returns the offset after a character literal at i, or i+1 for a Rust
// lifetime or label ('a).
func charEnd(src []byte, i int, rust bool) int {
	if !rust {
		return stringEnd(src, i, '\'', true)
	}
	if i+1 < len(src) && src[i+1] == '\\' {
		return stringEnd(src, i, '\'', true)
	}
	_, n := utf8.DecodeRune(src[min(i+1, len(src)):])
	if i+1+n < len(src) && src[i+1+n] == '\'' {
		return i + 2 + n
	}
	return i + 1
}

// rawStringStart returns the number of '#' + 1 when a Rust raw string (r"",
// r#""#, br"") starts at i, else 0.
func rawStringStart(src []byte, i int) int {
	if i > 0 && isIdent(src[i-1]) && !(src[i-1] == 'b' && (i < 2 || !isIdent(src[i-2]))) {
		return 0
	}
	j := i
	if src[j] == 'b' {
		j++
	}
	if j >= len(src) || src[j] != 'r' {
		return 0
	}
	hashes := 0
	for j+1+hashes < len(src) && src[j+1+hashes] == '#' {
		hashes++
	}
	if j+1+hashes < len(src) && src[j+1+hashes] == '"' {
		return hashes + 1
	}
	return 0
}

func rawStringEnd(src []byte, i int) int {
	hashes := rawStringStart(src, i) - 1
	body := bytes.IndexByte(src[i:], '"') + i + 1
	end := bytes.Index(src[body:], append([]byte{'"'}, bytes.Repeat([]byte("#"), hashes)...))
	if end < 0 {
		return len(src)
	}
	return body + end + 1 + hashes
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}
