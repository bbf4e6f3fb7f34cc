package builder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// install says how to get each tool, for ToolchainError.Install.
var install = map[Tool]string{
	ToolClang:          "apt-get install clang-19",
	ToolWasmLD:         "apt-get install lld-19",
	ToolWat2Wasm:       "apt-get install wabt",
	ToolNode:           "apt-get install nodejs",
	ToolAssemblyScript: "run builder/assemblyscript/install.sh (npm ci of assemblyscript " + AssemblyScriptVersion + " into the builder cache)",
	ToolRustc:          "apt-get install rustc-web rust-web-src",
	ToolRustSysroot:    "run hack/rust-sysroot.sh (it builds rustc's wasm32 core and alloc from rust-web-src)",
	ToolWasmOpt:        "apt-get install binaryen",
	ToolPrlimit:        "apt-get install util-linux",
	ToolBwrap:          "apt-get install bubblewrap",
}

// ascEntry is the compiler entry point inside the AssemblyScript directory.
const ascEntry = "node_modules/assemblyscript/bin/asc.js"

// resolve turns the configured name of t into an absolute path, or a ToolchainError.
func (b *Builder) resolve(t Tool) (string, error) {
	name := b.cfg.tools[t]
	missing := func(err error) error {
		return &ToolchainError{Tool: name, Install: install[t], Missing: true, Err: err}
	}
	if name == "" {
		return "", missing(errors.New("not configured"))
	}
	if t == ToolRustSysroot {
		p, err := filepath.Abs(name)
		if err != nil {
			return "", missing(err)
		}
		if libs, _ := filepath.Glob(filepath.Join(p, rustWasmLib, "libcore-*.rlib")); len(libs) == 0 {
			return "", missing(fmt.Errorf("no wasm32 core library in %s", p))
		}
		return p, nil
	}
	if t == ToolAssemblyScript {
		p, err := filepath.Abs(filepath.Join(name, ascEntry))
		if err != nil {
			return "", missing(err)
		}
		if _, err := os.Stat(p); err != nil {
			return "", missing(err)
		}
		return p, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", missing(err)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", missing(err)
	}
	return abs, nil
}

// toolchainInfo is what one language needs, resolved.
type toolchainInfo struct {
	paths   map[Tool]string
	version string
}

// toolchain resolves and identifies the tools of lang; versions are cached per path.
func (b *Builder) toolchain(ctx context.Context, lang *langSpec) (toolchainInfo, error) {
	info := toolchainInfo{paths: map[Tool]string{}}
	var versions []string
	for _, t := range lang.tools {
		if t == ToolRustSysroot && b.cfg.tools[t] == "" {
			p, err := b.defaultRustSysroot(ctx, info.paths[ToolRustc])
			if err != nil {
				return info, err
			}
			info.paths[t] = p
			continue
		}
		p, err := b.resolve(t)
		if err != nil {
			return info, err
		}
		info.paths[t] = p
	}
	for _, t := range lang.tools {
		v, err := b.probe(ctx, t, info.paths[t])
		if err != nil {
			return info, err
		}
		if v != "" {
			versions = append(versions, v)
		}
	}
	info.version = strings.Join(versions, ", ")
	return info, nil
}

// rustWasmLib is where a sysroot holds its wasm32 libraries.
var rustWasmLib = filepath.Join("lib", "rustlib", "wasm32-unknown-unknown", "lib")

// defaultRustSysroot is hack/rust-sysroot.sh's default place for the sysroot of the
// rustc at path: the cache, under the compiler's version.
func (b *Builder) defaultRustSysroot(ctx context.Context, rustc string) (string, error) {
	v, err := b.probe(ctx, ToolRustc, rustc)
	if err != nil {
		return "", err
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", &ToolchainError{Tool: string(ToolRustSysroot), Install: install[ToolRustSysroot], Missing: true, Err: err}
		}
		cache = filepath.Join(home, ".cache")
	}
	dir := filepath.Join(cache, "wasmbed", "rust-wasm32", strings.TrimPrefix(v, "rustc "))
	if libs, _ := filepath.Glob(filepath.Join(dir, rustWasmLib, "libcore-*.rlib")); len(libs) == 0 {
		return "", &ToolchainError{Tool: "rust wasm32 sysroot " + dir, Install: install[ToolRustSysroot], Missing: true}
	}
	return dir, nil
}

// version is probe without the error, for optional tools.
func (b *Builder) version(ctx context.Context, t Tool, path string) string {
	v, err := b.probe(ctx, t, path)
	if err != nil || v == "" {
		return string(t)
	}
	return v
}

var versionRE = regexp.MustCompile(`\d+(?:\.\d+)+|\d+`)

// probe returns "<tool> <version>" for the tool at path, checking on the way
// that the installation is usable (the pinned AssemblyScript, Rust's wasm32 std).
func (b *Builder) probe(ctx context.Context, t Tool, path string) (string, error) {
	key := string(t) + "\x00" + path
	b.mu.Lock()
	v, ok := b.versions[key]
	b.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := b.probeUncached(ctx, t, path)
	if err != nil {
		return "", err
	}
	b.mu.Lock()
	if b.versions == nil {
		b.versions = map[string]string{}
	}
	b.versions[key] = v
	b.mu.Unlock()
	return v, nil
}

func (b *Builder) probeUncached(ctx context.Context, t Tool, path string) (string, error) {
	label := map[Tool]string{ToolClang: "clang", ToolWasmLD: "wasm-ld", ToolWat2Wasm: "wabt", ToolNode: "node",
		ToolRustc: "rustc", ToolWasmOpt: "binaryen"}[t]
	if t == ToolRustSysroot {
		return "", nil // a directory, checked by resolve
	}
	if t == ToolAssemblyScript {
		pkgJSON := filepath.Join(filepath.Dir(filepath.Dir(path)), "package.json")
		data, err := os.ReadFile(pkgJSON)
		if err != nil {
			return "", &ToolchainError{Tool: "assemblyscript", Install: install[t], Missing: true, Err: err}
		}
		var pkg struct {
			Version string `json:"version"`
		}
		if err := json.Unmarshal(data, &pkg); err != nil {
			return "", &ToolchainError{Tool: "assemblyscript", Err: fmt.Errorf("read %s: %w", pkgJSON, err)}
		}
		if pkg.Version != AssemblyScriptVersion {
			return "", &ToolchainError{Tool: "assemblyscript " + pkg.Version, Install: install[t], Missing: true,
				Err: fmt.Errorf("want pinned version %s", AssemblyScriptVersion)}
		}
		return "assemblyscript " + pkg.Version, nil
	}
	out, err := quickRun(ctx, path, "--version")
	if err != nil {
		return "", &ToolchainError{Tool: path, Install: install[t], Err: fmt.Errorf("version: %w", err)}
	}
	first, _, _ := strings.Cut(string(out), "\n")
	ver := versionRE.FindString(first)
	if label == "" {
		return "", nil
	}
	return strings.TrimSpace(label + " " + ver), nil
}

// quickRun runs a tool's informational command outside the sandbox, with a short deadline.
func quickRun(ctx context.Context, path string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return out.Bytes(), err
	}
	return out.Bytes(), nil
}

// stepViews returns the view of each compiler step (views.go), computed once per
// toolchain.
func (b *Builder) stepViews(ctx context.Context, steps []Tool, paths map[Tool]string) (map[Tool]*view, error) {
	views := map[Tool]*view{}
	for _, t := range steps {
		key := strings.Join([]string{string(t), paths[t], paths[ToolNode], paths[ToolWasmLD], paths[ToolRustSysroot]}, "\x00")
		b.mu.Lock()
		v, ok := b.views[key]
		b.mu.Unlock()
		if !ok {
			var err error
			if v, err = b.stepView(ctx, t, paths); err != nil {
				return nil, &ToolchainError{Tool: string(t), Install: install[t], Err: fmt.Errorf("sandbox view: %w", err)}
			}
			b.mu.Lock()
			b.views[key] = v
			b.mu.Unlock()
		}
		views[t] = v
	}
	return views, nil
}

// stepView is what the step of tool t needs: the program with its libraries, and
// the data of its toolchain (clang's headers, Rust's wasm32 std and linker, the
// AssemblyScript compiler).
func (b *Builder) stepView(ctx context.Context, t Tool, paths map[Tool]string) (*view, error) {
	v := newView()
	switch t {
	case ToolAssemblyScript:
		if err := v.addExecutable(paths[ToolNode]); err != nil {
			return nil, err
		}
		// paths[ToolAssemblyScript] is <dir>/node_modules/assemblyscript/bin/asc.js.
		modules := filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(paths[t]))))
		if _, err := v.add(filepath.Join(modules, "node_modules")); err != nil {
			return nil, err
		}
	case ToolClang:
		if err := v.addExecutable(paths[t]); err != nil {
			return nil, err
		}
		out, err := quickRun(ctx, paths[t], "-print-resource-dir")
		if err != nil {
			return nil, fmt.Errorf("clang resource directory: %w", err)
		}
		if _, err := v.add(strings.TrimSpace(string(out))); err != nil {
			return nil, err
		}
	case ToolRustc:
		// rustc, the wasm32 sysroot it links against, and wasm-ld, which it runs.
		for _, exe := range []string{paths[t], paths[ToolWasmLD]} {
			if err := v.addExecutable(exe); err != nil {
				return nil, err
			}
		}
		if _, err := v.add(filepath.Join(paths[ToolRustSysroot], rustWasmLib)); err != nil {
			return nil, err
		}
	default:
		if err := v.addExecutable(paths[t]); err != nil {
			return nil, err
		}
	}
	return v, nil
}
