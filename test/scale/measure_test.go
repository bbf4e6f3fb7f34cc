package scale_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
)

// apiserverWrites returns the kube-apiserver's count of writes (POST, PUT, PATCH,
// APPLY) to Devices and Applications, subresources included, from its /metrics, and
// how many of them it refused with 409 Conflict.
func apiserverWrites(ctx context.Context, cfg *rest.Config) (writes, conflicts float64, err error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return 0, 0, fmt.Errorf("apiserver metrics: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(cfg.Host, "/")+"/metrics", nil)
	if err != nil {
		return 0, 0, fmt.Errorf("apiserver metrics: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("apiserver metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("apiserver metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		end := strings.LastIndexByte(line, '}')
		if end < 0 {
			return 0, 0, fmt.Errorf("apiserver metrics: malformed line %q", line)
		}
		labels := parseLabels(line[len("apiserver_request_total{"):end])
		switch labels["verb"] {
		case "POST", "PUT", "PATCH", "APPLY":
		default:
			continue
		}
		if r := labels["resource"]; r != "devices" && r != "applications" {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(line[end+1:]), 64)
		if err != nil {
			return 0, 0, fmt.Errorf("apiserver metrics: %q: %w", line, err)
		}
		writes += v
		if labels["code"] == "409" {
			conflicts += v
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("apiserver metrics: %w", err)
	}
	return writes, conflicts, nil
}

// parseLabels parses `a="x",b="y"` (values without escaped quotes, as these are).
func parseLabels(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if ok {
			out[k] = strings.Trim(v, `"`)
		}
	}
	return out
}

// selfCPU returns this process's user and system CPU time (the platform: the devices
// run in processes of their own).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// userHZ is the unit of /proc/PID/stat's times on Linux.
const userHZ = 100

// procCPU returns the user and system CPU time of process pid from /proc.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: the fields follow its end.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	// Fields after the name start at 3 (state); utime and stime are 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	return time.Duration(ut+st) * time.Second / userHZ, nil
}

// childPIDs returns the pids of this process's children named name (the envtest
// apiserver and etcd are).
func childPIDs(name string) []int {
	self := os.Getpid()
	matches, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open || s[open+1:end] != name {
			continue
		}
		f := strings.Fields(s[end+1:])
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil && ppid == self {
			if pid, err := strconv.Atoi(strings.TrimSpace(s[:open])); err == nil {
				out = append(out, pid)
			}
		}
	}
	return out
}

// cpuOf sums procCPU over pids, skipping those that are gone.
func cpuOf(pids []int) time.Duration {
	var t time.Duration
	for _, pid := range pids {
		if d, err := procCPU(pid); err == nil {
			t += d
		}
	}
	return t
}

// metricSum sums the samples of metric whose labels include every one of match, from
// the Prometheus text at url.
func metricSum(ctx context.Context, url, metric string, match map[string]string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: %s", url, resp.Status)
	}
	var n float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, metric+"{") {
			continue
		}
		end := strings.LastIndexByte(line, '}')
		if end < 0 {
			continue
		}
		labels := parseLabels(line[len(metric)+1 : end])
		ok := true
		for k, v := range match {
			ok = ok && labels[k] == v
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(line[end+1:]), 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q: %w", url, line, err)
		}
		n += v
	}
	return n, sc.Err()
}
