package builder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// maxCapture bounds what is kept of one process's output; the rest is counted and dropped.
const maxCapture = 1 << 20

// Inside the sandbox.
const (
	// sandboxDir is where the build directory appears to the compilers.
	sandboxDir = "/build"
	// sandboxUID and sandboxGID are the compilers' identity in their user namespace
	// ("nobody"), whoever the builder runs as.
	sandboxUID = 65534
	sandboxGID = 65534
	// tmpSize caps the private /tmp (a tmpfs, so memory).
	tmpSize = 64 << 20
	// seccompFD is the descriptor bwrap reads the seccomp filter from.
	seccompFD = 3
)

// sandbox is one build's private directory and the way compilers are started in it.
type sandbox struct {
	dir     string
	prlimit string
	bwrap   string
	seccomp []byte
	cpu     time.Duration
	memory  int64
	user    *[2]int
}

func (b *Builder) newSandbox(timeout time.Duration) (*sandbox, error) {
	prlimit, err := b.resolve(ToolPrlimit)
	if err != nil {
		return nil, err
	}
	bwrap, err := b.resolve(ToolBwrap)
	if err != nil {
		return nil, err
	}
	filter, err := seccompFilter()
	if err != nil {
		return nil, &ToolchainError{Tool: "sandbox", Err: err}
	}
	dir, err := os.MkdirTemp(b.cfg.tempDir, "wasmbed-build-")
	if err != nil {
		return nil, fmt.Errorf("create build dir: %w", err)
	}
	sb := &sandbox{
		dir:     dir,
		prlimit: prlimit,
		bwrap:   bwrap,
		seccomp: filter,
		// CPU time can only exceed wall time with several threads; one second of
		// slack lets the wall-clock deadline report first for single-threaded compilers.
		cpu:    timeout.Truncate(time.Second) + time.Second,
		memory: b.cfg.memoryLimit,
		user:   b.cfg.user,
	}
	if sb.user != nil {
		if err := os.Chown(dir, sb.user[0], sb.user[1]); err != nil {
			sb.close()
			return nil, fmt.Errorf("chown build dir: %w", err)
		}
	}
	return sb, nil
}

// describe says what isolation the compilers ran under, for Result.Sandbox.
func (s *sandbox) describe() string {
	parts := []string{
		"bwrap(userns,mountns,pidns,netns,ipcns,utsns,cgroupns)",
		fmt.Sprintf("uid=%d", sandboxUID),
		"ro-toolchain-only", "private-tmp", "seccomp", "no-new-privs", "no-caps",
		fmt.Sprintf("rlimit(cpu=%s,data=%dMiB,fsize=%dMiB,core=0)", s.cpu, s.memory>>20, fileSizeLimit>>20),
		"env-scrubbed", "pgid-kill",
	}
	if s.user != nil {
		parts = append(parts, fmt.Sprintf("host-uid=%d", s.user[0]))
	}
	return strings.Join(parts, ",")
}

// writeFile writes a file with a builder-chosen name into the build directory.
func (s *sandbox) writeFile(name string, content []byte) error {
	if name != filepath.Base(name) {
		return fmt.Errorf("write %q: not a plain file name", name)
	}
	p := filepath.Join(s.dir, name)
	if err := os.WriteFile(p, content, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if s.user != nil {
		if err := os.Chown(p, s.user[0], s.user[1]); err != nil {
			return fmt.Errorf("chown %s: %w", name, err)
		}
	}
	return nil
}

// readOutput reads the module the compilers wrote, refusing one over max bytes.
func (s *sandbox) readOutput(name string, max int) ([]byte, error) {
	p := filepath.Join(s.dir, name)
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, &ToolchainError{Tool: "output", Err: fmt.Errorf("no module written: %w", err)}
	}
	if !fi.Mode().IsRegular() {
		return nil, &ToolchainError{Tool: "output", Err: errors.New("module is not a regular file")}
	}
	if fi.Size() > int64(max) {
		return nil, &LimitError{Limit: LimitOutputSize, Max: int64(max), Got: fi.Size()}
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read module: %w", err)
	}
	if len(data) > max {
		return nil, &LimitError{Limit: LimitOutputSize, Max: int64(max), Got: int64(len(data))}
	}
	return data, nil
}

func (s *sandbox) close() {
	_ = os.RemoveAll(s.dir)
}

// env is the whole environment of a compiler, and of the bwrap processes around
// it (the sandbox's pid 1 shows it in /proc/1/environ): nothing is inherited.
func (s *sandbox) env() []string {
	return []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=" + sandboxDir,
		"TMPDIR=" + sandboxDir,
		"LANG=C.UTF-8",
		"LC_ALL=C.UTF-8",
		"NO_COLOR=1",
		"TERM=dumb",
	}
}

// bwrapArgs are the arguments of bwrap that run argv in its own user, mount, pid,
// network, IPC, UTS and cgroup namespaces, as an unprivileged uid without
// capabilities, under the seccomp filter, seeing only v read-only, the build
// directory read-write at sandboxDir, a private /tmp, a fresh /proc and a minimal /dev.
func (s *sandbox) bwrapArgs(v *view, argv []string) []string {
	args := []string{
		"--unshare-all", "--unshare-user", "--disable-userns",
		"--uid", strconv.Itoa(sandboxUID), "--gid", strconv.Itoa(sandboxGID),
		"--hostname", "wasmbed-build",
		"--die-with-parent", "--new-session", "--cap-drop", "ALL",
		"--seccomp", strconv.Itoa(seccompFD),
		"--proc", "/proc", "--dev", "/dev",
		"--size", strconv.Itoa(tmpSize), "--tmpfs", "/tmp",
		"--bind", s.dir, sandboxDir,
	}
	args = append(args, v.args()...)
	args = append(args, "--remount-ro", "/", "--chdir", sandboxDir, "--")
	return append(args, argv...)
}

// outcome is how a compiler process ended.
type outcome struct {
	output   []byte
	dropped  int
	exitCode int
	signal   syscall.Signal
	cpuTime  time.Duration
	startErr error
	// sandboxErr is bwrap's message when it could not set up the sandbox.
	sandboxErr string
}

// run starts argv (argv[0] an absolute path in v) in the sandbox under prlimit,
// in its own process group, and kills the whole group when ctx ends or the
// process exits; bwrap kills everything in the sandbox when it dies.
func (s *sandbox) run(ctx context.Context, v *view, argv []string) outcome {
	cpuSecs := int64(s.cpu / time.Second)
	args := []string{
		fmt.Sprintf("--cpu=%d:%d", cpuSecs, cpuSecs+1),
		fmt.Sprintf("--data=%d", s.memory),
		fmt.Sprintf("--fsize=%d", fileSizeLimit),
		"--core=0",
		"--", s.bwrap,
	}
	args = append(args, s.bwrapArgs(v, argv)...)
	filter, err := s.filterFile()
	if err != nil {
		return outcome{startErr: err}
	}
	defer filter.Close()

	cmd := exec.CommandContext(ctx, s.prlimit, args...)
	cmd.Dir = s.dir
	cmd.Env = s.env()
	cmd.Stdin = nil
	out := &capBuffer{max: maxCapture}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.ExtraFiles = []*os.File{filter} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if s.user != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(s.user[0]), Gid: uint32(s.user[1]), Groups: []uint32{}}
	}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = 2 * time.Second

	if err := cmd.Start(); err != nil {
		return outcome{startErr: err}
	}
	err = cmd.Wait()
	// Reap anything left behind in the group.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	return ended(cmd.ProcessState, err, out)
}

// filterFile returns the read end of a pipe holding the seccomp filter.
func (s *sandbox) filterFile() (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("seccomp pipe: %w", err)
	}
	defer w.Close()
	// The filter (a few hundred bytes) fits in the pipe's buffer.
	if _, err := w.Write(s.seccomp); err != nil {
		r.Close()
		return nil, fmt.Errorf("seccomp pipe: %w", err)
	}
	return r, nil
}

// ended reads how the sandbox ended. bwrap exits with the compiler's status, or
// 128+n when a signal n killed it, as a shell does.
func ended(ps *os.ProcessState, err error, out *capBuffer) outcome {
	o := outcome{output: out.buf.Bytes(), dropped: out.dropped}
	if ps == nil {
		o.startErr = err
		return o
	}
	o.exitCode = ps.ExitCode()
	o.cpuTime = ps.UserTime() + ps.SystemTime()
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		o.signal = ws.Signal()
	} else if o.exitCode > 128 && o.exitCode < 128+65 {
		o.signal = syscall.Signal(o.exitCode - 128)
	}
	if o.exitCode != 0 && bytes.HasPrefix(o.output, []byte("bwrap: ")) {
		line, _, _ := bytes.Cut(o.output, []byte("\n"))
		o.sandboxErr = string(line)
	}
	return o
}

// capBuffer keeps the first max bytes written and counts the rest.
type capBuffer struct {
	buf     bytes.Buffer
	max     int
	dropped int
}

func (c *capBuffer) Write(p []byte) (int, error) {
	room := c.max - c.buf.Len()
	if room < len(p) {
		if room > 0 {
			c.buf.Write(p[:room])
		}
		c.dropped += len(p) - max(room, 0)
		return len(p), nil
	}
	c.buf.Write(p)
	return len(p), nil
}

var _ io.Writer = (*capBuffer)(nil)
