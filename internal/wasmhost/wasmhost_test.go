package wasmhost_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/api/abi"
	"github.com/wasmbed/wasmbed/api/protocol"
	"github.com/wasmbed/wasmbed/internal/wasmhost"
	fixtures "github.com/wasmbed/wasmbed/testdata/wasm"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newHost(t testing.TB, cfg wasmhost.HostConfig) *wasmhost.Host {
	t.Helper()
	h, err := wasmhost.NewHost(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return h
}

func instantiate(t testing.TB, h *wasmhost.Host, wasm []byte, board wasmhost.Board) *wasmhost.App {
	t.Helper()
	ctx := context.Background()
	m, err := h.Compile(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	app, err := h.Instantiate(ctx, m, board)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close(ctx) })
	return app
}

// TestFixturesMatchWat checks that every committed .wasm is what wat2wasm makes of its
// .wat, so that the sources stay the truth.
func TestFixturesMatchWat(t *testing.T) {
	wat2wasm, err := exec.LookPath("wat2wasm")
	if err != nil {
		t.Fatal("wat2wasm not found on PATH: install the Debian package wabt (apt-get install -y wabt)")
	}
	sources, err := fs.Glob(fixtures.FS, "*.wat")
	if err != nil || len(sources) == 0 {
		t.Fatalf("no .wat fixtures: %v", err)
	}
	dir := t.TempDir()
	for _, src := range sources {
		t.Run(src, func(t *testing.T) {
			wat, _ := fs.ReadFile(fixtures.FS, src)
			committed, err := fs.ReadFile(fixtures.FS, strings.TrimSuffix(src, ".wat")+".wasm")
			if err != nil {
				t.Fatalf("no committed .wasm for %s: %v", src, err)
			}
			in, out := filepath.Join(dir, src), filepath.Join(dir, src+".wasm")
			if err := os.WriteFile(in, wat, 0o644); err != nil {
				t.Fatal(err)
			}
			if msg, err := exec.Command(wat2wasm, in, "-o", out).CombinedOutput(); err != nil {
				t.Fatalf("wat2wasm %s: %v\n%s", src, err, msg)
			}
			fresh, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(fresh, committed) {
				t.Fatalf("testdata/wasm/%s is stale: run wat2wasm %s -o %s", strings.TrimSuffix(src, ".wat")+".wasm", src, strings.TrimSuffix(src, ".wat")+".wasm")
			}
		})
	}
}

func TestCompileRefuses(t *testing.T) {
	h := newHost(t, wasmhost.NewHostConfig())
	tests := []struct {
		name, wantErr string
		wasm          []byte
	}{
		{name: "memory over the limit", wasm: fixtures.BigMemory, wantErr: "min 64 pages (4 Mi) over limit of 4 pages"},
		{name: "not wasm", wasm: []byte("hello"), wantErr: "invalid magic number"},
		{name: "empty", wasm: nil, wantErr: "compile: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := h.Compile(context.Background(), tt.wasm); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
	// A larger budget takes the same module.
	big := newHost(t, wasmhost.NewHostConfig().WithMemoryLimitPages(64))
	if _, err := big.Compile(context.Background(), fixtures.BigMemory); err != nil {
		t.Fatalf("with a 64-page limit: %v", err)
	}
}

// stopAfter is a simulated clock that cancels its context at the nth Sleep, to end
// Run after a known number of loop calls.
type stopAfter struct {
	*wasmhost.SimClock
	n      int
	cancel context.CancelFunc
}

func (c *stopAfter) Sleep(ctx context.Context, d time.Duration) error {
	if c.n--; c.n == 0 {
		c.cancel()
	}
	return c.SimClock.Sleep(ctx, d)
}

func TestRun(t *testing.T) {
	tests := []struct {
		name       string
		wasm       []byte
		board      wasmhost.SimBoardConfig
		budget     time.Duration
		maxLoops   int // Run is stopped at the nth delay
		wantState  protocol.AppState
		wantReason string
		wantLoops  uint64
		check      func(t *testing.T, b *wasmhost.SimBoard, app *wasmhost.App)
	}{
		{
			name: "blink toggles led 0 every 500ms", wasm: fixtures.Blink, maxLoops: 10,
			wantState: protocol.StateStopped, wantLoops: 10,
			check: func(t *testing.T, b *wasmhost.SimBoard, _ *wasmhost.App) {
				wantLogs(t, b, "info:blink: started")
				changes := b.LEDChanges()
				if len(changes) != 10 {
					t.Fatalf("%d led changes, want 10", len(changes))
				}
				for i, c := range changes {
					if c.LED != 0 || c.On != (i%2 == 0) || c.Time.Sub(t0) != time.Duration(i)*500*time.Millisecond {
						t.Errorf("change %d = %+v", i, c)
					}
				}
			},
		},
		{
			name: "sensor publishes the temperature", wasm: fixtures.Sensor, maxLoops: 5,
			board:     wasmhost.SimBoardConfig{Sensors: map[wasmhost.Sensor]int32{wasmhost.SensorTemperature: -1250}},
			wantState: protocol.StateStopped, wantLoops: 5,
			check: func(t *testing.T, b *wasmhost.SimBoard, _ *wasmhost.App) {
				recs := b.Records()
				if len(recs) != 5 {
					t.Fatalf("%d records, want 5", len(recs))
				}
				for i, r := range recs {
					if r.Topic != "temp" || int32(binary.LittleEndian.Uint32(r.Data)) != -1250 || r.Time.Sub(t0) != time.Duration(i)*100*time.Millisecond {
						t.Errorf("record %d = %+v", i, r)
					}
				}
				wantLogs(t, b)
			},
		},
		{
			name: "sensor on a board without sensors", wasm: fixtures.Sensor, maxLoops: 2,
			board:     wasmhost.SimBoardConfig{Sensors: map[wasmhost.Sensor]int32{}},
			wantState: protocol.StateStopped, wantLoops: 2,
			check: func(t *testing.T, b *wasmhost.SimBoard, _ *wasmhost.App) {
				wantLogs(t, b, "warn:no sensor", "warn:no sensor")
				if n := len(b.Records()); n != 0 {
					t.Errorf("%d records, want none", n)
				}
			},
		},
		{
			name: "config drives setup then exits", wasm: fixtures.Config,
			board:     wasmhost.SimBoardConfig{Config: map[string]string{"greeting": "hello from config"}},
			wantState: protocol.StateExited, wantLoops: 1,
			check: func(t *testing.T, b *wasmhost.SimBoard, _ *wasmhost.App) {
				wantLogs(t, b, "info:hello from config")
				if high, _ := b.GPIORead(2); !high {
					t.Error("gpio 2 is low, want high (key \"missing\" is absent)")
				}
			},
		},
		{
			name: "config value longer than the buffer is truncated", wasm: fixtures.Config,
			board:     wasmhost.SimBoardConfig{Config: map[string]string{"greeting": strings.Repeat("x", 40), "missing": "here"}},
			wantState: protocol.StateExited, wantLoops: 1,
			check: func(t *testing.T, b *wasmhost.SimBoard, _ *wasmhost.App) {
				wantLogs(t, b, "info:"+strings.Repeat("x", 32))
				if high, _ := b.GPIORead(2); high {
					t.Error("gpio 2 is high, want low (key \"missing\" is present)")
				}
			},
		},
		{
			name: "trap in setup", wasm: fixtures.TrapSetup,
			wantState: protocol.StateFailed, wantReason: "unreachable", wantLoops: 0,
		},
		{
			name: "infinite loop is stopped by the budget", wasm: fixtures.Spin, budget: 50 * time.Millisecond,
			wantState: protocol.StateFailed, wantReason: "fuel exhausted",
		},
		{
			name: "out of bounds pointer to log", wasm: fixtures.OOBLog,
			wantState: protocol.StateFailed, wantReason: "out of bounds memory access",
			check: func(t *testing.T, b *wasmhost.SimBoard, _ *wasmhost.App) { wantLogs(t, b) },
		},
		{
			name: "log without a memory traps", wasm: fixtures.NoMemory,
			wantState: protocol.StateFailed, wantReason: "out of bounds memory access",
			check: func(t *testing.T, b *wasmhost.SimBoard, _ *wasmhost.App) { wantLogs(t, b) },
		},
		{
			name: "memory.grow bomb hits the memory limit", wasm: fixtures.GrowBomb,
			wantState: protocol.StateExited, wantLoops: 1,
			check: func(t *testing.T, b *wasmhost.SimBoard, app *wasmhost.App) {
				wantLogs(t, b, "warn:memory.grow refused")
				const limit = wasmhost.DefaultMemoryLimitPages * 65536
				if _, ok := app.ReadMemory(limit-1, 1); !ok {
					t.Error("memory did not grow to the limit")
				}
				if _, ok := app.ReadMemory(limit, 1); ok {
					t.Error("memory grew past the limit")
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			clock := &stopAfter{SimClock: wasmhost.NewSimClock(t0), n: tt.maxLoops, cancel: cancel}
			tt.board.Clock = clock
			board := wasmhost.NewSimBoard(tt.board)
			cfg := wasmhost.NewHostConfig()
			if tt.budget != 0 {
				cfg = cfg.WithCallBudget(tt.budget)
			}
			app := instantiate(t, newHost(t, cfg), tt.wasm, board)
			st := app.Run(ctx)
			if st.State != tt.wantState || st.Reason != tt.wantReason || st.Loops != tt.wantLoops {
				t.Fatalf("status = %+v, want {%s %q %d}", st, tt.wantState, tt.wantReason, tt.wantLoops)
			}
			if st != app.Status() {
				t.Errorf("Status() = %+v after Run returned %+v", app.Status(), st)
			}
			if _, _, err := app.Loop(context.Background()); !errors.Is(err, wasmhost.ErrNotRunning) {
				t.Errorf("Loop after Run: err = %v, want ErrNotRunning", err)
			}
			if tt.check != nil {
				tt.check(t, board, app)
			}
		})
	}
}

// wantLogs checks the board's log lines, each written "level:message".
func wantLogs(t *testing.T, b *wasmhost.SimBoard, want ...string) {
	t.Helper()
	var got []string
	for _, l := range b.Logs() {
		got = append(got, l.Level.String()+":"+l.Message)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("logs = %q, want %q", got, want)
	}
}

func TestTrapError(t *testing.T) {
	h := newHost(t, wasmhost.NewHostConfig())
	tests := []struct {
		name       string
		wasm       []byte
		call       func(ctx context.Context, app *wasmhost.App) error
		wantFunc   string
		wantReason string
	}{
		{name: "setup", wasm: fixtures.TrapSetup, call: func(ctx context.Context, app *wasmhost.App) error { return app.Setup(ctx) },
			wantFunc: "setup", wantReason: "unreachable"},
		{name: "loop runs setup first", wasm: fixtures.TrapSetup, call: func(ctx context.Context, app *wasmhost.App) error {
			_, _, err := app.Loop(ctx)
			return err
		}, wantFunc: "setup", wantReason: "unreachable"},
		{name: "host function", wasm: fixtures.OOBLog, call: func(ctx context.Context, app *wasmhost.App) error {
			_, _, err := app.Loop(ctx)
			return err
		}, wantFunc: "loop", wantReason: "out of bounds memory access"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := instantiate(t, h, tt.wasm, wasmhost.NewSimBoard(wasmhost.SimBoardConfig{}))
			err := tt.call(context.Background(), app)
			var trap *wasmhost.TrapError
			if !errors.As(err, &trap) || trap.Func != tt.wantFunc || trap.Reason != tt.wantReason {
				t.Fatalf("err = %v, want a TrapError in %s: %s", err, tt.wantFunc, tt.wantReason)
			}
			if st := app.Status(); st.State != protocol.StateFailed || st.Reason != tt.wantReason {
				t.Fatalf("status = %+v", st)
			}
		})
	}
}

func TestTrapInStart(t *testing.T) {
	ctx := context.Background()
	h := newHost(t, wasmhost.NewHostConfig())
	m, err := h.Compile(ctx, fixtures.TrapStart)
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.Instantiate(ctx, m, wasmhost.NewSimBoard(wasmhost.SimBoardConfig{}))
	var trap *wasmhost.TrapError
	if !errors.As(err, &trap) || trap.Func != "start" || trap.Reason != "unreachable" {
		t.Fatalf("err = %v, want a TrapError in start: unreachable", err)
	}
}

func TestBudgetErrorWraps(t *testing.T) {
	h := newHost(t, wasmhost.NewHostConfig().WithCallBudget(20*time.Millisecond))
	app := instantiate(t, h, fixtures.Spin, wasmhost.NewSimBoard(wasmhost.SimBoardConfig{}))
	start := time.Now()
	_, _, err := app.Loop(context.Background())
	if !errors.Is(err, wasmhost.ErrBudgetExceeded) {
		t.Fatalf("err = %v, want ErrBudgetExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("spinning loop ran for %v", d)
	}
}

// TestProbe checks each host function's results at the edges of docs/abi.md, through a
// module that records them in its memory.
func TestProbe(t *testing.T) {
	board := wasmhost.NewSimBoard(wasmhost.SimBoardConfig{
		Clock:  wasmhost.NewSimClock(t0),
		Config: map[string]string{"k": "hello"},
	})
	app := instantiate(t, newHost(t, wasmhost.NewHostConfig()), fixtures.Probe, board)
	if err := app.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		what string
		v    int32
	}{
		{"publish empty topic", abi.ErrInvalid},
		{"publish 65-byte topic", abi.ErrInvalid},
		{"publish 513 bytes", abi.ErrInvalid},
		{"publish 512 bytes", abi.OK},
		{"publish invalid utf-8 topic", abi.ErrInvalid},
		{"gpio_write missing pin", abi.ErrNotFound},
		{"gpio_read pin -1", abi.ErrNotFound},
		{"led_set missing led", abi.ErrNotFound},
		{"sensor_read supply", 3300},
		{"sensor_read unknown", abi.SensorNone},
		{"config_get into 2 bytes", 5},
		{"config_get missing", abi.ErrNotFound},
		{"clock_ms after sleep 50", 50},
		{"clock_ms after sleep 5000 (clamped)", 1050},
		{"clock_ms after sleep -5 (clamped)", 1050},
		{"gpio_write pin 1", abi.OK},
		{"gpio_read pin 1", 1},
		{"led_set led 1", abi.OK},
	}
	mem, ok := app.ReadMemory(1024, uint32(4*len(want)))
	if !ok {
		t.Fatal("cannot read results")
	}
	for i, w := range want {
		if got := int32(binary.LittleEndian.Uint32(mem[4*i:])); got != w.v {
			t.Errorf("%s = %d, want %d", w.what, got, w.v)
		}
	}
	if buf, _ := app.ReadMemory(4000, 3); string(buf) != "he\x00" {
		t.Errorf("config_get copied %q, want \"he\" and nothing more", buf)
	}
	if recs := board.Records(); len(recs) != 1 || recs[0].Topic != "t" || len(recs[0].Data) != 512 {
		t.Errorf("records = %d, want one of 512 bytes on topic t", len(recs))
	}
	logs := board.Logs()
	if want := strings.Repeat("€", 85); len(logs) != 1 || logs[0].Level != wasmhost.LevelInfo || logs[0].Message != want {
		t.Errorf("logs = %+v, want one info line of 85 euro signs (255 bytes)", logs)
	}
	if !board.LED(1) {
		t.Error("led 1 is off")
	}
}

// TestPublishRateLimit follows the publish bucket (10 at once, then one every 100 ms) and
// the report of what it refused.
func TestPublishRateLimit(t *testing.T) {
	clock := wasmhost.NewSimClock(t0)
	board := wasmhost.NewSimBoard(wasmhost.SimBoardConfig{Clock: clock})
	app := instantiate(t, newHost(t, wasmhost.NewHostConfig()), fixtures.Sensor, board)
	ctx := context.Background()
	loop := func(n int) {
		for range n {
			if _, _, err := app.Loop(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	refused := func() (n int) {
		for _, l := range board.Logs() {
			if l.Message == "publish refused" {
				n++
			}
		}
		return n
	}
	loop(15) // no time passes: 10 accepted, 5 refused
	if n := len(board.Records()); n != abi.PublishBurst {
		t.Fatalf("%d records at once, want %d", n, abi.PublishBurst)
	}
	if n := refused(); n != 5 {
		t.Fatalf("%d refusals logged, want 5", n)
	}
	clock.Advance(99 * time.Millisecond)
	loop(1)
	if n := len(board.Records()); n != abi.PublishBurst {
		t.Fatalf("a record was accepted within 99 ms")
	}
	clock.Advance(time.Millisecond)
	loop(1)
	if n := len(board.Records()); n != abi.PublishBurst+1 {
		t.Fatalf("%d records after 100 ms, want %d", n, abi.PublishBurst+1)
	}
	// The 6 refusals are reported, each once: the app's "publish refused" line after each
	// one brings the report of it first.
	reported := 0
	for _, l := range board.Logs() {
		var n int
		if _, err := fmt.Sscanf(l.Message, "%d records dropped", &n); err == nil && l.Level == wasmhost.LevelWarn {
			reported += n
		}
	}
	if reported != 6 {
		t.Errorf("reports add up to %d refused records, want 6", reported)
	}
}

func TestPublishBoardRefusal(t *testing.T) {
	board := wasmhost.NewSimBoard(wasmhost.SimBoardConfig{
		OnPublish: func(wasmhost.Record) error { return errors.New("queue full") },
	})
	app := instantiate(t, newHost(t, wasmhost.NewHostConfig()), fixtures.Sensor, board)
	if _, _, err := app.Loop(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A refused record counts as dropped: reported before the app's next line.
	wantLogs(t, board, "warn:1 records dropped", "warn:publish refused")
}

func TestSleepIsNotCountedInBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("sleeps for a second of real time")
	}
	// The probe sleeps 1050 ms of real time in setup; a 20 ms budget must not stop it.
	board := wasmhost.NewSimBoard(wasmhost.SimBoardConfig{Clock: wasmhost.RealClock{}})
	app := instantiate(t, newHost(t, wasmhost.NewHostConfig().WithCallBudget(20*time.Millisecond)), fixtures.Probe, board)
	if err := app.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestStopByContext(t *testing.T) {
	board := wasmhost.NewSimBoard(wasmhost.SimBoardConfig{Clock: wasmhost.RealClock{}})
	app := instantiate(t, newHost(t, wasmhost.NewHostConfig()), fixtures.Blink, board)
	ctx, cancel := context.WithTimeout(context.Background(), 1200*time.Millisecond)
	defer cancel()
	st := app.Run(ctx)
	if st.State != protocol.StateStopped || st.Loops != 3 {
		t.Fatalf("status = %+v, want Stopped after 3 loops (at 0, 500 and 1000 ms)", st)
	}
}

func TestNewHostRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  wasmhost.HostConfig
	}{
		{"zero memory", wasmhost.NewHostConfig().WithMemoryLimitPages(0)},
		{"too much memory", wasmhost.NewHostConfig().WithMemoryLimitPages(65537)},
		{"zero budget", wasmhost.NewHostConfig().WithCallBudget(0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if h, err := wasmhost.NewHost(context.Background(), tt.cfg); err == nil {
				h.Close(context.Background())
				t.Fatal("NewHost succeeded")
			}
		})
	}
}

// TestHammer runs many applications of one cached module concurrently on one Host, as
// a process of virtual devices does.
func TestHammer(t *testing.T) {
	h := newHost(t, wasmhost.NewHostConfig())
	ctx := context.Background()
	const apps, loops = 32, 50
	var wg sync.WaitGroup
	modules := make([]*wasmhost.Module, apps)
	errs := make(chan error, apps)
	for i := range apps {
		wg.Go(func() {
			m, err := h.Compile(ctx, fixtures.Sensor)
			if err != nil {
				errs <- err
				return
			}
			modules[i] = m
			clock := wasmhost.NewSimClock(t0)
			board := wasmhost.NewSimBoard(wasmhost.SimBoardConfig{Clock: clock})
			board.SetSensor(wasmhost.SensorTemperature, int32(i))
			app, err := h.Instantiate(ctx, m, board)
			if err != nil {
				errs <- err
				return
			}
			defer app.Close(ctx)
			for range loops {
				d, _, err := app.Loop(ctx)
				if err != nil {
					errs <- err
					return
				}
				clock.Advance(d)
			}
			for _, r := range board.Records() {
				if int32(binary.LittleEndian.Uint32(r.Data)) != int32(i) {
					errs <- fmt.Errorf("app %d saw another app's sensor", i)
					return
				}
			}
			if n := len(board.Records()); n != loops {
				errs <- fmt.Errorf("app %d published %d records, want %d", i, n, loops)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, m := range modules {
		if m != nil && m != modules[0] {
			t.Fatal("the same bytes compiled to two modules")
		}
	}
}

func BenchmarkBlink(b *testing.B) {
	ctx := context.Background()
	h := newHost(b, wasmhost.NewHostConfig())
	m, err := h.Compile(ctx, fixtures.Blink)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		board := wasmhost.NewSimBoard(wasmhost.SimBoardConfig{Clock: wasmhost.NewSimClock(t0)})
		app, err := h.Instantiate(ctx, m, board)
		if err != nil {
			b.Fatal(err)
		}
		if err := app.Setup(ctx); err != nil {
			b.Fatal(err)
		}
		for range 100 {
			if _, _, err := app.Loop(ctx); err != nil {
				b.Fatal(err)
			}
		}
		app.Close(ctx)
	}
}
