package builder

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// view is what one compiler step sees of the host file system: the files of its
// toolchain, read-only, at their host paths. Everything else (home directories,
// the platform's state, /etc, other toolchains) does not exist in the sandbox.
type view struct {
	// links are the symlinks met on the way to each file: path -> target.
	links map[string]string
	// binds are the real files and directories, bound read-only at their own path.
	binds map[string]bool
}

func newView() *view {
	return &view{links: map[string]string{}, binds: map[string]bool{}}
}

// merge adds every file of o to v.
func (v *view) merge(o *view) {
	for k, t := range o.links {
		v.links[k] = t
	}
	for k := range o.binds {
		v.binds[k] = true
	}
}

// add makes path visible, recreating each symlink on the way to it, and returns
// its real path.
func (v *view) add(path string) (string, error) {
	real, err := resolveLinks(path, func(at, target string) { v.links[at] = target })
	if err != nil {
		return "", fmt.Errorf("toolchain file %s: %w", path, err)
	}
	v.binds[real] = true
	return real, nil
}

// addExecutable makes path visible with everything the kernel and the dynamic
// loader need to start it: its script interpreter or ELF interpreter and the
// shared libraries it needs, transitively.
func (v *view) addExecutable(path string) error {
	done := map[string]bool{}
	queue := []string{path}
	dynamic := false
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		real, err := v.add(p)
		if err != nil {
			return err
		}
		if done[real] {
			continue
		}
		done[real] = true
		deps, err := loadDeps(p, real)
		if err != nil {
			return err
		}
		queue = append(queue, deps...)
		dynamic = dynamic || len(deps) > 0
	}
	if _, err := os.Stat(ldSoCache); err == nil && dynamic {
		// The loader's index of library paths, so libraries outside its built-in
		// directories are found in the sandbox as on the host.
		if _, err := v.add(ldSoCache); err != nil {
			return err
		}
	}
	return nil
}

// args returns the bwrap arguments that recreate the view: symlinks first, then
// the read-only binds, leaving out what a bound directory already holds.
func (v *view) args() []string {
	var dirs []string
	for p := range v.binds {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			dirs = append(dirs, p)
		}
	}
	covered := func(p string) bool {
		for _, d := range dirs {
			if strings.HasPrefix(p, d+"/") {
				return true
			}
		}
		return false
	}
	var args []string
	for _, at := range sortedKeys(v.links) {
		if !covered(at) {
			args = append(args, "--symlink", v.links[at], at)
		}
	}
	for _, p := range sortedKeys(v.binds) {
		if !covered(p) {
			args = append(args, "--ro-bind", p, p)
		}
	}
	return args
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// resolveLinks follows an absolute path one component at a time, calling link for
// each symlink met (its location and its target), and returns the real path.
func resolveLinks(path string, link func(at, target string)) (string, error) {
	if !filepath.IsAbs(path) {
		return "", fmt.Errorf("%s: not an absolute path", path)
	}
	resolved := "/"
	rest := strings.Split(filepath.Clean(path), "/")
	for hops := 0; len(rest) > 0; {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			resolved = filepath.Dir(resolved)
			continue
		}
		next := filepath.Join(resolved, name)
		fi, err := os.Lstat(next)
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		if hops++; hops > 40 {
			return "", errors.New("too many levels of symbolic links")
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", err
		}
		link(next, target)
		if filepath.IsAbs(target) {
			resolved = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return resolved, nil
}

const ldSoCache = "/etc/ld.so.cache"

// loadDeps returns what the program at path (real: its real path) needs to start:
// the interpreter of a script, or the ELF interpreter and DT_NEEDED libraries.
func loadDeps(path, real string) ([]string, error) {
	f, err := os.Open(real)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	head := make([]byte, 256)
	n, _ := f.Read(head)
	head = head[:n]
	if bytes.HasPrefix(head, []byte("#!")) {
		line, _, _ := bytes.Cut(head[2:], []byte("\n"))
		fields := strings.Fields(string(line))
		if len(fields) == 0 {
			return nil, fmt.Errorf("%s: empty #! line", path)
		}
		return fields[:1], nil
	}
	if !bytes.HasPrefix(head, []byte(elf.ELFMAG)) {
		return nil, nil // data: the AssemblyScript compiler, headers, rlibs
	}
	ef, err := elf.NewFile(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var deps []string
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return nil, fmt.Errorf("%s: read interpreter: %w", path, err)
			}
			deps = append(deps, string(bytes.TrimRight(b, "\x00")))
		}
	}
	needed, err := ef.DynString(elf.DT_NEEDED)
	if err != nil || len(needed) == 0 {
		return deps, nil // static
	}
	dirs := searchDirs(ef, path, real)
	for _, lib := range needed {
		p, err := findLibrary(lib, dirs, ef)
		if err != nil {
			return nil, fmt.Errorf("%s needs %s: %w", path, lib, err)
		}
		deps = append(deps, p)
	}
	return deps, nil
}

// searchDirs is where the loader looks for the libraries of ef, in its order:
// DT_RPATH (without DT_RUNPATH), DT_RUNPATH, the directories of ld.so.conf (its
// cache), then the built-in directories.
func searchDirs(ef *elf.File, path, real string) []string {
	var dirs []string
	expand := func(list []string) {
		for _, entry := range list {
			for _, d := range strings.Split(entry, ":") {
				for _, origin := range []string{filepath.Dir(real), filepath.Dir(path)} {
					x := strings.NewReplacer("${ORIGIN}", origin, "$ORIGIN", origin).Replace(d)
					if filepath.IsAbs(x) {
						dirs = append(dirs, filepath.Clean(x))
					}
				}
			}
		}
	}
	runpath, _ := ef.DynString(elf.DT_RUNPATH)
	if len(runpath) == 0 {
		rpath, _ := ef.DynString(elf.DT_RPATH)
		expand(rpath)
	}
	expand(runpath)
	dirs = append(dirs, ldSoConfDirs("/etc/ld.so.conf", 0)...)
	multiarch := map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}[runtime.GOARCH]
	if multiarch != "" {
		dirs = append(dirs, "/lib/"+multiarch, "/usr/lib/"+multiarch)
	}
	return append(dirs, "/lib64", "/usr/lib64", "/lib", "/usr/lib")
}

// ldSoConfDirs reads the library directories of an ld.so.conf and its includes.
func ldSoConfDirs(file string, depth int) []string {
	f, err := os.Open(file)
	if err != nil || depth > 8 {
		return nil
	}
	defer f.Close()
	var dirs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "include"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			pattern := strings.TrimSpace(rest)
			if !filepath.IsAbs(pattern) {
				pattern = filepath.Join(filepath.Dir(file), pattern)
			}
			matches, _ := filepath.Glob(pattern)
			for _, m := range matches {
				dirs = append(dirs, ldSoConfDirs(m, depth+1)...)
			}
			continue
		}
		if filepath.IsAbs(line) {
			dirs = append(dirs, filepath.Clean(line))
		}
	}
	return dirs
}

// findLibrary finds lib in dirs, skipping libraries of another ELF class or machine.
func findLibrary(lib string, dirs []string, want *elf.File) (string, error) {
	if strings.Contains(lib, "/") {
		return lib, nil
	}
	for _, d := range dirs {
		p := filepath.Join(d, lib)
		lf, err := elf.Open(p)
		if err != nil {
			continue
		}
		ok := lf.Class == want.Class && lf.Machine == want.Machine
		lf.Close()
		if ok {
			return p, nil
		}
	}
	return "", errors.New("not found in " + strings.Join(dirs, ":"))
}
