package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"
)

// version and commit are set by the Makefile with -ldflags "-X main.version=... -X
// main.commit=..."; without them the build information of the binary fills them in.
var (
	version = ""
	commit  = ""
)

// buildVersion is what `wasmbed version` prints.
type buildVersion struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	BuildTime string `json:"buildTime,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// currentVersion combines the -ldflags values with the binary's build information:
// the module version for `go install ...@v1.2.3`, the VCS revision for builds in a
// checkout.
func currentVersion() buildVersion {
	v := buildVersion{Version: version, Commit: commit, GoVersion: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if v.Commit == "" {
					v.Commit = s.Value
				}
			case "vcs.time":
				v.BuildTime = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if v.Version == "" {
		v.Version = "devel"
	}
	return v
}

func newVersionCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "print the version, commit and Go version of this binary",
		Example: `  wasmbed version
  wasmbed version -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := currentVersion()
			switch output {
			case "json", "yaml":
				return printData(cmd.OutOrStdout(), output, v)
			case "":
				return printVersion(cmd.OutOrStdout(), v)
			default:
				return usageError("--output must be json or yaml, not %q", output)
			}
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json or yaml (default: text)")
	return cmd
}

func printVersion(w io.Writer, v buildVersion) error {
	commit := v.Commit
	if commit == "" {
		commit = "unknown"
	}
	if v.Modified {
		commit += " (modified)"
	}
	_, err := fmt.Fprintf(w, "wasmbed %s\ncommit: %s\ngo: %s %s\n", v.Version, commit, v.GoVersion, v.Platform)
	return err
}

// noArgs refuses positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError("unexpected argument %q", args[0])
	}
	return nil
}

// objectName refuses an argument that cannot name a Kubernetes object, before it
// reaches a URL.
func objectName(what, name string) error {
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return usageError("%s %q is not a valid name: %s", what, name, errs[0])
	}
	return nil
}

// exactArgs accepts exactly n positional arguments, named what in the error.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError("want %d argument (%s), got %d", n, what, len(args))
		}
		return nil
	}
}
