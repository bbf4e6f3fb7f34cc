// Package debian turns pinned Debian packages into image layers without Docker or
// root: it resolves a package list to its dependency closure with apt (Resolve),
// downloads each .deb by its pinned version and checks its SHA-256 (Fetch), and reads
// its files with dpkg-deb (AddTo). Maintainer scripts do not run.
package debian

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Package is one pinned .deb.
type Package struct {
	Name, Version, Arch string
	// SHA256 is the .deb's checksum as Debian's signed index lists it.
	SHA256 string
}

// Lock is a sorted list of pinned packages: the closure of a few wanted packages.
type Lock []Package

// ParseLock reads a lock file: one "name version arch sha256" per line, "#" comments.
func ParseLock(r io.Reader) (Lock, error) {
	var l Lock
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 4 || len(f[3]) != 64 {
			return nil, fmt.Errorf("lock line %d: want \"name version arch sha256\", got %q", n, line)
		}
		l = append(l, Package{Name: f[0], Version: f[1], Arch: f[2], SHA256: f[3]})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !sort.SliceIsSorted(l, func(i, j int) bool { return l[i].Name < l[j].Name }) {
		return nil, fmt.Errorf("lock is not sorted by package name")
	}
	return l, nil
}

// Format writes l as a lock file under a header comment.
func (l Lock) Format(w io.Writer, header string) error {
	bw := bufio.NewWriter(w)
	for _, line := range strings.Split(strings.TrimRight(header, "\n"), "\n") {
		fmt.Fprintf(bw, "# %s\n", line)
	}
	for _, p := range l {
		fmt.Fprintf(bw, "%s %s %s %s\n", p.Name, p.Version, p.Arch, p.SHA256)
	}
	return bw.Flush()
}

// Arches returns the architectures the lock names ("all" for architecture-independent
// packages), sorted.
func (l Lock) Arches() []string {
	set := map[string]bool{}
	for _, p := range l {
		set[p.Arch] = true
	}
	var out []string
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}
