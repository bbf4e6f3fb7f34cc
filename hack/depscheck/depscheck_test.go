package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

func commands(calls []Call) []string {
	var out []string
	for _, c := range calls {
		out = append(out, c.Command)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

func TestShellCalls(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"simple commands and pipes", "grep -q x f | sed s/a/b/ && jq .", []string{"grep", "jq", "sed"}},
		{"builtins are not commands", "cd /tmp; echo hi; set -e; read x; printf '%s' y", nil},
		{"the script's own functions are not", "log() { echo \"$@\" >&2; }\nlog hi", nil},
		{"command -v checks for a command", "command -v wasm-opt >/dev/null || exit 1", []string{"wasm-opt"}},
		{"wrappers run the next word", "exec flock 9\nsudo -E apt-get install x\nenv A=1 B=2 make test\ntimeout 120 qemu-system-arm -M x", []string{"apt-get", "env", "flock", "make", "qemu-system-arm", "sudo", "timeout"}},
		{"in substitutions and conditions", "x=\"$(uname -m)\"\nif [ -x \"$(command -v xxd)\" ]; then bwrap --version; fi", []string{"bwrap", "uname", "xxd"}},
		{"paths and variables are the project's", "\"$ko\" resolve\n./hack/registry.sh\n\"$(dirname \"$0\")/x.sh\"", []string{"dirname"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls, err := ShellCalls("s.sh", tt.src, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := commands(calls); !slices.Equal(got, tt.want) {
				t.Errorf("calls %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMakeCalls(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"recipes with variables", "CC ?= arm-none-eabi-gcc\nSIZE := arm-none-eabi-size\nall: a.c\n\t@$(CC) -o a a.c\n\t$(SIZE) a\n", []string{"arm-none-eabi-gcc", "arm-none-eabi-size"}},
		{"$(MAKE), continuations and make functions", "x:\n\t$(MAKE) -C fw \\\n\t  test\n\t$(if $(V),,rm -f y)\n", []string{"make"}},
		{"$(shell ...) in a variable", "D := $(shell go list -m -f '{{.Dir}}' x)\n", []string{"go"}},
		{"templates for eval", "define prog\n$$(B)/$(1): x\n\t$$(CC) -o $$@ $$^\nendef\nCC := clang-14\n", []string{"clang-14"}},
		{"a variable holding a check", "NEED := @command -v qemu-arm >/dev/null || exit 1\nt:\n\t$(NEED)\n", []string{"qemu-arm"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls, err := MakeCalls("Makefile", tt.src, map[string]string{})
			if err != nil {
				t.Fatal(err)
			}
			if got := commands(calls); !slices.Equal(got, tt.want) {
				t.Errorf("calls %v, want %v", got, tt.want)
			}
		})
	}
}

func TestGoCalls(t *testing.T) {
	src := `package p

import "os/exec"

const qemu = "qemu-system-arm"

func f(ctx any, tool string) {
	exec.Command("wat2wasm", "a.wat")
	exec.CommandContext(ctx, "npm", "ci")
	exec.LookPath(qemu)
	exec.Command(tool)
	exec.Command("/usr/bin/rustc")
}
`
	calls, err := GoCalls("p.go", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := commands(calls), []string{"npm", "qemu-system-arm", "wat2wasm"}; !slices.Equal(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}
	if calls[0].Where != "p.go:8" {
		t.Errorf("where %q, want p.go:8", calls[0].Where)
	}
}

func TestDepsTable(t *testing.T) {
	table, err := DepsTable(`declare -A need=(
  [wat2wasm]=wabt
  [arm-none-eabi-gcc]=gcc-arm-none-eabi
)
declare -A need_files=(["/usr/bin/rustc"]=rustc)
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(table) != 2 || table["wat2wasm"] != "wabt" || table["arm-none-eabi-gcc"] != "gcc-arm-none-eabi" {
		t.Errorf("table %v", table)
	}
	if _, err := DepsTable("echo no table"); err == nil {
		t.Error("a deps.sh without a need table was read")
	}
}

// TestCheckRepoFails builds a small checkout whose Makefile, script and Go code call
// tools, and checks that CheckRepo names exactly those deps.sh does not install.
func TestCheckRepoFails(t *testing.T) {
	tests := []struct {
		name string
		need string // deps.sh's table entries
		want []string
	}{
		{"nothing installed", "", []string{"jq", "wasm-opt", "xz"}},
		{"one installed", "[jq]=jq", []string{"wasm-opt", "xz"}},
		{"all installed", "[jq]=jq [wasm-opt]=binaryen [xz]=xz-utils", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			files := map[string]string{
				"hack/deps.sh":        "declare -A need=(" + tt.need + ")\n",
				"Makefile":            "OPT ?= wasm-opt\nall:\n\t$(OPT) -Oz a.wasm\n\tgo build ./...\n",
				"hack/x.sh":           "set -e\njq . f.json | sort\n",
				"tool/tool.go":        "package tool\nimport \"os/exec\"\nfunc f() { exec.Command(\"xz\", \"-d\") }\n",
				"node_modules/a/b.sh": "not-read-here\n",
			}
			for name, content := range files {
				p := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			missing, _, err := CheckRepo(root)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range missing {
				got = append(got, m.Command)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("missing %v, want %v", got, tt.want)
			}
		})
	}
}

// TestRepo is what `make verify` runs: this checkout calls nothing deps.sh misses.
func TestRepo(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	missing, calls, err := CheckRepo(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) < 100 {
		t.Fatalf("read %d calls; the build makes more", len(calls))
	}
	for _, m := range missing {
		t.Errorf("%s is called at %s but hack/deps.sh does not install it", m.Command, strings.Join(m.Where, ", "))
	}
}

// TestBaseIsRequired checks Base against Debian's index: every package it names is
// of priority required, so on every Debian 12 system.
func TestBaseIsRequired(t *testing.T) {
	if _, err := exec.LookPath("apt-cache"); err != nil {
		t.Fatal("apt-cache not found: this check needs Debian's package index (a Debian 12 machine)")
	}
	pkgs := map[string]bool{}
	for _, p := range Base {
		pkgs[p] = true
	}
	names := make([]string, 0, len(pkgs))
	for p := range pkgs {
		names = append(names, p)
	}
	// One call: apt-cache reads its whole index each time.
	out, err := exec.Command("apt-cache", append([]string{"show", "--no-all-versions"}, names...)...).Output()
	if err != nil {
		t.Fatalf("apt-cache show %v: %v", names, err)
	}
	priority := map[string]string{}
	for _, record := range strings.Split(string(out), "\n\n") {
		var name, prio string
		for _, line := range strings.Split(record, "\n") {
			if v, ok := strings.CutPrefix(line, "Package: "); ok {
				name = v
			}
			if v, ok := strings.CutPrefix(line, "Priority: "); ok {
				prio = v
			}
		}
		if name != "" {
			priority[name] = prio
		}
	}
	for _, p := range names {
		if priority[p] != "required" {
			t.Errorf("%s has priority %q on Debian, not required: a minimal system lacks it; move its commands to hack/deps.sh", p, priority[p])
		}
	}
}
