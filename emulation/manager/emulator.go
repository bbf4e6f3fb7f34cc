package manager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmbed/wasmbed/api/boards"
)

// Defaults of EmulatorConfig.
const (
	// DefaultConsoleBytes is how much of an emulator's console output is kept.
	DefaultConsoleBytes = 64 << 10
	// DefaultRestartMin and DefaultRestartMax bound the backoff between restarts of a
	// crashed emulator; it doubles after each crash and resets once a run lasted
	// DefaultStableAfter.
	DefaultRestartMin  = time.Second
	DefaultRestartMax  = time.Minute
	DefaultStableAfter = time.Minute
	// DefaultGracePeriod is how long a stopping emulator has between SIGTERM and SIGKILL.
	DefaultGracePeriod = 5 * time.Second
)

// EmulatorConfig describes one supervised emulator process. Zero durations take the
// defaults above.
type EmulatorConfig struct {
	// Board and Firmware are what runs; Port is the loopback TCP port of its UART (0 for
	// a board whose UART is only its console, on the process's stdout).
	Board    boards.Board
	Firmware string
	Port     int
	// Runner builds the command line.
	Runner Runner
	// Prepare, when set, runs before every start of the process (the first and each
	// restart), e.g. to provision the image afresh; an error counts as a crashed run.
	Prepare func(ctx context.Context) error
	// ConsoleBytes bounds the kept console output (stdout and stderr together).
	ConsoleBytes                        int
	RestartMin, RestartMax, StableAfter time.Duration
	GracePeriod                         time.Duration
	Logger                              *slog.Logger
	Metrics                             *Metrics
}

// Emulator supervises one emulator process: it restarts it with an exponential backoff
// when it exits, keeps its console output, and stops it with SIGTERM then SIGKILL.
type Emulator struct {
	cfg      EmulatorConfig
	argv     []string
	console  *ring
	log      *slog.Logger
	restarts atomic.Int64
	running  atomic.Bool
	cancel   context.CancelFunc
	done     chan struct{}

	mu  sync.Mutex
	pid int
	err error // last exit
}

// StartEmulator checks the command line and starts supervising the process until ctx is
// done or Stop is called. An error means the board cannot run at all (unknown emulator,
// Renode missing...); a process that fails later is restarted.
func StartEmulator(ctx context.Context, cfg EmulatorConfig) (*Emulator, error) {
	if cfg.ConsoleBytes <= 0 {
		cfg.ConsoleBytes = DefaultConsoleBytes
	}
	if cfg.RestartMin <= 0 {
		cfg.RestartMin = DefaultRestartMin
	}
	if cfg.RestartMax < cfg.RestartMin {
		cfg.RestartMax = max(DefaultRestartMax, cfg.RestartMin)
	}
	if cfg.StableAfter <= 0 {
		cfg.StableAfter = DefaultStableAfter
	}
	if cfg.GracePeriod <= 0 {
		cfg.GracePeriod = DefaultGracePeriod
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = discardMetrics
	}
	if cfg.Runner.lookPath == nil {
		cfg.Runner = NewRunner().WithCommand(cfg.Runner.command)
	}
	argv, err := cfg.Runner.commandLine(cfg.Board, cfg.Firmware, cfg.Port)
	if err != nil {
		return nil, err
	}
	if err := cfg.Runner.prepare(cfg.Board); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	e := &Emulator{cfg: cfg, argv: argv, console: newRing(cfg.ConsoleBytes), cancel: cancel, done: make(chan struct{}),
		log: cfg.Logger.With("board", cfg.Board.Name, "uart_port", cfg.Port)}
	go e.supervise(ctx)
	return e, nil
}

// CommandLine returns the emulator's command line, program first.
func (e *Emulator) CommandLine() []string { return append([]string(nil), e.argv...) }

// ConsoleLog returns the last console output of the emulator (all runs, oldest first),
// bounded by EmulatorConfig.ConsoleBytes.
func (e *Emulator) ConsoleLog() []byte { return e.console.Bytes() }

// Restarts returns how many times the process was restarted after exiting.
func (e *Emulator) Restarts() int { return int(e.restarts.Load()) }

// Running reports whether the process is running now.
func (e *Emulator) Running() bool { return e.running.Load() }

// PID returns the process id of the current run, or 0.
func (e *Emulator) PID() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pid
}

// Done is closed once the emulator is stopped and its process is gone.
func (e *Emulator) Done() <-chan struct{} { return e.done }

// Stop terminates the process (SIGTERM to its process group, SIGKILL after the grace
// period) and waits for it. It is idempotent.
func (e *Emulator) Stop() {
	e.cancel()
	<-e.done
}

func (e *Emulator) supervise(ctx context.Context) {
	defer close(e.done)
	backoff := e.cfg.RestartMin
	for {
		started := time.Now()
		err := e.runOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) >= e.cfg.StableAfter {
			backoff = e.cfg.RestartMin
		}
		e.restarts.Add(1)
		e.cfg.Metrics.restarts.WithLabelValues(e.cfg.Board.Name).Inc()
		e.log.Warn("emulator exited, restarting", "err", err, "ran", time.Since(started).Round(time.Millisecond), "restart_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, e.cfg.RestartMax)
	}
}

// runOnce runs the process until it exits or ctx is done, then makes sure it and its
// process group are gone.
func (e *Emulator) runOnce(ctx context.Context) error {
	if e.cfg.Prepare != nil {
		if err := e.cfg.Prepare(ctx); err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
	}
	cmd := exec.Command(e.argv[0], e.argv[1:]...)
	cmd.Stdout, cmd.Stderr = e.console, e.console
	// Renode's console monitor reads stdin: give it one that stays open (never EOF)
	// until the run ends.
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("emulator stdin: %w", err)
	}
	defer stdinW.Close()
	cmd.Stdin = stdinR
	setProcessGroup(cmd)
	// Output copying must not outlive the process by much (a grandchild holding the
	// pipe open).
	cmd.WaitDelay = e.cfg.GracePeriod
	fmt.Fprintf(e.console, "--- wasmbed: starting %s\n", e.argv[0])
	if err := cmd.Start(); err != nil {
		stdinR.Close()
		fmt.Fprintf(e.console, "--- wasmbed: start failed: %v\n", err)
		return fmt.Errorf("start %s: %w", e.argv[0], err)
	}
	stdinR.Close()
	e.mu.Lock()
	e.pid = cmd.Process.Pid
	e.mu.Unlock()
	e.running.Store(true)
	e.cfg.Metrics.running.WithLabelValues(e.cfg.Board.Name).Inc()
	e.log.Info("emulator started", "pid", cmd.Process.Pid, "argv", e.argv)

	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err = <-exited:
	case <-ctx.Done():
		err = e.terminate(cmd, exited)
	}
	// Whatever the leader did, no child of the group may outlive the run.
	killGroup(cmd, true)
	e.running.Store(false)
	e.cfg.Metrics.running.WithLabelValues(e.cfg.Board.Name).Dec()
	e.mu.Lock()
	e.pid, e.err = 0, err
	e.mu.Unlock()
	if err == nil {
		err = errors.New("exited with status 0")
	}
	fmt.Fprintf(e.console, "--- wasmbed: %s: %v\n", e.argv[0], err)
	return err
}

// terminate sends SIGTERM to the process group, then SIGKILL after the grace period.
func (e *Emulator) terminate(cmd *exec.Cmd, exited <-chan error) error {
	killGroup(cmd, false)
	t := time.NewTimer(e.cfg.GracePeriod)
	defer t.Stop()
	select {
	case err := <-exited:
		return err
	case <-t.C:
		e.log.Warn("emulator ignored SIGTERM, killing it", "grace", e.cfg.GracePeriod)
		killGroup(cmd, true)
		return <-exited
	}
}
