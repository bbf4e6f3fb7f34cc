package builder_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/wasmbed/wasmbed/builder"
)

// probeReport is what testdata/probe prints.
type probeReport struct {
	UID, GID   int
	Status     map[string]string
	Env        []string
	Pid1Env    string
	Pids       []int
	Kill       string
	Root       []string
	Reads      map[string]string
	Dial       string
	DialOut    string
	InetSocket string
	Unshare    string
	Mount      string
	WriteRoot  string
	WriteSelf  string
	WriteTmp   string
	WriteBuild string
	Hostname   string
}

var (
	probeOnce sync.Once
	probeDir  string
	probePath string
	probeErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if probeDir != "" {
		_ = os.RemoveAll(probeDir)
	}
	os.Exit(code)
}

// buildProbe builds testdata/probe (static, so it needs no library in the sandbox)
// into a directory every user can read.
func buildProbe(t *testing.T) string {
	t.Helper()
	probeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wasmbed-probe-")
		if err == nil {
			probeDir = dir
			err = os.Chmod(dir, 0o755)
		}
		if err != nil {
			probeErr = err
			return
		}
		probePath = filepath.Join(dir, "probe")
		cmd := exec.Command("go", "build", "-o", probePath, "./testdata/probe")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			probeErr = fmt.Errorf("go build probe: %v\n%s", err, out)
		}
	})
	if probeErr != nil {
		t.Fatal(probeErr)
	}
	return probePath
}

// runProbe runs the probe, in the sandbox when b is not nil.
func runProbe(t *testing.T, b *builder.Builder, args ...string) probeReport {
	t.Helper()
	argv := append([]string{buildProbe(t)}, args...)
	var out []byte
	var err error
	if b != nil {
		var code int
		out, code, err = b.RunInSandbox(context.Background(), argv)
		if err == nil && code != 0 {
			err = fmt.Errorf("exit status %d", code)
		}
	} else {
		out, err = exec.Command(argv[0], argv[1:]...).Output()
	}
	if err != nil {
		t.Fatalf("probe: %v\n%s", err, out)
	}
	var r probeReport
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("probe output: %v\n%s", err, out)
	}
	return r
}

// sandboxConfigs are the ways the builder starts sandboxes here: as its own user
// (root on this machine and in CI, non-root in the image), and as root switching
// to an unprivileged host user first (WithUser).
func sandboxConfigs() map[string]builder.Config {
	cfgs := map[string]builder.Config{"builder's user": builder.NewConfig()}
	if os.Geteuid() == 0 {
		cfgs["root dropping to uid 65534"] = builder.NewConfig().WithUser(65534, 65534)
	}
	return cfgs
}

// TestSandboxIsolation runs a probe through the sandbox runner of the compilers and
// checks what it can see and do: no file outside its view and the build directory,
// no network, no other process, no environment of the builder, no privilege.
func TestSandboxIsolation(t *testing.T) {
	const secret = "wasmbed-platform-secret-5b0d1e"
	t.Setenv("WASMBED_ADMIN_TOKEN", secret)
	stateDir := t.TempDir()
	secretFile := filepath.Join(stateDir, "admin.token")
	if err := os.WriteFile(secretFile, []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(stateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	args := []string{"-dial", l.Addr().String(), "-kill", strconv.Itoa(os.Getpid()), "-read", secretFile, "-read", "/etc/passwd"}

	// Outside the sandbox the probe sees all of it: the checks below can fail. It
	// tries no escape there (-try-escape), as it would be no escape.
	host := runProbe(t, nil, args...)
	if host.Reads[secretFile] != secret || host.Dial != "" || host.Kill != "" || !slices.Contains(host.Env, "WASMBED_ADMIN_TOKEN="+secret) {
		t.Fatalf("the probe does not see the host outside the sandbox: %+v", host)
	}

	wantEnv := []string{"HOME=/build", "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "NO_COLOR=1", "PATH=/usr/local/bin:/usr/bin:/bin", "PWD=/build", "TERM=dumb", "TMPDIR=/build"}
	checks := []struct {
		name string
		ok   func(r probeReport) bool
	}{
		{"runs as an unprivileged uid and gid", func(r probeReport) bool { return r.UID == 65534 && r.GID == 65534 }},
		{"has no capabilities", func(r probeReport) bool {
			return r.Status["CapEff"] == "0000000000000000" && r.Status["CapPrm"] == "0000000000000000"
		}},
		{"has no-new-privileges", func(r probeReport) bool { return r.Status["NoNewPrivs"] == "1" }},
		{"runs under a seccomp filter", func(r probeReport) bool { return r.Status["Seccomp"] == "2" }},
		{"gets only the sandbox's environment", func(r probeReport) bool { e := slices.Clone(r.Env); slices.Sort(e); return slices.Equal(e, wantEnv) }},
		{"cannot read the builder's environment through /proc/1/environ", func(r probeReport) bool {
			return !strings.Contains(r.Pid1Env, secret) && !strings.Contains(r.Pid1Env, "GOPATH") && !strings.Contains(r.Pid1Env, "KUBEBUILDER")
		}},
		{"sees no other process (PID namespace)", func(r probeReport) bool { return len(r.Pids) <= 2 && !slices.Contains(r.Pids, os.Getpid()) }},
		{"cannot signal the builder", func(r probeReport) bool { return strings.Contains(r.Kill, "ESRCH") }},
		{"sees only its view, the build dir, /dev, /proc and /tmp at /", func(r probeReport) bool {
			return slices.Equal(r.Root, []string{"build", "dev", "proc", "tmp"})
		}},
		{"cannot read a secret outside the build dir", func(r probeReport) bool { return strings.Contains(r.Reads[secretFile], "ENOENT") }},
		{"cannot read /etc/passwd", func(r probeReport) bool { return strings.Contains(r.Reads["/etc/passwd"], "ENOENT") }},
		{"cannot connect to a port of the host", func(r probeReport) bool { return r.Dial != "" }},
		{"cannot connect out", func(r probeReport) bool { return r.DialOut != "" }},
		{"cannot open an internet socket", func(r probeReport) bool { return strings.Contains(r.InetSocket, "EAFNOSUPPORT") }},
		{"cannot create a user namespace", func(r probeReport) bool { return strings.Contains(r.Unshare, "EPERM") }},
		{"cannot mount", func(r probeReport) bool { return strings.Contains(r.Mount, "EPERM") }},
		{"cannot write the root", func(r probeReport) bool { return strings.Contains(r.WriteRoot, "EROFS") }},
		{"cannot write its toolchain", func(r probeReport) bool { return r.WriteSelf != "" }},
		{"can write its private /tmp", func(r probeReport) bool { return r.WriteTmp == "" }},
		{"can write the build dir", func(r probeReport) bool { return r.WriteBuild == "" }},
		{"has its own host name", func(r probeReport) bool { return r.Hostname == "wasmbed-build" }},
	}
	for name, cfg := range sandboxConfigs() {
		t.Run(name, func(t *testing.T) {
			r := runProbe(t, builder.New(cfg), append(args, "-try-escape")...)
			for _, c := range checks {
				if !c.ok(r) {
					t.Errorf("the sandboxed probe %s: no\n%+v", c.name, r)
				}
			}
		})
	}
}

// TestBuildFailsWithoutNamespaces runs a build where no namespace can be created
// (this test again, in a user namespace that allows no other): the build fails
// with the sandbox's reason, and no compiler runs unsandboxed.
func TestBuildFailsWithoutNamespaces(t *testing.T) {
	if os.Getenv("WASMBED_TEST_NO_USERNS") == "1" {
		_, err := builder.Build(context.Background(), builder.Request{Language: builder.WAT, Source: readExample(t, builder.WAT, "blink")})
		var te *builder.ToolchainError
		if !errors.As(err, &te) || te.Tool != "bwrap" || builder.IsUserError(err) {
			t.Fatalf("err = %v (%T), want a ToolchainError from bwrap", err, err)
		}
		fmt.Printf("build error: %v\n", err)
		return
	}
	bwrap, err := exec.LookPath("bwrap")
	if err != nil {
		t.Fatal("bwrap not installed (apt-get install bubblewrap)")
	}
	cmd := exec.Command(bwrap, "--unshare-user", "--disable-userns", "--dev-bind", "/", "/",
		"--setenv", "WASMBED_TEST_NO_USERNS", "1", "--",
		os.Args[0], "-test.run", "^TestBuildFailsWithoutNamespaces$", "-test.v", "-test.count=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the build without namespaces: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "build error: toolchain bwrap failed: cannot create the build sandbox (compilers never run outside it): bwrap: ") {
		t.Fatalf("no clear error from the build:\n%s", out)
	}
	t.Logf("%s", out)
}
