package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"regexp"
	"strconv"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// Call is one command the build calls, and where.
type Call struct {
	Command string
	// Where is "file:line".
	Where string
}

// shellBuiltins are bash builtins and keywords: no package provides them.
var shellBuiltins = map[string]bool{
	"cd": true, "set": true, "export": true, "local": true, "read": true, "echo": true,
	"printf": true, "test": true, "[": true, "[[": true, "true": true, "false": true,
	"trap": true, "wait": true, "kill": true, "shift": true, "return": true, "exit": true,
	"source": true, ".": true, "eval": true, "declare": true, "mapfile": true, "unset": true,
	"type": true, "hash": true, "pwd": true, "break": true, "continue": true, ":": true,
	"readonly": true, "let": true, "builtin": true, "umask": true, "ulimit": true,
	"getopts": true, "jobs": true, "disown": true, "shopt": true, "command": true, "exec": true,
}

// wrappers run the command that follows their options.
var wrappers = map[string]bool{"exec": true, "command": true, "sudo": true, "env": true, "nice": true, "timeout": true, "xargs": true}

// ShellCalls returns the commands a shell script calls by name: the first word of
// each simple command, the command after exec, command, sudo, env and the like
// (`command -v x` counts as a call of x: the script needs x), skipping builtins, the
// script's own functions, and words that are not literal or that hold a slash (the
// project's own scripts, binaries it built, paths in variables).
func ShellCalls(file, src string, lineOffset int) ([]Call, error) {
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(src), file)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", file, err)
	}
	funcs := map[string]bool{}
	syntax.Walk(f, func(n syntax.Node) bool {
		if fd, ok := n.(*syntax.FuncDecl); ok {
			funcs[fd.Name.Value] = true
		}
		return true
	})
	var calls []Call
	syntax.Walk(f, func(n syntax.Node) bool {
		ce, ok := n.(*syntax.CallExpr)
		if !ok || len(ce.Args) == 0 {
			return true
		}
		for i := 0; i < len(ce.Args); i++ {
			name := ce.Args[i].Lit()
			if name == "" || strings.Contains(name, "/") || strings.Contains(name, "=") && i > 0 {
				break
			}
			if wrappers[name] {
				// Skip the wrapper's options (and env's assignments), then the command.
				j := i + 1
				for j < len(ce.Args) {
					w := ce.Args[j].Lit()
					if strings.HasPrefix(w, "-") || (name == "env" && strings.Contains(w, "=")) {
						j++
						continue
					}
					break
				}
				if name != "exec" && name != "command" {
					calls = append(calls, Call{name, where(file, ce.Pos().Line(), lineOffset)})
				}
				if name == "timeout" {
					j++ // the duration
				}
				i = j - 1
				continue
			}
			if !shellBuiltins[name] && !funcs[name] && name != placeholder {
				calls = append(calls, Call{name, where(file, ce.Pos().Line(), lineOffset)})
			}
			break
		}
		return true
	})
	return calls, nil
}

func where(file string, line uint, offset int) string {
	return file + ":" + strconv.Itoa(int(line)+offset)
}

var (
	makeAssign = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)\s*(?:[:?+!]?=|::=)\s*(.*)$`)
)

// MakeCalls returns the commands a Makefile's recipes (and its $(shell ...) calls)
// call, after expanding its simple variables ($(CC) with CC ?= cc) as make would.
// vars holds variables from files it includes and is extended with this file's.
func MakeCalls(file, src string, vars map[string]string) ([]Call, error) {
	lines := joinContinuations(src)
	type recipe struct {
		text string
		line int
	}
	var recipes []recipe
	inRule, inDefine := false, false
	for _, l := range lines {
		trimmed := strings.TrimSpace(l.text)
		switch {
		case strings.HasPrefix(trimmed, "define "):
			inDefine = true
		case trimmed == "endef":
			inDefine, inRule = false, false
		case strings.HasPrefix(l.text, "\t") && inDefine:
			// A template for $(eval $(call ...)): $$ is what becomes $ once evaluated.
			recipes = append(recipes, recipe{strings.ReplaceAll(strings.TrimPrefix(l.text, "\t"), "$$", "$"), l.line})
		case inDefine:
		case strings.HasPrefix(l.text, "\t"):
			if inRule {
				recipes = append(recipes, recipe{strings.TrimPrefix(l.text, "\t"), l.line})
			}
		case strings.TrimSpace(l.text) == "" || strings.HasPrefix(strings.TrimSpace(l.text), "#"):
		default:
			if m := makeAssign.FindStringSubmatch(l.text); m != nil {
				if _, ok := vars[m[1]]; !ok || !strings.Contains(l.text, "?=") {
					vars[m[1]] = m[2]
				}
				if strings.Contains(m[2], "$(shell") {
					var shells []string
					expand(m[2], vars, &shells, 0)
					for _, sh := range shells {
						recipes = append(recipes, recipe{sh, l.line})
					}
				}
				inRule = false
				continue
			}
			inRule = strings.Contains(l.text, ":") && !strings.HasPrefix(l.text, "ifeq") && !strings.HasPrefix(l.text, "define")
		}
	}
	var calls []Call
	for _, r := range recipes {
		var shells []string
		texts := []string{expand(r.text, vars, &shells, 0)}
		for _, text := range append(texts, shells...) {
			text = strings.TrimLeft(text, "@-+ ")
			text = strings.ReplaceAll(text, "$$", "$")
			c, err := ShellCalls(file, text, r.line-1)
			if err != nil {
				return nil, fmt.Errorf("%w (recipe, after expanding make's variables: %q)", err, text)
			}
			calls = append(calls, c...)
		}
	}
	return calls, nil
}

// placeholder stands for what expand cannot know (a make function's result, an
// automatic variable); it is never taken for a command.
const placeholder = "__make__"

// expand replaces $(VAR) and ${VAR} with the variable's value, recursively, and
// $(MAKE) with make. A call of one of make's functions, an automatic variable or an
// unknown variable becomes a placeholder word; the shell code inside every
// $(shell ...) it meets is added to shells.
func expand(s string, vars map[string]string, shells *[]string, depth int) string {
	if depth > 10 {
		return placeholder
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		next := s[i+1]
		switch {
		case next == '$':
			b.WriteString("$$")
			i++
		case next == '(' || next == '{':
			end := closing(s, i+1)
			if end < 0 {
				b.WriteString(placeholder)
				i = len(s)
				continue
			}
			inner := s[i+2 : end]
			switch {
			case inner == "MAKE":
				b.WriteString("make")
			case makeName.MatchString(inner):
				if v, ok := vars[inner]; ok {
					b.WriteString(strings.TrimLeft(expand(v, vars, shells, depth+1), "@"))
				} else {
					b.WriteString(placeholder)
				}
			case strings.HasPrefix(inner, "shell "):
				*shells = append(*shells, expand(strings.TrimPrefix(inner, "shell "), vars, shells, depth+1))
				b.WriteString(placeholder)
			default:
				// A function: its arguments may hold $(shell ...).
				expand(inner, vars, shells, depth+1)
				b.WriteString(placeholder)
			}
			i = end
		default:
			// $@, $<, $^, $* and one-letter variables.
			b.WriteString(placeholder)
			i++
		}
	}
	return b.String()
}

// closing returns the index of the parenthesis or brace that closes the one at
// open, or -1.
func closing(s string, open int) int {
	opener, closer := s[open], byte(')')
	if opener == '{' {
		closer = '}'
	}
	level := 0
	for j := open; j < len(s); j++ {
		switch s[j] {
		case opener:
			level++
		case closer:
			level--
			if level == 0 {
				return j
			}
		}
	}
	return -1
}

var makeName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

type line struct {
	text string
	line int
}

// joinContinuations joins lines that end in a backslash, keeping the first line's number.
func joinContinuations(src string) []line {
	var out []line
	var cur strings.Builder
	start := 0
	for i, l := range strings.Split(src, "\n") {
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(l, "\\") {
			cur.WriteString(strings.TrimSuffix(l, "\\"))
			cur.WriteString(" ")
			continue
		}
		cur.WriteString(l)
		out = append(out, line{cur.String(), start})
		cur.Reset()
	}
	return out
}

// GoCalls returns the commands Go code runs by name: the program of exec.Command,
// exec.CommandContext and exec.LookPath when it is a string literal or a constant of
// the same file, without a slash.
func GoCalls(file string, src []byte) ([]Call, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, src, 0)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", file, err)
	}
	consts := map[string]string{}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, s := range gd.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if i < len(vs.Values) {
					if v, ok := stringLit(vs.Values[i]); ok {
						consts[n.Name] = v
					}
				}
			}
		}
	}
	var calls []Call
	ast.Inspect(f, func(n ast.Node) bool {
		ce, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := ce.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		pkg, ok := sel.X.(*ast.Ident)
		if !ok || pkg.Name != "exec" {
			return true
		}
		arg := 0
		switch sel.Sel.Name {
		case "Command", "LookPath":
		case "CommandContext":
			arg = 1
		default:
			return true
		}
		if len(ce.Args) <= arg {
			return true
		}
		name, ok := stringLit(ce.Args[arg])
		if id, isIdent := ce.Args[arg].(*ast.Ident); !ok && isIdent {
			name, ok = consts[id.Name]
		}
		if ok && name != "" && !strings.Contains(name, "/") {
			calls = append(calls, Call{name, fmt.Sprintf("%s:%d", file, fset.Position(ce.Pos()).Line)})
		}
		return true
	})
	return calls, nil
}

func stringLit(e ast.Expr) (string, bool) {
	bl, ok := e.(*ast.BasicLit)
	if !ok || bl.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(bl.Value)
	return s, err == nil
}
