package main

import (
	"fmt"
	"sort"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// DepsTable reads the table `declare -A need=( [command]=package ... )` of
// hack/deps.sh: the commands it installs, each with its Debian package.
func DepsTable(src string) (map[string]string, error) {
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(src), "deps.sh")
	if err != nil {
		return nil, fmt.Errorf("parse hack/deps.sh: %w", err)
	}
	var table map[string]string
	syntax.Walk(f, func(n syntax.Node) bool {
		dc, ok := n.(*syntax.DeclClause)
		if !ok {
			return true
		}
		for _, a := range dc.Args {
			if a.Name == nil || a.Name.Value != "need" || a.Array == nil {
				continue
			}
			table = map[string]string{} // found, even if empty
			for _, el := range a.Array.Elems {
				if el.Index == nil || el.Value == nil {
					continue
				}
				// The key as written: bash reads [a-b] as text, the parser as a-b.
				key := src[el.Index.Pos().Offset():el.Index.End().Offset()]
				if key != "" && el.Value.Lit() != "" {
					table[key] = el.Value.Lit()
				}
			}
		}
		return true
	})
	if table == nil {
		return nil, fmt.Errorf("hack/deps.sh has no `declare -A need=(...)` table")
	}
	return table, nil
}

// Base maps the commands every Debian 12 system has to their package: each is of
// priority "required", so even a minimal system (debootstrap --variant=minbase, the
// debian:bookworm image) holds it. TestBaseIsRequired checks that against apt.
var Base = map[string]string{
	"bash": "bash", "sh": "dash",
	"awk":      "mawk",
	"basename": "coreutils", "cat": "coreutils", "chmod": "coreutils", "chown": "coreutils",
	"cp": "coreutils", "cut": "coreutils", "date": "coreutils", "dirname": "coreutils",
	"du": "coreutils", "env": "coreutils", "head": "coreutils", "id": "coreutils",
	"install": "coreutils", "ln": "coreutils", "ls": "coreutils", "mkdir": "coreutils",
	"mktemp": "coreutils", "mv": "coreutils", "nproc": "coreutils", "od": "coreutils",
	"readlink": "coreutils", "realpath": "coreutils", "rm": "coreutils", "rmdir": "coreutils",
	"seq": "coreutils", "sha256sum": "coreutils", "sleep": "coreutils", "sort": "coreutils",
	"stat": "coreutils", "tail": "coreutils", "tee": "coreutils", "timeout": "coreutils",
	"touch": "coreutils", "tr": "coreutils", "truncate": "coreutils", "uname": "coreutils",
	"uniq": "coreutils", "wc": "coreutils", "nice": "coreutils", "printenv": "coreutils",
	"test": "coreutils",
	"cmp":  "diffutils", "diff": "diffutils",
	"find": "findutils", "xargs": "findutils",
	"grep": "grep", "sed": "sed", "tar": "tar", "gzip": "gzip",
	"apt-get": "apt", "apt-cache": "apt",
	"dpkg": "dpkg", "dpkg-deb": "dpkg", "dpkg-query": "dpkg",
}

// Prerequisites are what the README asks for before the first `make`: Go, Node.js
// (with npm), make and git. deps.sh cannot install them: it runs from make.
var Prerequisites = map[string]string{
	"go": "Go 1.26 in /usr/local/go", "gofmt": "Go 1.26 in /usr/local/go",
	"node": "Node.js 20", "npm": "Node.js 20", "npx": "Node.js 20",
	"make": "Debian package make", "git": "Debian package git",
	// Only asked for when not root and a package is missing; deps.sh says so.
	"sudo": "Debian package sudo, when not root",
}

// Missing is a command called but not installed by deps.sh, the base system or the
// prerequisites, with every place that calls it.
type Missing struct {
	Command string
	Where   []string
}

// Check returns the calls that nothing installs, sorted by command.
func Check(calls []Call, deps map[string]string) []Missing {
	by := map[string][]string{}
	for _, c := range calls {
		if _, ok := deps[c.Command]; ok {
			continue
		}
		if _, ok := Base[c.Command]; ok {
			continue
		}
		if _, ok := Prerequisites[c.Command]; ok {
			continue
		}
		by[c.Command] = append(by[c.Command], c.Where)
	}
	var out []Missing
	for cmd, where := range by {
		sort.Strings(where)
		out = append(out, Missing{cmd, where})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Command < out[j].Command })
	return out
}
