package manager

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/api/boards"
)

// TestMain doubles as the stand-in emulator: the test binary re-executed as
// "<binary> fake-emulator PORT [crash-after DURATION] [ignore-term]" serves a fake board
// on 127.0.0.1:PORT, as QEMU serves the firmware's UART.
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == "fake-emulator" {
		os.Exit(fakeEmulator(os.Args[2:]))
	}
	os.Exit(m.Run())
}

func fakeEmulator(args []string) int {
	port, err := strconv.Atoi(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake emulator: bad port:", err)
		return 2
	}
	var crashAfter time.Duration
	ignoreTerm := false
	for i := 1; i < len(args); i++ {
		switch args[i] {
		case "crash-after":
			i++
			crashAfter, _ = time.ParseDuration(args[i])
		case "ignore-term":
			ignoreTerm = true
		}
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake emulator:", err)
		return 1
	}
	// Signals are set up before the start line that tests wait for, so that a stop
	// right after it meets the behaviour asked for.
	term := make(chan os.Signal, 1)
	if ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
	} else {
		signal.Notify(term, syscall.SIGTERM)
	}
	fmt.Printf("fake emulator listening on %d at %d\n", port, time.Now().UnixNano())
	startFakeBoard(l, 100*time.Millisecond)
	var crash <-chan time.Time
	if crashAfter > 0 {
		crash = time.After(crashAfter)
	}
	select {
	case <-term:
		fmt.Println("fake emulator: terminated")
		return 0
	case <-crash:
		fmt.Println("fake emulator: crashing")
		return 3
	}
}

// fakeCommand runs the test binary as the emulator of every board.
func fakeCommand(extra ...string) CommandFunc {
	return func(b boards.Board, firmware string, port int) ([]string, error) {
		return append([]string{os.Args[0], "fake-emulator", strconv.Itoa(port)}, extra...), nil
	}
}
