// Command wasmbed is the Wasmbed command-line tool: local PKI, the embedded platform
// (`wasmbed dev`), virtual devices and emulated boards, and the daily commands against
// a cluster (get, deploy, rollout status, logs). It is a cobra command tree; named or
// linked kubectl-wasmbed it is also the kubectl plugin `kubectl wasmbed`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
)

// command is one `wasmbed <name>` subcommand that parses its own Go flag set: the
// commands that predate the cobra tree keep their run functions, which the tree wraps.
type command struct {
	// name is the words after `wasmbed`, e.g. "pki init" or "device sim".
	name string
	// summary is one line for the help.
	summary string
	// run executes the command with the arguments after its name.
	run func(ctx context.Context, args []string, stdout, stderr io.Writer) error
	// example is the --help example ("  # what\n  wasmbed ..."); without it
	// legacyExamples has the command's. TestCommandTreeKeepsEveryCommandAndShowsExamples
	// fails for a command with neither.
	example string
}

var commands = map[string]command{}

// register adds a subcommand; it is called from the init function of each command file.
func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("wasmbed: command registered twice: " + c.name) // programming error, not input
	}
	commands[c.name] = c
}

// errUsage marks an error whose message is a usage problem; main exits with status 2.
var errUsage = errors.New("usage")

// exitError ends the command with a given status after printing its message.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runAs(ctx, commandName(os.Args[0]), os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// pluginName is the executable name kubectl looks for to run `kubectl wasmbed`.
const pluginName = "kubectl-wasmbed"

// commandName is how the user invoked the tool: "kubectl wasmbed" when the executable
// is named (or linked as) kubectl-wasmbed, which is how kubectl runs a plugin, else
// "wasmbed".
func commandName(argv0 string) string {
	base := filepath.Base(argv0)
	base = strings.TrimSuffix(base, ".exe")
	if base == pluginName {
		return "kubectl wasmbed"
	}
	return "wasmbed"
}

// run executes the tool as `wasmbed` with args and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runAs(ctx, "wasmbed", args, stdout, stderr)
}

// runAs executes the tool under the display name name ("wasmbed" or "kubectl wasmbed")
// and returns the exit status: 0, 1 for a failure, 2 for a usage error.
func runAs(ctx context.Context, name string, args []string, stdout, stderr io.Writer) int {
	root := newRoot(name)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	path := name
	if cmd != nil {
		path = cmd.CommandPath()
	}
	fmt.Fprintf(stderr, "%s: %v\n", path, err)
	var exit *exitError
	switch {
	case errors.As(err, &exit):
		return exit.code
	case errors.Is(err, errUsage), isCobraUsageError(err):
		if cmd != nil && !errors.Is(err, errUsage) {
			fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
		return 2
	default:
		return 1
	}
}

// isCobraUsageError reports the errors cobra itself returns for a command line it
// cannot map to a command.
func isCobraUsageError(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "unknown flag") ||
		strings.HasPrefix(msg, "unknown shorthand flag")
}

// usageError returns an errUsage error with a formatted message.
func usageError(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}

// newFlagSet returns a flag set for a subcommand that reports errors instead of exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("wasmbed "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args and wraps a bad flag as a usage error. When the flag set's
// output is a flagCapture (the cobra tree asking which flags a command has), it
// records the flag set and stops the command before it does anything.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if c, ok := fs.Output().(*flagCapture); ok {
		c.fs = fs
		return flag.ErrHelp
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}
