// Command wasmbed is the Wasmbed command-line tool: local PKI, the embedded platform
// (`wasmbed dev`), virtual devices and emulated boards. Each subcommand lives in its own
// file and registers itself with register.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one `wasmbed <name>` subcommand.
type command struct {
	// name is the word after `wasmbed`, e.g. "pki" or "device sim".
	name string
	// summary is one line for `wasmbed help`.
	summary string
	// run executes the command with the arguments after its name.
	run func(ctx context.Context, args []string, stdout, stderr io.Writer) error
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

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return 0
	}
	// Longest match first, so "device sim" wins over a hypothetical "device".
	for n := min(len(args), 3); n >= 1; n-- {
		c, ok := commands[strings.Join(args[:n], " ")]
		if !ok {
			continue
		}
		err := c.run(ctx, args[n:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "wasmbed %s: %v\n", c.name, err)
			return 2
		default:
			fmt.Fprintf(stderr, "wasmbed %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "wasmbed: unknown command %q\n\n", strings.Join(args, " "))
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: wasmbed <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'wasmbed <command> -h' for a command's flags.")
}

// newFlagSet returns a flag set for a subcommand that reports errors instead of exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("wasmbed "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args and wraps a bad flag as a usage error.
func parseFlags(fs *flag.FlagSet, args []string) error {
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
