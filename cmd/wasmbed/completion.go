package main

import (
	"github.com/spf13/cobra"
)

func newCompletionCommand(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "print the shell completion script",
		Long: `Print the completion script of a shell. Load it in every new shell to complete
commands, flags, resource kinds and names.

bash (needs the bash-completion package):
  wasmbed completion bash > ~/.local/share/bash-completion/completions/wasmbed

zsh (compinit must be enabled; any folder of $fpath):
  wasmbed completion zsh > "${fpath[1]}/_wasmbed"

fish:
  wasmbed completion fish > ~/.config/fish/completions/wasmbed.fish

PowerShell:
  wasmbed completion powershell | Out-String | Invoke-Expression

As a kubectl plugin, kubectl (1.26 and later) completes "kubectl wasmbed ..." through
the executable kubectl_complete-wasmbed on PATH, which make install puts next to
kubectl-wasmbed.`,
		Example: `  # Completion in the current bash session
  source <(wasmbed completion bash)

  # For every zsh session
  wasmbed completion zsh > "${fpath[1]}/_wasmbed"`,
		ValidArgs: []cobra.Completion{"bash", "zsh", "fish", "powershell"},
		Args:      exactArgs(1, "the shell: bash, zsh, fish or powershell"),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, true)
			case "powershell":
				return root.GenPowerShellCompletionWithDesc(out)
			default:
				return usageError("unknown shell %q: use bash, zsh, fish or powershell", args[0])
			}
		},
	}
}
