package manager

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/internal/pki"
)

// TestBoardSurvivesEmulatorCrash runs a board whose stand-in emulator (a real process)
// crashes every 1.5 s: the supervisor restarts it with a backoff, the bridge reconnects
// to the new UART socket and the gateway sees the device again each time.
func TestBoardSurvivesEmulatorCrash(t *testing.T) {
	gw := newTestGateway(t)
	id := pki.Identity{Namespace: "lab", Name: "crashy"}
	b, err := StartBoard(context.Background(), BoardConfig{
		Board: "stm32f4-discovery", Firmware: "/fw.elf", Credentials: testCredentials(t, id),
		Gateway: gw.addr, ServerName: "localhost", RootCAs: testCA(t).Pool(),
		Runner:     NewRunner().WithCommand(fakeCommand("crash-after", "1500ms")),
		RestartMin: 100 * time.Millisecond, RestartMax: 400 * time.Millisecond, GracePeriod: time.Second,
		BridgeMinBackoff: 20 * time.Millisecond, BridgeMaxBackoff: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	eventually(t, 10*time.Second, func() bool { return b.Connected() && gw.connected(id) }, "board never connected")
	eventually(t, 20*time.Second, func() bool {
		return b.Emulator().Restarts() >= 2 && b.Bridge().Sessions() >= 3 && b.Connected() && gw.connected(id)
	}, "after crashes: restarts %d, sessions %d, connected %v; console:\n%s",
		b.Emulator().Restarts(), b.Bridge().Sessions(), b.Connected(), b.ConsoleLog())
	if n := b.Bridge().UARTConnections(); n < 3 {
		t.Errorf("uart connections = %d, want one per emulator run", n)
	}
	if !strings.Contains(string(b.ConsoleLog()), "fake emulator: crashing") {
		t.Errorf("console log lacks the crash:\n%s", b.ConsoleLog())
	}
	b.Stop()
	eventually(t, 10*time.Second, func() bool { return !gw.connected(id) }, "gateway still sees the stopped board")
}
