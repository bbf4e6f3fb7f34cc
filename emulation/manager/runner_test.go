package manager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/api/boards"
)

// installed returns a LookPath that finds only the named programs, in /opt/bin.
func installed(programs ...string) func(string) (string, error) {
	return func(name string) (string, error) {
		for _, p := range programs {
			if p == name {
				return "/opt/bin/" + name, nil
			}
		}
		return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
	}
}

func TestRunnerCommandLine(t *testing.T) {
	qemuArgs := func(machine string) []string {
		return []string{"/opt/bin/qemu-system-arm", "-M", machine, "-nographic", "-monitor", "none",
			"-kernel", "/fw/firmware.elf", "-serial", "tcp:127.0.0.1:4321,server=on,wait=on,nodelay=on"}
	}
	renodeArgs := func(board, platform string) []string {
		script := strings.TrimSuffix(platform, ".repl") + ".resc"
		return []string{"/opt/bin/renode", "--disable-xwt", "--console", "--plain", "-e",
			`$name="` + board + `"; $port=4321; $elf=@/fw/firmware.elf; $platform=@/plat/` + platform + `; include @/plat/` + script}
	}
	both := installed("qemu-system-arm", "renode")
	for _, tc := range []struct {
		name     string
		board    string
		runner   Runner
		firmware string
		port     int
		want     []string
		wantErr  string
		is       error
	}{
		{name: "stm32f4 on qemu", board: "stm32f4-discovery", want: qemuArgs("netduinoplus2")},
		{name: "mps2 on qemu", board: "mps2-an386", want: qemuArgs("mps2-an386")},
		{name: "nano 33 ble on renode", board: "nrf52840-nano33ble", want: renodeArgs("nrf52840-nano33ble", "arduino_nano_33_ble.repl")},
		{name: "uno r4 on renode", board: "arduino-uno-r4", want: renodeArgs("arduino-uno-r4", "arduino_uno_r4_minima.repl")},
		{name: "stm32f4 prefers renode", board: "stm32f4-discovery", runner: NewRunner().WithPreferRenode(true).WithLookPath(both),
			want: renodeArgs("stm32f4-discovery", "stm32f4_discovery.repl")},
		{name: "stm32f4 prefers renode, not installed", board: "stm32f4-discovery",
			runner: NewRunner().WithPreferRenode(true).WithLookPath(installed("qemu-system-arm")), want: qemuArgs("netduinoplus2")},
		{name: "own qemu path", board: "mps2-an386", runner: NewRunner().WithQEMU("/usr/local/bin/qemu-system-arm").
			WithLookPath(func(p string) (string, error) { return p, nil }),
			want: append([]string{"/usr/local/bin/qemu-system-arm"}, qemuArgs("mps2-an386")[1:]...)},
		{name: "unknown board", board: "esp32", wantErr: `unknown board "esp32"`},
		{name: "virtual board", board: "virtual", wantErr: "board virtual is not emulated"},
		{name: "renode missing", board: "nrf52840-nano33ble", runner: NewRunner().WithLookPath(installed("qemu-system-arm")),
			wantErr: "emulated only by Renode", is: ErrRenodeMissing},
		{name: "renode missing, uno", board: "arduino-uno-r4", runner: NewRunner().WithLookPath(installed()), is: ErrRenodeMissing},
		{name: "qemu missing", board: "stm32f4-discovery", runner: NewRunner().WithLookPath(installed("renode")),
			wantErr: "needs qemu-system-arm", is: exec.ErrNotFound},
		{name: "no firmware", board: "stm32f4-discovery", firmware: "-", wantErr: "no firmware image"},
		{name: "bad port", board: "stm32f4-discovery", port: 70000, wantErr: "port 70000 out of range"},
		{name: "renode path with a space", board: "arduino-uno-r4", firmware: "/my fw/firmware.elf", wantErr: "renode cannot take the path"},
		{name: "stand-in command", board: "arduino-uno-r4", runner: NewRunner().WithLookPath(installed()).WithCommand(
			func(b boards.Board, fw string, port int) ([]string, error) { return []string{"fake", b.Name, fw}, nil }),
			want: []string{"fake", "arduino-uno-r4", "/fw/firmware.elf"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.runner
			if r.lookPath == nil {
				r = NewRunner().WithLookPath(both)
			}
			r = r.WithPlatformDir("/plat")
			fw, port := tc.firmware, tc.port
			switch fw {
			case "":
				fw = "/fw/firmware.elf"
			case "-":
				fw = ""
			}
			if port == 0 {
				port = 4321
			}
			got, err := r.CommandLine(tc.board, fw, port)
			if tc.wantErr != "" || tc.is != nil {
				if err == nil {
					t.Fatalf("no error, command line %q", got)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %q, want it to contain %q", err, tc.wantErr)
				}
				if tc.is != nil && !errors.Is(err, tc.is) {
					t.Errorf("error %q does not wrap %v", err, tc.is)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("command line\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestEveryEmulatedBoardHasACommandLine(t *testing.T) {
	r := NewRunner().WithLookPath(installed("qemu-system-arm", "renode"))
	for _, b := range boards.All() {
		_, err := r.CommandLine(b.Name, "/fw.elf", 1234)
		if (err == nil) != (b.Emulator != boards.EmulatorVirtual) {
			t.Errorf("%s (%s): error %v", b.Name, b.Emulator, err)
		}
	}
}

// starts returns the start times the stand-in emulator printed, in order.
func starts(t *testing.T, console string) []time.Time {
	var out []time.Time
	for _, line := range strings.Split(console, "\n") {
		var port, ns int64
		if n, _ := fmt.Sscanf(line, "fake emulator listening on %d at %d", &port, &ns); n == 2 {
			out = append(out, time.Unix(0, ns))
		}
	}
	return out
}

func TestEmulatorRestartsWithBackoff(t *testing.T) {
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	b, _ := boards.Lookup("stm32f4-discovery")
	e, err := StartEmulator(context.Background(), EmulatorConfig{Board: b, Firmware: "/fw.elf", Port: port,
		Runner: NewRunner().WithCommand(fakeCommand("crash-after", "100ms")), RestartMin: 50 * time.Millisecond,
		RestartMax: 400 * time.Millisecond, GracePeriod: time.Second,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	eventually(t, 20*time.Second, func() bool { return len(starts(t, string(e.ConsoleLog()))) >= 6 },
		"want 6 runs, console:\n%s", e.ConsoleLog())
	// The pauses between runs double from RestartMin and stop at RestartMax.
	var waits []string
	for _, m := range regexp.MustCompile(`restart_in=(\S+)`).FindAllStringSubmatch(logs.String(), 5) {
		waits = append(waits, m[1])
	}
	if want := []string{"50ms", "100ms", "200ms", "400ms", "400ms"}; !reflect.DeepEqual(waits, want) {
		t.Errorf("restart pauses %v, want %v", waits, want)
	}
	// And they are really waited: the fifth gap between runs holds a 100 ms run and the
	// 400 ms pause (a lower bound only: process start times vary on a loaded machine).
	at := starts(t, string(e.ConsoleLog()))
	if fifth := at[5].Sub(at[4]); fifth < 500*time.Millisecond {
		t.Errorf("fifth gap between runs %v, want at least 500ms", fifth)
	}
	if e.Restarts() < 5 {
		t.Errorf("restarts = %d, want at least 5", e.Restarts())
	}
	if !strings.Contains(string(e.ConsoleLog()), "exit status 3") {
		t.Errorf("console log does not record the crash:\n%s", e.ConsoleLog())
	}
}

func TestEmulatorStop(t *testing.T) {
	for _, tc := range []struct {
		name      string
		extra     []string
		minStop   time.Duration
		maxStop   time.Duration
		wantInLog string
	}{
		{"sigterm", nil, 0, 2 * time.Second, "fake emulator: terminated"},
		{"sigkill after grace", []string{"ignore-term"}, 300 * time.Millisecond, 5 * time.Second, "signal: killed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port, err := freePort()
			if err != nil {
				t.Fatal(err)
			}
			b, _ := boards.Lookup("mps2-an386")
			e, err := StartEmulator(context.Background(), EmulatorConfig{Board: b, Firmware: "/fw.elf", Port: port,
				Runner: NewRunner().WithCommand(fakeCommand(tc.extra...)), GracePeriod: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, func() bool { return len(starts(t, string(e.ConsoleLog()))) == 1 }, "emulator did not start")
			pid := e.PID()
			begin := time.Now()
			e.Stop()
			took := time.Since(begin)
			if took < tc.minStop || took > tc.maxStop {
				t.Errorf("stop took %v, want %v..%v", took, tc.minStop, tc.maxStop)
			}
			if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("process group %d still exists after Stop (kill: %v)", pid, err)
			}
			if e.Running() || e.Restarts() != 0 {
				t.Errorf("running %v restarts %d after stop", e.Running(), e.Restarts())
			}
			if !strings.Contains(string(e.ConsoleLog()), tc.wantInLog) {
				t.Errorf("console log lacks %q:\n%s", tc.wantInLog, e.ConsoleLog())
			}
		})
	}
}

func TestStartEmulatorErrors(t *testing.T) {
	b, _ := boards.Lookup("nrf52840-nano33ble")
	_, err := StartEmulator(context.Background(), EmulatorConfig{Board: b, Firmware: "/fw.elf", Port: 1,
		Runner: NewRunner().WithLookPath(installed())})
	if !errors.Is(err, ErrRenodeMissing) {
		t.Errorf("error %v, want ErrRenodeMissing", err)
	}
}

func TestRenodePlatformFilesWritten(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "plat")
	r := NewRunner().WithPlatformDir(dir)
	b, _ := boards.Lookup("arduino-uno-r4")
	if err := r.prepare(b); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"arduino_uno_r4_minima.repl", "arduino_uno_r4_minima.resc"} {
		if _, err := exec.Command("test", "-s", filepath.Join(dir, f)).Output(); err != nil {
			t.Errorf("%s not written: %v", f, err)
		}
	}
}

// TestEmulatorPreparesEveryStart checks that Prepare runs before each start of the
// process (a network board's image is provisioned afresh), and that a failed Prepare is
// retried like a crash, with the process not started.
func TestEmulatorPreparesEveryStart(t *testing.T) {
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := boards.Lookup("mps2-an386")
	var prepared atomic.Int32
	e, err := StartEmulator(context.Background(), EmulatorConfig{Board: b, Firmware: "/fw.elf", Port: port,
		Runner: NewRunner().WithCommand(fakeCommand("crash-after", "50ms")), RestartMin: 20 * time.Millisecond,
		RestartMax: 40 * time.Millisecond, GracePeriod: time.Second,
		Prepare: func(context.Context) error {
			if prepared.Add(1) == 2 {
				return errors.New("no token")
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	eventually(t, 20*time.Second, func() bool { return len(starts(t, string(e.ConsoleLog()))) >= 3 },
		"want 3 runs, console:\n%s", e.ConsoleLog())
	e.Stop()
	runs, prep := len(starts(t, string(e.ConsoleLog()))), int(prepared.Load())
	// One Prepare per attempt: every run had one, and the failed one started nothing.
	if prep != runs+1 && prep != runs+2 {
		t.Errorf("%d prepares for %d runs, want one per run plus the failed one", prep, runs)
	}
}
