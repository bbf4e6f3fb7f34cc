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
	if err := os.MkdirAll(filepath.Join(dir, "build"), 0o755); err != nil {
		return "", fmt.Errorf("make -C firmware boards: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "build", ".boards.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("make -C firmware boards: lock: %w", err)
	}
	defer lock.Close() // releases the lock
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("make -C firmware boards: lock: %w", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "make", "-C", dir, "boards").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("make -C firmware boards: %w\n%s", err, out)
	}
	return dir, nil
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
