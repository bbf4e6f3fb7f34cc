// Command depscheck fails when the build calls a command that hack/deps.sh does not
// install: it reads every command the Makefiles, the shell scripts and the Go code
// (exec.Command, exec.LookPath) call by name and compares them with deps.sh's
// command-to-package table, the commands every Debian 12 system has (Base) and the
// README's prerequisites. `make verify` runs it.
//
//	go run ./hack/depscheck
package main

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	verbose := flag.Bool("v", false, "list every command called and what provides it")
	flag.Parse()
	root, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "depscheck:", err)
		os.Exit(2)
	}
	missing, calls, err := CheckRepo(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "depscheck:", err)
		os.Exit(2)
	}
	if len(missing) > 0 {
		fmt.Fprintln(os.Stderr, "depscheck: the build calls commands hack/deps.sh does not install; add each to its need table ([command]=debian-package):")
		for _, m := range missing {
			fmt.Fprintf(os.Stderr, "  %s, called at %s\n", m.Command, strings.Join(m.Where, ", "))
		}
		os.Exit(1)
	}
	if *verbose {
		for _, c := range calls {
			fmt.Printf("%-28s %s\n", c.Command, c.Where)
		}
	}
	fmt.Printf("depscheck: %d calls, every command installed by hack/deps.sh, the base system or the prerequisites\n", len(calls))
}

// skipDirs are never read: dependencies, build output, others' checkouts.
var skipDirs = map[string]bool{"node_modules": true, ".git": true, "_output": true, "bin": true, ".run": true, "build": true, "testdata": true}

// CheckRepo checks the checkout at root and returns what is missing and every call
// it read.
func CheckRepo(root string) ([]Missing, []Call, error) {
	depsSrc, err := os.ReadFile(filepath.Join(root, "hack", "deps.sh"))
	if err != nil {
		return nil, nil, err
	}
	deps, err := DepsTable(string(depsSrc))
	if err != nil {
		return nil, nil, err
	}
	var calls []Call
	var makefiles []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && skipDirs[d.Name()] {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		name := d.Name()
		switch {
		case name == "Makefile" || strings.HasSuffix(name, ".mk"):
			makefiles = append(makefiles, p)
		case strings.HasSuffix(name, ".sh") || rel == filepath.Join(".ci", "run"):
			src, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			c, err := ShellCalls(rel, string(src), 0)
			if err != nil {
				return err
			}
			calls = append(calls, c...)
		case strings.HasSuffix(name, ".go"):
			src, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			c, err := GoCalls(rel, src)
			if err != nil {
				return err
			}
			calls = append(calls, c...)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	// Included files (board.mk) define variables the Makefile's recipes use: read them first.
	vars := map[string]string{}
	for _, pass := range []bool{false, true} {
		for _, p := range makefiles {
			if (filepath.Base(p) == "Makefile") != pass {
				continue
			}
			src, err := os.ReadFile(p)
			if err != nil {
				return nil, nil, err
			}
			rel, _ := filepath.Rel(root, p)
			c, err := MakeCalls(rel, string(src), vars)
			if err != nil {
				return nil, nil, err
			}
			calls = append(calls, c...)
		}
	}
	return Check(calls, deps), calls, nil
}
