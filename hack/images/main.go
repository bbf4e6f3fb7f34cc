// Command images builds Wasmbed's base images without Docker, from pinned Debian
// packages (and, for the builder, Node.js and AssemblyScript from npm), reproducibly:
// the same locks give the same digests, which ko.yaml pins.
//
//	go run ./hack/images build -repo 127.0.0.1:5000/wasmbed [-only static] [-check ko.yaml]
//	go run ./hack/images lock
//	go run ./hack/images refs -repo 127.0.0.1:5000/wasmbed _output/wasmbed.yaml
//	go run ./hack/images smoke 127.0.0.1:5000/wasmbed/builder@sha256:...
//
// build pushes REPO/static (linux/amd64 and linux/arm64: CA certificates, tzdata,
// netbase, a nonroot user; for the static Go binaries) and REPO/builder (linux/amd64:
// the static base plus the toolchains of builder/image/packages, Node.js and
// AssemblyScript; the compile function's base) and prints "name ref@digest" for each.
// With -check it fails when ko.yaml pins other digests. lock re-pins the packages
// to what apt's lists hold now (hack/images/static.lock, builder/image/packages.lock).
// refs fails unless every image reference in manifests ko resolved is a digest in
// REPO. smoke unpacks the builder image and runs its toolchains in it with bubblewrap
// (no container runtime): each must build a module. hack/images.sh (make images) runs
// build, smoke, ko resolve, then refs.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: images build -repo REGISTRY/PREFIX [-only static|builder] [-check ko.yaml] | images lock | images refs -repo REGISTRY/PREFIX FILE")
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	switch args[0] {
	case "lock":
		return relock(ctx, root)
	case "smoke":
		if len(args) != 2 {
			return errors.New("usage: images smoke REF (the builder image)")
		}
		return smoke(ctx, args[1])
	case "refs":
		fs := flag.NewFlagSet("refs", flag.ContinueOnError)
		repo := fs.String("repo", "", "the repository every reference must be in")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *repo == "" || fs.NArg() != 1 {
			return errors.New("usage: images refs -repo REGISTRY/PREFIX FILE")
		}
		return checkRefsFile(strings.TrimSuffix(*repo, "/"), fs.Arg(0))
	case "build":
		fs := flag.NewFlagSet("build", flag.ContinueOnError)
		repo := fs.String("repo", "", "where to push: REGISTRY/PREFIX (plain HTTP for localhost and 127.0.0.1)")
		only := fs.String("only", "", "build only this image (static or builder)")
		check := fs.String("check", "", "fail when this ko.yaml pins other digests")
		debs := fs.String("debs", defaultDebCache(), "cache of downloaded .debs, by SHA-256")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *repo == "" {
			return errors.New("build: -repo is required")
		}
		built, err := build(ctx, buildOptions{root: root, repo: strings.TrimSuffix(*repo, "/"), only: *only, debs: *debs})
		if err != nil {
			return err
		}
		for _, b := range built {
			fmt.Printf("%s %s\n", b.name, b.ref)
		}
		if *check != "" {
			return checkPins(*check, built)
		}
		return nil
	}
	return fmt.Errorf("unknown command %q (build, lock or refs)", args[0])
}

func defaultDebCache() string {
	if d := os.Getenv("WASMBED_DEB_CACHE"); d != "" {
		return d
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	return filepath.Join(cache, "wasmbed", "debs")
}

// repoRoot is the root of the checkout the command runs in (where go.mod is).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.HasPrefix(b, []byte("module github.com/wasmbed/wasmbed\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the wasmbed checkout")
		}
		dir = parent
	}
}

// readList reads a package list: one name a line, "#" comments.
func readList(name string) ([]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out, sc.Err()
}
