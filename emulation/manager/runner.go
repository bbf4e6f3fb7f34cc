package manager

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/wasmbed/wasmbed/api/boards"
	"github.com/wasmbed/wasmbed/emulation/platforms"
)

// Default emulator programs, looked up on PATH.
const (
	DefaultQEMU   = "qemu-system-arm"
	DefaultRenode = "renode"
)

// ErrRenodeMissing is wrapped by Runner.CommandLine when a board only Renode runs is
// asked for and no renode program is on PATH.
var ErrRenodeMissing = errors.New("renode is not installed")

// CommandFunc builds the command line (program first) that runs a board's firmware with
// its UART served on 127.0.0.1:port. Tests use it to run a stand-in emulator.
type CommandFunc func(b boards.Board, firmware string, port int) ([]string, error)

// Runner builds the emulator command line for a board of the catalogue. It is immutable:
// each With method returns a modified copy. The zero value is not usable; call NewRunner.
type Runner struct {
	qemu, renode string
	platformDir  string
	preferRenode bool
	lookPath     func(string) (string, error)
	command      CommandFunc
}

// NewRunner returns a Runner that uses qemu-system-arm and renode from PATH and writes
// the Renode platform files to a folder under the system's temporary directory.
func NewRunner() Runner {
	return Runner{
		qemu: DefaultQEMU, renode: DefaultRenode,
		platformDir: filepath.Join(os.TempDir(), "wasmbed-renode-platforms"),
		lookPath:    exec.LookPath,
	}
}

// WithQEMU sets the qemu-system-arm program (a name on PATH or a path).
func (r Runner) WithQEMU(program string) Runner { r.qemu = program; return r }

// WithRenode sets the renode program (a name on PATH or a path).
func (r Runner) WithRenode(program string) Runner { r.renode = program; return r }

// WithPlatformDir sets the folder the embedded .repl and .resc files are written to
// before Renode starts.
func (r Runner) WithPlatformDir(dir string) Runner { r.platformDir = dir; return r }

// WithPreferRenode runs boards that both emulators support (the STM32F4 Discovery) on
// Renode when it is installed.
func (r Runner) WithPreferRenode(prefer bool) Runner { r.preferRenode = prefer; return r }

// WithLookPath replaces exec.LookPath, which finds the emulator programs (tests).
func (r Runner) WithLookPath(f func(string) (string, error)) Runner { r.lookPath = f; return r }

// WithCommand replaces the emulator command line altogether, e.g. with a stand-in
// process in tests; nil restores the QEMU and Renode command lines.
func (r Runner) WithCommand(f CommandFunc) Runner { r.command = f; return r }

// PlatformDir returns the folder the Renode platform files are written to.
func (r Runner) PlatformDir() string { return r.platformDir }

// CommandLine returns the command line, program first, that runs the firmware ELF on
// the named board with its protocol UART served on 127.0.0.1:port.
func (r Runner) CommandLine(board, firmware string, port int) ([]string, error) {
	b, err := boards.Lookup(board)
	if err != nil {
		return nil, err
	}
	return r.commandLine(b, firmware, port)
}

func (r Runner) commandLine(b boards.Board, firmware string, port int) ([]string, error) {
	if firmware == "" {
		return nil, fmt.Errorf("board %s: no firmware image", b.Name)
	}
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("board %s: uart port %d out of range", b.Name, port)
	}
	if r.command != nil {
		return r.command(b, firmware, port) // 0: a board whose UART is only its console
	}
	if port == 0 {
		return nil, fmt.Errorf("board %s: uart port %d out of range", b.Name, port)
	}
	switch b.Emulator {
	case boards.EmulatorQEMU:
		if r.preferRenode && b.RenodePlatform != "" {
			if prog, err := r.lookPath(r.renode); err == nil {
				return r.renodeLine(prog, b, firmware, port)
			}
		}
		prog, err := r.lookPath(r.qemu)
		if err != nil {
			return nil, fmt.Errorf("board %s needs %s: %w", b.Name, r.qemu, err)
		}
		return []string{prog,
			"-M", b.Machine,
			"-nographic",
			"-monitor", "none",
			"-kernel", firmware,
			// server=on,wait=on: the guest starts once the bridge is connected, so the
			// first Hello is not lost; nodelay=on: no Nagle delay on each frame.
			"-serial", "tcp:127.0.0.1:" + strconv.Itoa(port) + ",server=on,wait=on,nodelay=on",
		}, nil
	case boards.EmulatorRenode:
		prog, err := r.lookPath(r.renode)
		if err != nil {
			return nil, fmt.Errorf("board %s is emulated only by Renode (https://renode.io): %w: %v", b.Name, ErrRenodeMissing, err)
		}
		return r.renodeLine(prog, b, firmware, port)
	default:
		return nil, fmt.Errorf("board %s is not emulated (emulator %q): run it with `wasmbed device sim`", b.Name, b.Emulator)
	}
}

// renodeLine runs the board's .resc headless, with the monitor on the console (its
// output goes to the console log) and the variables the script expects.
func (r Runner) renodeLine(prog string, b boards.Board, firmware string, port int) ([]string, error) {
	if b.RenodePlatform == "" || !platforms.Has(b.RenodePlatform) {
		return nil, fmt.Errorf("board %s: no renode platform description", b.Name)
	}
	platform := filepath.Join(r.platformDir, b.RenodePlatform)
	script := filepath.Join(r.platformDir, platforms.Script(b.RenodePlatform))
	for _, p := range []string{firmware, platform, script} {
		if strings.ContainsAny(p, " \t\n;\"'") {
			return nil, fmt.Errorf("board %s: renode cannot take the path %q (spaces, quotes or semicolons)", b.Name, p)
		}
	}
	abs, err := filepath.Abs(firmware)
	if err != nil {
		return nil, fmt.Errorf("board %s: firmware path: %w", b.Name, err)
	}
	exec := fmt.Sprintf(`$name="%s"; $port=%d; $elf=@%s; $platform=@%s; include @%s`, b.Name, port, abs, platform, script)
	return []string{prog, "--disable-xwt", "--console", "--plain", "-e", exec}, nil
}

// prepare writes what the command line refers to (the Renode platform files).
func (r Runner) prepare(b boards.Board) error {
	if r.command != nil || b.RenodePlatform == "" {
		return nil
	}
	return platforms.WriteTo(r.platformDir)
}
