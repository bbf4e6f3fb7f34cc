package compile_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/builder"
	"github.com/wasmbed/wasmbed/functions/compile"
	"github.com/wasmbed/wasmbed/internal/artifacts"
	"github.com/wasmbed/wasmbed/internal/controlplane"
	"github.com/wasmbed/wasmbed/internal/pki"
)

// platformState makes the state directory `make run` keeps in .run/: a real etcd
// and kube-apiserver started on it (etcd data, admin token, token file, service
// account and serving keys, kubeconfig), the platform CA and the module signing
// key. It returns the directory and its files, relative to it.
func platformState(t *testing.T, dir string) []string {
	t.Helper()
	bin := os.Getenv("KUBEBUILDER_ASSETS")
	if bin == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run `make test`, or export KUBEBUILDER_ASSETS=$(hack/k8s-binaries.sh)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var cp *controlplane.ControlPlane
	var err error
	// Other tests may take a port picked as free: pick again.
	for i := 0; i < 5 && (i == 0 || err != nil && strings.Contains(err.Error(), "in use")); i++ {
		cp, err = controlplane.Start(ctx, controlplane.Config{Dir: dir, BinDir: bin,
			APIServerPort: freePort(t), EtcdPort: freePort(t), EtcdPeerPort: freePort(t), Logger: slog.New(slog.DiscardHandler)})
	}
	if err != nil {
		t.Fatalf("control plane: %v", err)
	}
	if err := cp.Stop(); err != nil {
		t.Fatalf("stop control plane: %v", err)
	}
	ca, err := pki.NewCA("wasmbed-dev CA", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Save(filepath.Join(dir, "pki"), false); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.LoadOrCreateSigningKey(filepath.Join(dir, "pki", "signing.key")); err != nil {
		t.Fatal(err)
	}
	var files []string
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pki/admin.token", "pki/tokens.csv", "pki/ca.key", "pki/signing.key", "pki/service-account.key", "kubeconfig"} {
		if _, err := os.Stat(filepath.Join(dir, want)); err != nil {
			t.Fatalf("the state directory has no %s: %v", want, err)
		}
	}
	return files
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// needles are the parts of a secret file that must never reach a user: the
// token, each line of a PEM body, each line of text over 16 bytes.
func needles(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) >= 16 && !bytes.HasPrefix(line, []byte("-----")) && utf8Text(line) {
			out = append(out, string(line))
		}
	}
	return out
}

func utf8Text(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// TestStateDirectoryIsInvisible attacks every file of a real platform state
// directory through the compile function, as `make run` wires it (build
// directories under the system's temporary directory, the state in .run/): by
// absolute and by relative path, in C, Rust and AssemblyScript. No reply carries
// anything of a file, and the compiler itself cannot tell that the file exists.
func TestStateDirectoryIsInvisible(t *testing.T) {
	root := t.TempDir()
	state := filepath.Join(root, ".run")
	builds := filepath.Join(root, "tmp")
	if err := os.MkdirAll(builds, 0o755); err != nil {
		t.Fatal(err)
	}
	files := platformState(t, state)
	store, err := artifacts.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, err := compile.New(compile.Config{Store: store, Builder: builder.New(builder.NewConfig().WithTempDir(builds))})
	if err != nil {
		t.Fatal(err)
	}
	attacks := []struct {
		name  string
		lang  string
		src   string // %[1]s: the file's absolute path, %[2]s: its path from a build directory
		built bool   // the build succeeds: the compiler did not see the file
	}{
		{"c include", "c", "#include \"%[1]s\"\n", false},
		{"c include relative", "c", "#include \"wasmbed.h\"\n#include \"%[2]s\"\n", false},
		{"c has_include", "c", "#include \"wasmbed.h\"\n#if __has_include(\"%[1]s\")\n#error the compiler sees the platform's state\n#endif\nWASMBED_EXPORT(loop) int32_t loop(void) { return 500; }\n", true},
		{"rust include_bytes", "rust", "#![no_std]\nmod wasmbed;\nconst S: &[u8] = include_bytes!(\"%[1]s\");\n#[export_name = \"loop\"]\npub extern \"C\" fn app_loop() -> i32 { S[0] as i32 }\n", false},
		{"rust include_str relative", "rust", "#![no_std]\nmod wasmbed;\nconst S: &str = include_str!(\"%[2]s\");\n#[export_name = \"loop\"]\npub extern \"C\" fn app_loop() -> i32 { S.len() as i32 }\n", false},
		{"assemblyscript import", "assemblyscript", "import \"%[1]s\";\nexport function loop(): i32 { return 500; }\n", false},
	}
	for _, file := range files {
		abs := filepath.Join(state, file)
		// A build directory is builds/wasmbed-build-*: two levels below root.
		rel := filepath.Join("..", "..", ".run", file)
		secrets := needles(t, abs)
		for _, a := range attacks {
			t.Run(file+"/"+a.name, func(t *testing.T) {
				src := fmt.Sprintf(a.src, abs, rel)
				reply, err := f.Handle(context.Background(), request(t, events.Source{Language: a.lang, Code: src}))
				if err != nil {
					t.Fatalf("Handle: %v", err)
				}
				raw, _ := json.Marshal(reply)
				for _, s := range append(secrets, state) {
					if bytes.Contains(raw, []byte(s)) {
						t.Fatalf("the reply shows %q of %s:\n%s", s, file, raw)
					}
				}
				if a.built {
					if reply.Type() != string(events.ModuleBuilt) {
						t.Fatalf("want module.built, got %s: %s", reply.Type(), reply.Data())
					}
					return
				}
				d, err := events.DecodeAs[*events.BuildFailedData](*reply, events.BuildFailed)
				if err != nil {
					t.Fatalf("want build.failed, got %s: %s", reply.Type(), reply.Data())
				}
				if d.Reason != compile.ReasonCompileError || !strings.Contains(d.Message, "build directory") {
					t.Errorf("build.failed %s %q, want a CompileError that names the problem", d.Reason, d.Message)
				}
			})
		}
	}
}
