// Package layout_test holds the architecture to its rules: contracts in api/ import
// only api/; the libraries in internal/ import only api/ and internal/; no component
// imports the platform assembly (platform/) or a binary (cmd/). See RATIONALE.md.
package layout_test

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/wasmbed/wasmbed/"

// room is the top-level folder of a package path inside the module, or "" outside it.
func room(path string) string {
	rest, ok := strings.CutPrefix(path, module)
	if !ok {
		return ""
	}
	top, _, _ := strings.Cut(rest, "/")
	return top
}

// allowed reports whether a package in room from may import one in room to.
func allowed(from, to string, test bool) bool {
	switch {
	case to == "" || from == to:
		return true
	case to == "testdata" || to == "config":
		return true // data: test fixtures, and the embedded manifests
	case from == "api":
		// A CRD test needs a real apiserver (internal/testenv); code never leaves api/.
		return test && to == "internal"
	case from == "internal":
		return to == "api"
	case to == "platform":
		return from == "cmd" || from == "test"
	case to == "cmd":
		return false
	}
	return true
}

func TestImportsRunDownward(t *testing.T) {
	cmd := exec.Command("go", "list", "-f",
		"{{.ImportPath}} code {{join .Imports \" \"}}\n{{.ImportPath}} test {{join .TestImports \" \"}} {{join .XTestImports \" \"}}",
		module+"...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	packages := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		pkg, kind, imports := f[0], f[1], f[2:]
		if kind == "code" {
			packages++
		}
		from := room(pkg)
		for _, imp := range imports {
			if to := room(imp); !allowed(from, to, kind == "test") {
				t.Errorf("%s (%s) imports %s: %s/ may not import %s/", strings.TrimPrefix(pkg, module), kind, strings.TrimPrefix(imp, module), from, to)
			}
		}
	}
	if packages < 40 {
		t.Fatalf("go list named %d packages; the module has more", packages)
	}
}

func TestRules(t *testing.T) {
	tests := []struct {
		from, to string
		test     bool
		want     bool
	}{
		{"api", "api", false, true},
		{"api", "gateway", false, false},
		{"api", "internal", false, false},
		{"api", "internal", true, true},
		{"internal", "api", false, true},
		{"internal", "gateway", false, false},
		{"internal", "platform", true, false},
		{"gateway", "platform", false, false},
		{"operator", "cmd", false, false},
		{"cmd", "platform", false, true},
		{"test", "platform", true, true},
		{"gateway", "testdata", false, true},
		{"internal", "config", true, true},
		{"internal", "operator", true, false},
	}
	for _, tt := range tests {
		if got := allowed(tt.from, tt.to, tt.test); got != tt.want {
			t.Errorf("allowed(%s -> %s, test=%v) = %v, want %v", tt.from, tt.to, tt.test, got, tt.want)
		}
	}
}
