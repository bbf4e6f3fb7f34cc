package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// groups are the parent commands of two-word commands, with their help line.
var groups = map[string]string{
	"pki":     "local PKI: the platform CA, gateway and device certificates, signing keys",
	"device":  "virtual devices",
	"board":   "emulated boards (QEMU, Renode) and the board catalogue",
	"rollout": "follow an Application's rollout",
}

// groupExamples are the --help examples of the parent commands.
var groupExamples = map[string]string{
	"pki": `  # A CA, a gateway certificate and the signing keys in .wasmbed/pki
  wasmbed pki init
  wasmbed pki gateway --dns localhost --ip 127.0.0.1
  wasmbed pki keys`,
	"device": `  # A hundred virtual devices against a local gateway
  wasmbed device sim --count 100 --gateway 127.0.0.1:18443`,
	"board": `  # The catalogue, then one emulated board
  wasmbed board list
  wasmbed board run --board mps2-an386 --device default/emu-1`,
	"rollout": `  # Wait until every device of blink runs its module
  wasmbed rollout status blink`,
}

// legacyExamples are the --help examples of the commands that parse their own flags.
var legacyExamples = map[string]string{
	"pki init": `  # Create the platform CA in .wasmbed/pki
  wasmbed pki init

  # Replace it (every issued certificate stops verifying)
  wasmbed pki init --dir ./pki --force`,
	"pki gateway": `  # A server certificate for a gateway reached as localhost and 127.0.0.1
  wasmbed pki gateway --dns localhost --ip 127.0.0.1`,
	"pki device": `  # A key and client certificate for Device lab/board-1
  wasmbed pki device --namespace lab --name board-1 --out-dir ./board-1`,
	"pki keys": `  # The module signing key and the validator's attestation key, with their public halves
  wasmbed pki keys --dir .wasmbed/pki`,
	"dev": `  # Run the platform with 5 virtual devices and the default emulated boards (make run)
  wasmbed dev --dir .run --bin-dir "$(hack/k8s-binaries.sh)"

  # Only virtual devices, no QEMU
  wasmbed dev --bin-dir "$KUBEBUILDER_ASSETS" --devices 20 --emulated ""`,
	"device sim": `  # Ten virtual devices default/sim-0..sim-9 against a gateway on this machine
  wasmbed device sim --count 10 --gateway 127.0.0.1:18443`,
	"board run": `  # Boot the STM32F4 firmware in QEMU as Device default/emu-1
  wasmbed board run --board stm32f4-discovery --device default/emu-1 --gateway 127.0.0.1:18443`,
	"board list": `  # The board catalogue and how each board is emulated
  wasmbed board list`,
}

// newRoot returns the command tree under the display name name.
func newRoot(name string) *cobra.Command {
	root := &cobra.Command{
		Use:   "wasmbed",
		Short: "Wasmbed: WebAssembly applications on fleets of microcontrollers",
		Long: `wasmbed manages Wasmbed: deploy WebAssembly applications to devices, follow their
rollouts and read device logs on a cluster (it uses your kubeconfig like kubectl),
and run the platform, virtual devices and emulated boards on this machine.`,
		Example: `  # Applications, devices and gateways of the current namespace
  wasmbed get apps
  wasmbed get devices -o wide

  # Deploy a module to the devices labelled env=lab and wait for the rollout
  wasmbed deploy blink.wasm --name blink --selector env=lab --wait

  # The console log of a device, following new lines
  wasmbed logs sim-0 -f`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: name},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetUsageTemplate(usageTemplate)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return fmt.Errorf("%w: %v", errUsage, err) })

	parents := map[string]*cobra.Command{"": root}
	parent := func(word string) *cobra.Command {
		if p, ok := parents[word]; ok {
			return p
		}
		p := &cobra.Command{
			Use:     word,
			Short:   groups[word],
			Example: groupExamples[word],
			Args:    cobra.ArbitraryArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				if len(args) > 0 {
					return usageError("unknown command %q for %q", args[0], cmd.CommandPath())
				}
				return cmd.Help()
			},
		}
		root.AddCommand(p)
		parents[word] = p
		return p
	}
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		group, leaf, ok := strings.Cut(n, " ")
		if !ok {
			group, leaf = "", n
		}
		parent(group).AddCommand(legacyCommand(leaf, commands[n]))
	}
	k := &kubeFlags{}
	for _, c := range []*cobra.Command{newVersionCommand(), newCompletionCommand(root), newGetCommand(k), newDeployCommand(k), newLogsCommand(k)} {

		root.AddCommand(c)
	}
	parent("rollout").AddCommand(newRolloutStatusCommand(k))

	if name != "wasmbed" {
		renameExamples(root, name)
	}
	return root
}

// renameExamples rewrites the examples for the name the tool runs under, e.g.
// "kubectl wasmbed get apps" when it runs as a kubectl plugin.
func renameExamples(c *cobra.Command, name string) {
	c.Example = strings.ReplaceAll(c.Example, "  wasmbed ", "  "+name+" ")
	for _, sub := range c.Commands() {
		renameExamples(sub, name)
	}
}

// flagCapture is the stderr a legacy command's run function is given when the tree
// only wants its flag set: parseFlags records the set there and stops the command.
type flagCapture struct {
	io.Writer
	fs *flag.FlagSet
}

// legacyCommand wraps a command whose run function parses its own Go flag set. Cobra
// leaves the arguments alone (the run function parses them as before); the flag set,
// captured once, makes the help and shell completion list the command's flags.
func legacyCommand(use string, c command) *cobra.Command {
	capture := &flagCapture{Writer: io.Discard}
	// parseFlags stops the function before it does anything; the context is cancelled
	// anyway, should a command ever start work first.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = c.run(ctx, nil, io.Discard, capture)
	flags := pflag.NewFlagSet(c.name, pflag.ContinueOnError)
	if capture.fs != nil {
		flags.AddGoFlagSet(capture.fs)
	}
	example := c.example
	if example == "" {
		example = legacyExamples[c.name]
	}
	cmd := &cobra.Command{
		Use:                use + " [flags]",
		Short:              c.summary,
		Example:            example,
		DisableFlagParsing: true,
		Args:               cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if wantsHelp(args) {
				return cmd.Help()
			}
			return c.run(cmd.Context(), args, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
		ValidArgsFunction: func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if !strings.HasPrefix(toComplete, "-") {
				return nil, cobra.ShellCompDirectiveDefault
			}
			var out []cobra.Completion
			flags.VisitAll(func(f *pflag.Flag) {
				if name := "--" + f.Name; strings.HasPrefix(name, toComplete) {
					out = append(out, cobra.CompletionWithDesc(name, f.Usage))
				}
			})
			return out, cobra.ShellCompDirectiveNoFileComp
		},
	}
	cmd.Flags().AddFlagSet(flags)
	return cmd
}

// wantsHelp reports whether a legacy command's arguments ask for help before any "--".
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

func init() {
	cobra.AddTemplateFunc("commandFlags", func(c *cobra.Command) string { return flagUsages(c, false) })
	cobra.AddTemplateFunc("connectionFlags", func(c *cobra.Command) string { return flagUsages(c, true) })
}

// flagUsages lists a command's own flags, or its cluster connection flags.
func flagUsages(c *cobra.Command, connection bool) string {
	fs := pflag.NewFlagSet(c.Name(), pflag.ContinueOnError)
	c.LocalFlags().VisitAll(func(f *pflag.Flag) {
		if _, ok := f.Annotations[connectionFlag]; ok == connection {
			fs.AddFlag(f)
		}
	})
	return fs.FlagUsages()
}

// usageTemplate is cobra's, with the kubeconfig flags of the cluster commands listed
// after the command's own.
const usageTemplate = `Usage:{{if .Runnable}}
  {{.UseLine}}{{end}}{{if .HasAvailableSubCommands}}
  {{.CommandPath}} [command]{{end}}{{if gt (len .Aliases) 0}}

Aliases:
  {{.NameAndAliases}}{{end}}{{if .HasExample}}

Examples:
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}

Available Commands:{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}

Flags:
{{commandFlags . | trimTrailingWhitespaces}}{{end}}{{with connectionFlags .}}

Connection flags (as kubectl's):
{{. | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableInheritedFlags}}

Global Flags:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableSubCommands}}

Use "{{.CommandPath}} [command] --help" for more information about a command.{{end}}
`
