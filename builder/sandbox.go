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
	"strings"
	"syscall"
	"time"
)

// netMode is how compilers are cut off from the network.
type netMode int

const (
	netNone   netMode = iota // the host's network: no namespace could be created
	netRoot                  // CLONE_NEWNET, as root
	netUserNS                // CLONE_NEWUSER|CLONE_NEWNET, unprivileged
)

// maxCapture bounds what is kept of one process's output; the rest is counted and dropped.
const maxCapture = 1 << 20

// sandbox is one build's private directory and the way compilers are started in it.
type sandbox struct {
	dir     string
	prlimit string
	cpu     time.Duration
	memory  int64
	net     netMode
	user    *[2]int
}

func (b *Builder) newSandbox(ctx context.Context, timeout time.Duration) (*sandbox, error) {
	prlimit, err := b.resolve(ToolPrlimit)
	if err != nil {
		return nil, err
	}
	b.netOnce.Do(func() { b.netMode = probeNetNS(prlimit, b.cfg.user != nil) })
	if b.netMode == netNone && b.cfg.requireNetNS {
		return nil, errors.New("network isolation required but no network namespace can be created")
	}
	dir, err := os.MkdirTemp(b.cfg.tempDir, "wasmbed-build-")
	if err != nil {
		return nil, fmt.Errorf("create build dir: %w", err)
	}
	sb := &sandbox{
		dir:     dir,
		prlimit: prlimit,
		// CPU time can only exceed wall time with several threads; one second of
		// slack lets the wall-clock deadline report first for single-threaded compilers.
		cpu:    timeout.Truncate(time.Second) + time.Second,
		memory: b.cfg.memoryLimit,
		net:    b.netMode,
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

// probeNetNS finds out once whether a child can get its own network namespace.
func probeNetNS(prlimit string, dropUser bool) netMode {
	try := func(mode netMode) bool {
		cmd := exec.Command(prlimit, "--version")
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		cmd.SysProcAttr = netAttr(mode)
		return cmd.Run() == nil
	}
	if os.Geteuid() == 0 && try(netRoot) {
		return netRoot
	}
	// A user namespace cannot be combined with switching to another uid.
	if !dropUser && try(netUserNS) {
		return netUserNS
	}
	return netNone
}

func netAttr(mode netMode) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	switch mode {
	case netRoot:
		attr.Cloneflags = syscall.CLONE_NEWNET
	case netUserNS:
		uid, gid := os.Getuid(), os.Getgid()
		attr.Cloneflags = syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}}
		attr.GidMappingsEnableSetgroups = false
	}
	return attr
}

// describe says what isolation the compilers ran under, for Result.Sandbox.
func (s *sandbox) describe() string {
	parts := []string{"tmpdir", "pgid-kill", fmt.Sprintf("rlimit(cpu=%s,data=%dMiB,fsize=%dMiB,core=0)", s.cpu, s.memory>>20, fileSizeLimit>>20), "env-scrubbed"}
	switch s.net {
	case netRoot:
		parts = append(parts, "netns")
	case netUserNS:
		parts = append(parts, "userns+netns")
	default:
		parts = append(parts, "host-network")
	}
	if s.user != nil {
		parts = append(parts, fmt.Sprintf("uid=%d", s.user[0]))
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

// env is the whole environment of a compiler: nothing is inherited from the builder.
func (s *sandbox) env() []string {
	return []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=" + s.dir,
		"TMPDIR=" + s.dir,
		"LANG=C.UTF-8",
		"LC_ALL=C.UTF-8",
		"NO_COLOR=1",
		"TERM=dumb",
	}
}

// outcome is how a compiler process ended.
type outcome struct {
	output   []byte
	dropped  int
	exitCode int
	signal   syscall.Signal
	cpuTime  time.Duration
	startErr error
}

// run starts argv (argv[0] an absolute path) in the build directory under prlimit,
// in its own process group, and kills the whole group when ctx ends or the
// process exits.
func (s *sandbox) run(ctx context.Context, argv []string) outcome {
	cpuSecs := int64(s.cpu / time.Second)
	args := []string{
		fmt.Sprintf("--cpu=%d:%d", cpuSecs, cpuSecs+1),
		fmt.Sprintf("--data=%d", s.memory),
		fmt.Sprintf("--fsize=%d", fileSizeLimit),
		"--core=0",
		"--",
	}
	args = append(args, argv...)
	cmd := exec.CommandContext(ctx, s.prlimit, args...)
	cmd.Dir = s.dir
	cmd.Env = s.env()
	cmd.Stdin = nil
	out := &capBuffer{max: maxCapture}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = netAttr(s.net)
	if s.user != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(s.user[0]), Gid: uint32(s.user[1]), Groups: []uint32{}}
	}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = 2 * time.Second

	err := cmd.Start()
	if err != nil {
		return outcome{startErr: err}
	}
	err = cmd.Wait()
	// Reap anything the compiler left behind in its group.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)

	o := outcome{output: out.buf.Bytes(), dropped: out.dropped}
	if ps := cmd.ProcessState; ps != nil {
		o.exitCode = ps.ExitCode()
		o.cpuTime = ps.UserTime() + ps.SystemTime()
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			o.signal = ws.Signal()
		}
	} else if err != nil {
		o.startErr = err
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
