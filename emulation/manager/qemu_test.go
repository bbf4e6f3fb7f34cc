package manager

import (
	"context"
	"encoding/binary"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/api/boards"
	"github.com/wasmbed/wasmbed/internal/pki"
	"github.com/wasmbed/wasmbed/internal/testenv"
)

// needQEMU fails the test, saying why, when qemu-system-arm is not installed: the
// tests that use it are never skipped silently.
func needQEMU(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(DefaultQEMU); err != nil {
		t.Fatalf("%s is not installed (apt-get install qemu-system-arm): %v", DefaultQEMU, err)
	}
}

// TestQEMUCommandLineRuns starts real QEMU with the Runner's exact command line for the
// mps2-an386 board and a tiny image that spins (a vector table and a `b .`): QEMU must
// accept every option and serve the UART on the port, then stop on SIGTERM.
func TestQEMUCommandLineRuns(t *testing.T) {
	needQEMU(t)
	img := make([]byte, 16)
	binary.LittleEndian.PutUint32(img[0:], 0x20001000) // initial SP
	binary.LittleEndian.PutUint32(img[4:], 0x00000009) // reset handler at 0x8, Thumb
	binary.LittleEndian.PutUint16(img[8:], 0xe7fe)     // b .
	fw := filepath.Join(t.TempDir(), "spin.bin")
	if err := os.WriteFile(fw, img, 0o644); err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := boards.Lookup("mps2-an386")
	e, err := StartEmulator(context.Background(), EmulatorConfig{Board: b, Firmware: fw, Port: port,
		Runner: NewRunner(), GracePeriod: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	var conn net.Conn
	eventually(t, 20*time.Second, func() bool {
		conn, err = net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		return err == nil
	}, "qemu never served the uart on %d: %v; console:\n%s", port, err, e.ConsoleLog())
	conn.Close()
	time.Sleep(200 * time.Millisecond)
	if !e.Running() || e.Restarts() != 0 {
		t.Fatalf("qemu running %v restarts %d; console:\n%s", e.Running(), e.Restarts(), e.ConsoleLog())
	}
	e.Stop()
	if e.Running() {
		t.Errorf("qemu still running after Stop")
	}
}

// TestQEMUFirmwareConnects boots the real Wasmbed firmware on QEMU through the board
// manager's Board and waits for the gateway to welcome the device. The image comes from
// WASMBED_FIRMWARE or firmware/build/stm32f4-discovery/firmware.elf, which `make test`
// builds first (make -C firmware boards); without it the test fails and says how to
// build it, as it does when qemu-system-arm is missing.
func TestQEMUFirmwareConnects(t *testing.T) {
	fw := os.Getenv("WASMBED_FIRMWARE")
	if fw == "" {
		fw = filepath.Join(testenv.RepoRoot(), "firmware", "build", "stm32f4-discovery", "firmware.elf")
	}
	if _, err := os.Stat(fw); err != nil {
		t.Fatalf("no firmware image (%v): build it with `make -C firmware boards` (make test does) or set WASMBED_FIRMWARE=path.elf", err)
	}
	needQEMU(t)
	gw := newTestGateway(t)
	id := pki.Identity{Namespace: "default", Name: "qemu-board"}
	b, err := StartBoard(context.Background(), BoardConfig{Board: "stm32f4-discovery", Firmware: fw,
		Credentials: testCredentials(t, id), Gateway: gw.addr, ServerName: "localhost", RootCAs: testCA(t).Pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	eventually(t, 60*time.Second, func() bool { return b.Connected() && gw.connected(id) },
		"the firmware never got a welcomed session; console:\n%s\ngateway logs:\n%s", b.ConsoleLog(), gw.logs)
	if b.Emulator().Restarts() != 0 {
		t.Errorf("qemu restarted %d times; console:\n%s", b.Emulator().Restarts(), b.ConsoleLog())
	}
}
