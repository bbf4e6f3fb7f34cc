package builder_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmbed/wasmbed/builder"
)

// secretToken is the content of the secret files the attacks below go after.
const secretToken = "wasmbed_secret_7f3c9a"

// secretTree makes root/state with secret files a compiler would report if it
// read them (an identifier C and AssemblyScript complain about, a string Rust
// embeds), and root/builds for the build directories, so that "../../state/..."
// from a build directory reaches the secrets.
func secretTree(t *testing.T) (root string, b *builder.Builder) {
	t.Helper()
	root = t.TempDir()
	for name, content := range map[string]string{
		"state/secret.h":  secretToken + " leaked;\n",
		"state/secret.ts": secretToken + "();\n",
		"state/secret.rs": "pub const S: &str = \"" + secretToken + "\";\n",
		"state/token":     secretToken + "\n",
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(root, "builds"), 0o755); err != nil {
		t.Fatal(err)
	}
	return root, builder.New(builder.NewConfig().WithTempDir(filepath.Join(root, "builds")))
}

// leaks returns where a build's result or error shows the secret or the path of
// the state directory, or "".
func leaks(res builder.Result, err error, root string) string {
	var shown []string
	shown = append(shown, string(res.Module), res.Log)
	for _, d := range res.Diagnostics {
		shown = append(shown, d.String())
	}
	if err != nil {
		shown = append(shown, err.Error())
		var ce *builder.CompileError
		if errors.As(err, &ce) {
			shown = append(shown, ce.Log)
			for _, d := range ce.Diagnostics {
				shown = append(shown, d.String())
			}
		}
	}
	for _, s := range shown {
		switch {
		case strings.Contains(s, secretToken):
			return "the secret: " + s
		case strings.Contains(s, root):
			return "the state directory's path: " + s
		}
	}
	return ""
}

// TestSourceAttacks builds sources that try to read a file outside the build
// directory: each fails with a diagnostic that names the problem, and nothing
// of the file (nor its path) reaches the user.
func TestSourceAttacks(t *testing.T) {
	cases := []struct {
		name string
		lang builder.Language
		src  string // %[1]s is the absolute path of the state directory
		want string // in the first error
	}{
		{"c include absolute", builder.C, "#include \"%[1]s/secret.h\"\n", "main.c:1:10: error: #include of an absolute path"},
		{"c include relative", builder.C, "#include \"wasmbed.h\"\n#include \"../../state/secret.h\"\n", "main.c:2:10: error: #include of a path with '..'"},
		{"c include_next", builder.C, "#include_next <%[1]s/secret.h>\n", "main.c:1:15: error: #include_next of an absolute path"},
		{"c include spliced", builder.C, "#inc\\\nlude \"%[1]s/secret.h\"\n", "main.c:2:6: error: #include of an absolute path"},
		{"c include in a comment-hidden directive", builder.C, "/* x */ # /* y */ include \"%[1]s/secret.h\"\n", "main.c:1:27: error: #include of an absolute path"},
		{"c include through a macro", builder.C, "#define F \"%[1]s/secret.h\"\n#include F\n", "main.c:2:10: error: #include with a macro"},
		{"c incbin", builder.C, "__asm__(\".incbin \\\"%[1]s/token\\\"\");\n", "main.c:1:10: error: .incbin of an absolute path"},
		{"rust include_str absolute", builder.Rust, "#![no_std]\nmod wasmbed;\nconst S: &str = include_str!(\"%[1]s/token\");\n#[export_name = \"loop\"]\npub extern \"C\" fn app_loop() -> i32 { S.len() as i32 }\n",
			"main.rs:3:30: error: include_str! of an absolute path"},
		{"rust include_bytes relative", builder.Rust, "#![no_std]\nmod wasmbed;\nconst S: &[u8] = include_bytes!(\"../../state/token\");\n#[export_name = \"loop\"]\npub extern \"C\" fn app_loop() -> i32 { S[0] as i32 }\n",
			"main.rs:3:33: error: include_bytes! of a path with '..'"},
		{"rust include escaped", builder.Rust, "#![no_std]\nmod wasmbed;\ninclude!(\"\\x2e\\u{2e}/../state/secret.rs\");\n#[export_name = \"loop\"]\npub extern \"C\" fn app_loop() -> i32 { S.len() as i32 }\n",
			"main.rs:3:10: error: include! of a path with '..'"},
		{"rust include raw string", builder.Rust, "#![no_std]\nmod wasmbed;\nconst S: &str = core::include_str!(r#\"%[1]s/token\"#);\n#[export_name = \"loop\"]\npub extern \"C\" fn app_loop() -> i32 { S.len() as i32 }\n",
			"main.rs:3:36: error: include_str! of an absolute path"},
		{"rust include through concat", builder.Rust, "#![no_std]\nmod wasmbed;\nconst S: &str = include_str!(concat!(\"%[1]s\", \"/token\"));\n#[export_name = \"loop\"]\npub extern \"C\" fn app_loop() -> i32 { S.len() as i32 }\n",
			"main.rs:3:30: error: include_str! needs a string literal"},
		{"rust path attribute", builder.Rust, "#![no_std]\nmod wasmbed;\n#[path = \"%[1]s/secret.rs\"]\nmod secret;\n#[export_name = \"loop\"]\npub extern \"C\" fn app_loop() -> i32 { secret::S.len() as i32 }\n",
			"main.rs:3:10: error: #[path] of an absolute path"},
		{"assemblyscript import absolute", builder.AssemblyScript, "import { ledSet } from \"./wasmbed\";\nimport \"%[1]s/secret\";\nexport function loop(): i32 { ledSet(0, 1); return 500; }\n",
			"main.ts:2:8: error: import from an absolute path"},
		{"assemblyscript import relative", builder.AssemblyScript, "import { x } from \"../../state/secret\";\nexport function loop(): i32 { return 500; }\n",
			"main.ts:1:19: error: import from a path with '..'"},
		{"assemblyscript export from", builder.AssemblyScript, "export { x } from '%[1]s/secret';\nexport function loop(): i32 { return 500; }\n",
			"main.ts:1:19: error: import from an absolute path"},
	}
	root, b := secretTree(t)
	state := filepath.Join(root, "state")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.ReplaceAll(tc.src, "%[1]s", state)
			res, err := b.Build(context.Background(), builder.Request{Language: tc.lang, Source: []byte(src)})
			if leak := leaks(res, err, root); leak != "" {
				t.Fatalf("the build shows %s", leak)
			}
			var ce *builder.CompileError
			if !errors.As(err, &ce) || !builder.IsUserError(err) {
				t.Fatalf("err = %v (%T), want a CompileError", err, err)
			}
			if got := ce.Errors()[0].String(); !strings.HasPrefix(got, tc.want) {
				t.Errorf("first error %q, want it to start with %q", got, tc.want)
			}
		})
	}
}

// TestCompilersCannotSeeOutside asks the compilers themselves, with what no check
// of the source refuses (__has_include, a build that only tests existence), whether
// the secret exists: it does not, in the sandbox.
func TestCompilersCannotSeeOutside(t *testing.T) {
	root, b := secretTree(t)
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	self, err := filepath.Abs("attack_test.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(root, "state", "secret.h"), "/etc/passwd", filepath.Join(home, ".bashrc"), self} {
		t.Run(p, func(t *testing.T) {
			if _, err := os.Stat(p); err != nil {
				t.Skipf("%s does not exist on this machine", p)
			}
			src := fmt.Sprintf("#include \"wasmbed.h\"\n#if __has_include(\"%s\")\n#error the compiler sees a file outside the build directory\n#endif\nWASMBED_EXPORT(loop) int32_t loop(void) { return 500; }\n", p)
			res, err := b.Build(context.Background(), builder.Request{Language: builder.C, Source: []byte(src)})
			if err != nil {
				t.Fatalf("%v", err)
			}
			if leak := leaks(res, err, root); leak != "" {
				t.Fatalf("the build shows %s", leak)
			}
		})
	}
}

// TestRedactedDiagnostics checks that compiler output naming a file outside the
// build directory (a #line into the state directory, clang's own headers) is
// redacted in diagnostics and log, while the user's own file keeps its lines.
func TestRedactedDiagnostics(t *testing.T) {
	root, b := secretTree(t)
	tests := []struct {
		name     string
		src      string
		wantLine string // a diagnostic that stays: file:line
	}{
		{"#line into the state directory", "#include \"wasmbed.h\"\nint ok = undeclared_a;\n#line 1 \"%[1]s/secret.h\"\nint bad = undeclared_b;\n", "main.c:2:"},
		{"an error through a toolchain header's macro", "#include <stdint.h>\nint x = INT32_MAX INT32_MAX;\n", "main.c:2:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.ReplaceAll(tc.src, "%[1]s", filepath.Join(root, "state"))
			res, err := b.Build(context.Background(), builder.Request{Language: builder.C, Source: []byte(src)})
			var ce *builder.CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v (%T), want a CompileError", err, err)
			}
			if leak := leaks(res, err, root); leak != "" {
				t.Fatalf("the build shows %s", leak)
			}
			kept := false
			for _, d := range ce.Diagnostics {
				if strings.HasPrefix(d.String(), tc.wantLine) {
					kept = true
				}
				if strings.HasPrefix(d.File, "/") || strings.Contains(d.Message, "/usr/") {
					t.Errorf("diagnostic %q names a file outside the build directory", d)
				}
			}
			if !kept {
				t.Errorf("no diagnostic %s... in %v", tc.wantLine, ce.Diagnostics)
			}
			for _, line := range strings.Split(ce.Log, "\n") {
				if strings.Contains(line, "/usr/") || strings.Contains(line, "/build/") || bytes.Contains([]byte(line), []byte(root)) {
					t.Errorf("log line names a file outside the build directory: %q", line)
				}
			}
			t.Logf("diagnostics: %v\nlog:\n%s", ce.Diagnostics, ce.Log)
		})
	}
}

// TestNoFalseAlarms builds sources that mention absolute paths in comments and
// strings, which name no file to read: they build.
func TestNoFalseAlarms(t *testing.T) {
	cases := []struct {
		name string
		lang builder.Language
		src  string
	}{
		{"c", builder.C, "#include \"wasmbed.h\"\n// #include \"/etc/passwd\"\n/* #include \"../x\" */\nstatic const char msg[] = \"#include \\\"/etc/passwd\\\" from '/dev/x'\";\nWASMBED_EXPORT(loop) int32_t loop(void) { wasmbed_log(0, msg, sizeof msg - 1); return 500; }\n"},
		{"rust", builder.Rust, "#![no_std]\nmod wasmbed;\n// include_str!(\"/etc/passwd\")\nconst MSG: &str = \"include_str!(\\\"/etc/passwd\\\")\";\nconst RAW: &str = r#\"#[path = \"/x\"]\"#;\n#[export_name = \"loop\"]\npub extern \"C\" fn app_loop() -> i32 { (MSG.len() + RAW.len()) as i32 }\n"},
		{"assemblyscript", builder.AssemblyScript, "import { ledSet } from \"./wasmbed\";\n// import \"/etc/passwd\";\nconst msg = \"reading from '/dev/sensor'\";\nexport function loop(): i32 { ledSet(0, msg.length > 0); return 500; }\n"},
	}
	b := builder.New(builder.NewConfig())
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			build(t, b, builder.Request{Language: tc.lang, Source: []byte(tc.src)})
		})
	}
}
