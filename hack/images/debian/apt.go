package debian

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// instRE matches a line of apt-get's simulated install: "Inst name (version suite [arch])".
var instRE = regexp.MustCompile(`^Inst (\S+) \((\S+) .*\[(\S+)\]\)`)

// Resolve pins wanted (package names) to the versions apt would install now, with
// each .deb's SHA-256. With closure, it adds every package they depend on (without
// recommends), as apt would install them on an empty system; without, it pins
// wanted alone (for files that need none of their dependencies, such as
// certificates and time zones).
func Resolve(ctx context.Context, wanted []string, closure bool) (Lock, error) {
	var l Lock
	if closure {
		args := append([]string{"install", "--dry-run", "-qq", "--no-install-recommends", "-o", "Dir::State::status=/dev/null"}, wanted...)
		out, err := run(ctx, "apt-get", args...)
		if err != nil {
			return nil, fmt.Errorf("resolve %v: %w", wanted, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if m := instRE.FindStringSubmatch(line); m != nil {
				l = append(l, Package{Name: m[1], Version: m[2], Arch: m[3]})
			}
		}
	} else {
		for _, name := range wanted {
			out, err := run(ctx, "apt-cache", "show", "--no-all-versions", name)
			if err != nil {
				return nil, fmt.Errorf("resolve %s: %w", name, err)
			}
			f := fields(out)
			l = append(l, Package{Name: name, Version: f["Version"], Arch: f["Architecture"], SHA256: f["SHA256"]})
		}
	}
	if len(l) == 0 {
		return nil, fmt.Errorf("resolve %v: apt would install nothing (run apt-get update?)", wanted)
	}
	sort.Slice(l, func(i, j int) bool { return l[i].Name < l[j].Name })
	for i := range l {
		if l[i].SHA256 != "" {
			continue
		}
		out, err := run(ctx, "apt-cache", "show", l[i].Name+":"+l[i].Arch+"="+l[i].Version)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", l[i].Name, err)
		}
		l[i].SHA256 = fields(out)["SHA256"]
	}
	for _, p := range l {
		if p.Version == "" || p.Arch == "" || len(p.SHA256) != 64 {
			return nil, fmt.Errorf("resolve %s: apt's index gives no version, architecture or SHA256: %+v", p.Name, p)
		}
	}
	return l, nil
}

// fields parses the first record of apt-cache show's output ("Key: value" lines).
func fields(out []byte) map[string]string {
	f := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if line == "" {
			break
		}
		if k, v, ok := strings.Cut(line, ": "); ok && !strings.HasPrefix(k, " ") {
			f[k] = strings.TrimSpace(v)
		}
	}
	return f
}

// Fetch returns the path of p's .deb in cacheDir (named by its SHA-256), downloading
// it with apt-get first when it is not there. A download whose checksum differs from
// the lock's is an error. When apt does not know the pinned version, Fetch runs
// apt-get update once (as root) and tries again.
func Fetch(ctx context.Context, p Package, cacheDir string) (string, error) {
	dest := filepath.Join(cacheDir, p.SHA256+".deb")
	if sum, err := fileSHA256(dest); err == nil && sum == p.SHA256 {
		return dest, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(cacheDir, "download-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	spec := p.Name + ":" + p.Arch + "=" + p.Version
	if p.Arch == "all" {
		spec = p.Name + "=" + p.Version
	}
	download := func() error {
		cmd := exec.CommandContext(ctx, "apt-get", "download", "-qq", spec)
		cmd.Dir = tmp
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get download %s: %w: %s", spec, err, bytes.TrimSpace(out))
		}
		return nil
	}
	if err := download(); err != nil {
		if os.Geteuid() != 0 {
			return "", fmt.Errorf("%w (Debian may no longer serve this version: go run ./hack/images lock pins the current ones)", err)
		}
		if _, uerr := run(ctx, "apt-get", "update", "-qq"); uerr != nil {
			return "", fmt.Errorf("%w; apt-get update: %v", err, uerr)
		}
		if err := download(); err != nil {
			return "", fmt.Errorf("%w (Debian no longer serves this version: go run ./hack/images lock pins the current ones; then make images and commit ko.yaml's new digests)", err)
		}
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("apt-get download %s left %d files", spec, len(debs))
	}
	sum, err := fileSHA256(debs[0])
	if err != nil {
		return "", err
	}
	if sum != p.SHA256 {
		return "", fmt.Errorf("%s: downloaded .deb has SHA-256 %s, the lock says %s", spec, sum, p.SHA256)
	}
	return dest, os.Rename(debs[0], dest)
}

func fileSHA256(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// HostArch is dpkg's name for this machine's architecture, "" when dpkg cannot say.
func HostArch(ctx context.Context) string {
	out, err := run(ctx, "dpkg", "--print-architecture")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}
