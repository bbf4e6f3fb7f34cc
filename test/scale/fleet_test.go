package scale_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/wasmbed/wasmbed/api/boards"
	"github.com/wasmbed/wasmbed/gateway"
	"github.com/wasmbed/wasmbed/internal/devicesim"
	"github.com/wasmbed/wasmbed/internal/pki"
	"github.com/wasmbed/wasmbed/internal/wasmhost"
)

// The benchmark runs its virtual devices in processes of their own, so that neither
// their file descriptors nor their CPU count against the platform's: it re-executes
// its own test binary with fleetEnv set, and the child runs a fleet (runFleetChild)
// described by these variables instead of the tests.
const (
	fleetEnv       = "WASMBED_SCALE_FLEET" // "1": run as a device fleet
	fleetGateway   = "WASMBED_SCALE_FLEET_GATEWAY"
	fleetCADir     = "WASMBED_SCALE_FLEET_CA_DIR"
	fleetKey       = "WASMBED_SCALE_FLEET_DEPLOYMENT_KEY"
	fleetNamespace = "WASMBED_SCALE_FLEET_NAMESPACE"
	fleetFirst     = "WASMBED_SCALE_FLEET_FIRST"
	fleetCount     = "WASMBED_SCALE_FLEET_COUNT"
)

// fleetCallBudget is the wall-clock compute and time budget of a call into a fleet
// device's module.
const fleetCallBudget = 30 * time.Second

// fleetSpec is one child process's devices: sim-First .. sim-(First+Count-1) of
// Namespace, connecting to Gateway with certificates the CA in CADir issues, checking
// manifests with DeploymentKey.
type fleetSpec struct {
	Gateway, CADir, Namespace string
	DeploymentKey             []byte
	First, Count              int
}

// runFleetChild runs the fleet the environment describes until the parent closes its
// stdin (it ended, or it stops the fleet) or sends SIGTERM. It returns the exit code.
func runFleetChild() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := fleetChild(log); err != nil {
		log.Error("device fleet", "err", err)
		return 1
	}
	return 0
}

func fleetChild(log *slog.Logger) error {
	// Each device holds a connection: take every descriptor the hard limit allows.
	nofile, err := gateway.RaiseFileLimit()
	if err != nil {
		return err
	}
	first, err := strconv.Atoi(os.Getenv(fleetFirst))
	if err != nil {
		return fmt.Errorf("%s: %w", fleetFirst, err)
	}
	count, err := strconv.Atoi(os.Getenv(fleetCount))
	if err != nil {
		return fmt.Errorf("%s: %w", fleetCount, err)
	}
	if uint64(count)+64 > nofile {
		return fmt.Errorf("%d devices do not fit the file-descriptor limit %d", count, nofile)
	}
	key, err := hex.DecodeString(os.Getenv(fleetKey))
	if err != nil {
		return fmt.Errorf("%s: %w", fleetKey, err)
	}
	ca, err := pki.LoadCA(os.Getenv(fleetCADir))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	// The parent holds our stdin open while it wants the fleet: EOF stops it, also when
	// the parent died without a word.
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	// The fleets are the load, not what is measured: thousands of devices starting their
	// module at once on a busy machine must not fail it for running out of a wall-clock
	// call budget (devicesim's is 1 s; at 10,000 devices some starts took longer and
	// failed the rollout with "fuel exhausted").
	b, err := boards.Lookup("virtual")
	if err != nil {
		return err
	}
	host, err := wasmhost.NewHost(ctx, wasmhost.NewHostConfig().WithMemoryLimitPages(uint32(max(1, b.AppMemoryBytes>>16))).
		WithCallBudget(fleetCallBudget).WithTimeBudget(fleetCallBudget))
	if err != nil {
		return err
	}
	defer host.Close(context.Background())
	fleet, err := devicesim.NewFleet(ctx, devicesim.Config{
		Gateway: os.Getenv(fleetGateway), ServerName: "localhost", CA: ca,
		Namespace: os.Getenv(fleetNamespace), NamePrefix: "sim-", First: first, Count: count,
		Board: "virtual", DeploymentKey: key, Logger: log, Host: host,
	})
	if err != nil {
		return err
	}
	defer fleet.Close(context.Background())
	fmt.Println("ready") // certificates issued; the parent counts sessions at the gateway
	return fleet.Run(ctx)
}

// fleetProc is a running child fleet.
type fleetProc struct {
	spec   fleetSpec
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *tail
	done   chan struct{} // closed when the process has exited
	err    error         // its exit, once done
}

// startFleet starts a child fleet and waits until it has issued its certificates.
func startFleet(ctx context.Context, spec fleetSpec) (*fleetProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("device fleet: %w", err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), fleetEnv+"=1",
		fleetGateway+"="+spec.Gateway, fleetCADir+"="+spec.CADir, fleetNamespace+"="+spec.Namespace,
		fleetKey+"="+hex.EncodeToString(spec.DeploymentKey),
		fleetFirst+"="+strconv.Itoa(spec.First), fleetCount+"="+strconv.Itoa(spec.Count))
	f := &fleetProc{spec: spec, cmd: cmd, stderr: &tail{max: 64 << 10}, done: make(chan struct{})}
	cmd.Stderr = f.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("device fleet: %w", err)
	}
	if f.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("device fleet: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("device fleet: start %s: %w", exe, err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "ready" {
				close(ready)
			}
		}
		f.err = cmd.Wait()
		close(f.done)
	}()
	select {
	case <-ready:
		return f, nil
	case <-f.done:
		return nil, fmt.Errorf("device fleet %s: exited before it was ready: %v\n%s", f, f.err, f.stderr)
	case <-ctx.Done():
		f.stop()
		return nil, fmt.Errorf("device fleet %s: not ready: %w\n%s", f, ctx.Err(), f.stderr)
	}
}

func (f *fleetProc) String() string {
	return fmt.Sprintf("sim-%d..sim-%d -> %s (pid %d)", f.spec.First, f.spec.First+f.spec.Count-1, f.spec.Gateway, f.cmd.Process.Pid)
}

// exited returns an error with the child's stderr if it exited before it was stopped.
func (f *fleetProc) exited() error {
	select {
	case <-f.done:
		return fmt.Errorf("device fleet %s exited: %v\n%s", f, f.err, f.stderr)
	default:
		return nil
	}
}

// stop closes the child's stdin, which stops it, and kills it if it has not exited 10 s
// later. It returns once the process is gone.
func (f *fleetProc) stop() {
	_ = f.stdin.Close()
	select {
	case <-f.done:
		return
	case <-time.After(10 * time.Second):
	}
	_ = f.cmd.Process.Kill()
	<-f.done
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
