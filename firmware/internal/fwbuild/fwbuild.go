// Package fwbuild builds the firmware's board images for tests: `make -C firmware boards`
// once per test binary, and one make at a time across test binaries (go test runs the
// packages of ./firmware/... in parallel, and two makes in one build directory would
// write the same objects).
package fwbuild

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Timeout bounds one build of every board.
const Timeout = 3 * time.Minute

// Dir returns the firmware/ directory of this checkout.
func Dir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("locate the firmware directory: no caller information")
	}
	return filepath.Dir(filepath.Dir(filepath.Dir(file))), nil
}

var once struct {
	sync.Once
	dir string
	err error
}

// Boards runs `make -C firmware boards` (once per process, under an exclusive lock on
// firmware/build/.boards.lock) and returns the firmware directory.
func Boards() (string, error) {
	once.Do(func() { once.dir, once.err = build() })
	return once.dir, once.err
}

func build() (string, error) {
	dir, err := Dir()
	if err != nil {
		return "", err
	}
	// No baked-in key, whatever the machine's make run holds (the Makefile's default):
	// tests provision the images they need with a key (firmware/provision).
	return dir, run(dir, "boards", "SIGNING_KEY=")
}

// run runs make in the firmware directory with args, holding the build lock.
func run(dir string, args ...string) error {
	what := "make -C firmware " + strings.Join(args, " ")
	if err := os.MkdirAll(filepath.Join(dir, "build"), 0o755); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "build", ".boards.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("%s: lock: %w", what, err)
	}
	defer lock.Close() // releases the lock
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("%s: lock: %w", what, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "make", append([]string{"-C", dir}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", what, err, out)
	}
	return nil
}

// BudgetImage builds board's image with the buffer sizes (BOARD_DEFS) of the board
// budgetOf, in build/budget-<budgetOf>/, and returns its ELF: a QEMU board then runs the
// runtime configured as a board QEMU cannot run.
func BudgetImage(t testing.TB, board, budgetOf string) string {
	t.Helper()
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	build := filepath.Join("build", "budget-"+budgetOf)
	if err := run(dir, "-f", "boards/board.mk", "BOARD="+board, "BUDGET_OF="+budgetOf, "BUILD="+build); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, build, board, "firmware.elf")
}

// Image builds the board images and returns the ELF of board, failing t when the build
// fails or the image is missing.
func Image(t testing.TB, board string) string {
	t.Helper()
	dir, err := Boards()
	if err != nil {
		t.Fatal(err)
	}
	elf := filepath.Join(dir, "build", board, "firmware.elf")
	if _, err := os.Stat(elf); err != nil {
		t.Fatalf("firmware image missing after make -C firmware boards: %v", err)
	}
	return elf
}

// FaultImage builds board's image with fault injection (board.mk FAULT_INJECT=1: sensors
// that provoke faults, boards/common/inject.h) in build/faults/, and returns its ELF.
func FaultImage(t testing.TB, board string) string {
	t.Helper()
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	build := filepath.Join("build", "faults")
	if err := run(dir, "-f", "boards/board.mk", "BOARD="+board, "FAULT_INJECT=1", "BUILD="+build); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, build, board, "firmware.elf")
}

// NetImage builds board's network image (board.mk NET=1: LAN9118, lwIP, Mbed TLS, the
// device's own key and enrollment) in build/<board>-net/ and returns its ELF; without a
// baked-in deployment key, as the board images.
func NetImage(t testing.TB, board string) string {
	t.Helper()
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	if err := run(dir, "-f", "boards/board.mk", "BOARD="+board, "NET=1", "-j2"); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "build", board+"-net", "firmware.elf")
}
