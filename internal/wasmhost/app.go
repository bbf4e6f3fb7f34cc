package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/wasmbed/wasmbed/api/abi"
	"github.com/wasmbed/wasmbed/api/protocol"
)

// An application's state is a device's state (protocol.AppState), as the firmware's
// engine reports it: Running, then Stopped (the host stopped it: context cancelled),
// Exited (loop returned a negative delay) or Failed (a trap, or an exhausted budget).

// ErrBudgetExceeded is the cause of a call cut short by its compute budget (the stand-in
// for a device's fuel); the TrapError that reports it wraps it.
var ErrBudgetExceeded = errors.New(abi.ReasonFuel)

// ErrTimeBudget is the cause of a call that ran past its wall-clock time budget, sleep_ms
// and host calls included (HostConfig.WithTimeBudget); the TrapError wraps it.
var ErrTimeBudget = errors.New(abi.ReasonTimeBudget)

// ErrNotRunning is returned when calling into an application that has already exited,
// failed or been stopped.
var ErrNotRunning = errors.New("application is not running")

// TrapError reports that an application trapped or ran out of budget; the application
// is Failed. Reason is the short text a device puts in AppStatus.
//
//	var trap *wasmhost.TrapError
//	if errors.As(err, &trap) {
//		fmt.Println(trap.Func, trap.Reason) // "loop", "out of bounds memory access"
//	}
type TrapError struct {
	// Func is where it happened: "start", "setup" or "loop".
	Func string
	// Reason is a one-line description such as "unreachable" or "fuel exhausted".
	Reason string
	// Err is wazero's error, with the wasm stack trace.
	Err error
}

func (e *TrapError) Error() string { return e.Func + ": " + e.Reason }

// Unwrap returns the underlying error.
func (e *TrapError) Unwrap() error { return e.Err }

// Status is an application's state, why it is Failed, and how many loop calls returned.
type Status struct {
	State  protocol.AppState
	Reason string
	Loops  uint64
}

// App is one running instance of a module on a board. Setup, Loop and Run must be
// called from one goroutine at a time; Status may be called from any.
type App struct {
	host     *Host
	board    Board
	clock    Clock
	started  time.Time
	hasSetup bool
	mod      api.Module
	setup    api.Function
	loop     api.Function
	didSetup bool

	// budget of the call in progress, for sleep_ms to pause.
	budget *budget
	// callStart is when the call in progress started, on the board's clock; overslept
	// how much longer than asked its sleeps took (see overTime).
	callStart time.Time
	overslept time.Duration
	limits    limits

	mu     sync.Mutex
	state  protocol.AppState
	reason string
	loops  uint64
}

// Status returns the application's current status.
func (a *App) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Status{State: a.state, Reason: a.reason, Loops: a.loops}
}

func (a *App) running() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state == protocol.StateRunning
}

func (a *App) finish(s protocol.AppState, reason string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.state == protocol.StateRunning {
		a.state, a.reason = s, reason
	}
}

// Setup calls the module's setup export once, if it has one. Calling it again, or not
// at all before Loop, is allowed: Loop runs setup first when it has not run.
func (a *App) Setup(ctx context.Context) error {
	if !a.running() {
		return ErrNotRunning
	}
	if a.didSetup {
		return nil
	}
	a.didSetup = true
	if a.setup == nil {
		return nil
	}
	_, err := a.call(ctx, "setup", func(ctx context.Context) ([]uint64, error) {
		return a.setup.Call(ctx)
	})
	return err
}

// Loop makes one call to loop and returns the delay it asked for. exited is true when
// loop returned a negative value: the application is then Exited. An error means it
// failed (a *TrapError) or ctx was done (it is then Stopped).
func (a *App) Loop(ctx context.Context) (delay time.Duration, exited bool, err error) {
	if err := a.Setup(ctx); err != nil {
		return 0, false, err
	}
	res, err := a.call(ctx, "loop", func(ctx context.Context) ([]uint64, error) {
		return a.loop.Call(ctx)
	})
	if err != nil {
		return 0, false, err
	}
	a.mu.Lock()
	a.loops++
	a.mu.Unlock()
	ms := api.DecodeI32(res[0])
	if ms < 0 {
		a.finish(protocol.StateExited, "")
		return 0, true, nil
	}
	return time.Duration(ms) * time.Millisecond, false, nil
}

// Run drives the application: setup, then loop until it exits or fails, waiting the
// delay loop returns on the board's clock between calls. When ctx is done it stops the
// application. It returns the final status.
func (a *App) Run(ctx context.Context) Status {
	for {
		delay, exited, err := a.Loop(ctx)
		if err != nil || exited {
			return a.Status()
		}
		if err := a.clock.Sleep(ctx, delay); err != nil {
			a.finish(protocol.StateStopped, "")
			return a.Status()
		}
	}
}

// Close stops the application if it is running and releases its instance.
func (a *App) Close(ctx context.Context) error {
	a.finish(protocol.StateStopped, "")
	if err := a.mod.Close(ctx); err != nil {
		return fmt.Errorf("close app: %w", err)
	}
	return nil
}

// ReadMemory copies n bytes at offset from the application's memory 0; ok is false when
// the range is out of bounds or the module has no memory. It is for tools and tests.
func (a *App) ReadMemory(offset, n uint32) (data []byte, ok bool) {
	mem := memoryOf(a.mod)
	if mem == nil {
		return nil, false
	}
	b, ok := mem.Read(offset, n)
	if !ok {
		return nil, false
	}
	return append([]byte(nil), b...), true
}

type appKey struct{}

// call runs f under the run budget with the application in the context for the host
// functions, and turns a failure into the application's final state.
func (a *App) call(ctx context.Context, name string, f func(context.Context) ([]uint64, error)) ([]uint64, error) {
	if err := ctx.Err(); err != nil {
		a.finish(protocol.StateStopped, "")
		return nil, err
	}
	callCtx, cancel := context.WithCancelCause(context.WithValue(ctx, appKey{}, a))
	defer cancel(nil)
	a.callStart, a.overslept = a.clock.Now(), 0
	a.reportDrops(a.callStart)
	a.budget = startBudget(a.host.cfg.callBudget, cancel)
	res, err := f(callCtx)
	a.budget.stop()
	a.budget = nil
	if err == nil && a.overTime(a.clock.Now(), 0) {
		// Returned late: the compute budget bounds the time since the last host call, not
		// the sum, as fuel on a device.
		err = timeTrap
	}
	if err == nil {
		return res, nil
	}
	if ctx.Err() != nil { // the caller stopped us, not a trap
		a.finish(protocol.StateStopped, "")
		return nil, fmt.Errorf("%s: %w", name, ctx.Err())
	}
	trap := &TrapError{Func: name, Reason: trapReason(err), Err: err}
	if errors.Is(context.Cause(callCtx), ErrBudgetExceeded) {
		trap.Reason = abi.ReasonFuel
		trap.Err = fmt.Errorf("%w: call ran over its %v compute budget: %w", ErrBudgetExceeded, a.host.cfg.callBudget, err)
	}
	a.finish(protocol.StateFailed, trap.Reason)
	return nil, trap
}

// hostTrap is the value host functions panic with to trap; wazero recovers it and
// returns it wrapped from the call.
type hostTrap struct {
	reason string
	cause  error // nil, or a sentinel such as ErrTimeBudget
}

func (t *hostTrap) Error() string { return t.reason }

func (t *hostTrap) Unwrap() error { return t.cause }

// trapReason extracts the one-line reason from a wazero error.
func trapReason(err error) string {
	var ht *hostTrap
	if errors.As(err, &ht) {
		return ht.reason
	}
	msg, _, _ := strings.Cut(err.Error(), "\n")
	// e.g. "start function[0] failed: wasm error: unreachable"
	if _, after, ok := strings.Cut(msg, "wasm error: "); ok {
		msg = after
	}
	msg = strings.TrimSuffix(msg, " (recovered by wazero)")
	return msg
}

// budget is the wall-clock allowance of one call; sleep_ms pauses it.
type budget struct {
	left  time.Duration
	since time.Time
	timer *time.Timer
}

func startBudget(d time.Duration, cancel context.CancelCauseFunc) *budget {
	b := &budget{left: d, since: time.Now()}
	b.timer = time.AfterFunc(d, func() { cancel(ErrBudgetExceeded) })
	return b
}

// pause stops the clock of the budget, e.g. while the application sleeps.
func (b *budget) pause() {
	if b.timer.Stop() {
		b.left -= time.Since(b.since)
	}
}

// resume restarts the clock with what is left.
func (b *budget) resume() {
	b.since = time.Now()
	b.timer.Reset(max(b.left, 0))
}

func (b *budget) stop() { b.timer.Stop() }
