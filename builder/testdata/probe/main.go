// Command probe reports, as JSON, what a process in the build sandbox can see and
// do. The builder's tests run it through the sandbox runner every compiler step uses.
//
//	probe -dial 127.0.0.1:8080 -kill 1234 -read /path/a -read /path/b [-try-escape]
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Report is what the probe found; errors are their messages, "" when the call worked.
type Report struct {
	UID, GID   int
	Status     map[string]string // of /proc/self/status: CapEff, NoNewPrivs, Seccomp
	Env        []string
	Pid1Env    string
	Pids       []int
	Kill       string
	Root       []string
	Reads      map[string]string // path -> content or error
	Dial       string
	DialOut    string
	InetSocket string
	Unshare    string
	Mount      string
	WriteRoot  string
	WriteSelf  string
	WriteTmp   string
	WriteBuild string
	Hostname   string
}

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	var reads list
	dial := flag.String("dial", "", "a TCP address to connect to")
	kill := flag.Int("kill", 0, "a host pid to signal with 0")
	escape := flag.Bool("try-escape", false, "try to mount, unshare and write where the sandbox forbids it")
	flag.Var(&reads, "read", "a file to read (repeatable)")
	flag.Parse()

	r := Report{UID: os.Getuid(), GID: os.Getgid(), Env: os.Environ(), Status: status(), Reads: map[string]string{}}
	if b, err := os.ReadFile("/proc/1/environ"); err != nil {
		r.Pid1Env = "error: " + err.Error()
	} else {
		r.Pid1Env = string(b)
	}
	r.Pids = pids()
	if *kill > 0 {
		r.Kill = errString(syscall.Kill(*kill, 0))
	}
	if entries, err := os.ReadDir("/"); err == nil {
		for _, e := range entries {
			r.Root = append(r.Root, e.Name())
		}
	}
	for _, p := range reads {
		if b, err := os.ReadFile(p); err != nil {
			r.Reads[p] = "error: " + errString(err)
		} else {
			r.Reads[p] = string(b)
		}
	}
	r.Dial = dialErr(*dial)
	r.DialOut = dialErr("1.1.1.1:53")
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.Close(fd)
	}
	r.InetSocket = errString(err)
	if *escape {
		tryEscape(&r)
	}
	r.Hostname, _ = os.Hostname()
	_ = json.NewEncoder(os.Stdout).Encode(r)
}

// tryEscape tries what the sandbox forbids. Each attempt undoes itself when it
// works, so that even a probe run outside a sandbox changes nothing: the mount is
// made on a directory of the working directory and unmounted, files are removed,
// the program's own file is opened for writing but not written.
func tryEscape(r *Report) {
	r.Unshare = errString(syscall.Unshare(syscall.CLONE_NEWUSER))
	if err := os.Mkdir("probe-mnt", 0o755); err != nil {
		r.Mount = "mkdir: " + err.Error()
	} else {
		err := syscall.Mount("none", "probe-mnt", "tmpfs", 0, "")
		if err == nil {
			_ = syscall.Unmount("probe-mnt", syscall.MNT_DETACH)
		}
		r.Mount = errString(err)
		_ = os.Remove("probe-mnt")
	}
	r.WriteRoot = tryWrite("/probe-was-here")
	r.WriteTmp = tryWrite("/tmp/probe-was-here")
	r.WriteBuild = tryWrite("probe-was-here")
	f, err := os.OpenFile(os.Args[0], os.O_WRONLY, 0)
	if err == nil {
		f.Close()
	}
	r.WriteSelf = errString(err)
}

// tryWrite creates a file that did not exist, and removes it.
func tryWrite(p string) string {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return errString(err)
	}
	f.Close()
	_ = os.Remove(p)
	return ""
}

func status() map[string]string {
	out := map[string]string{}
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && (k == "CapEff" || k == "CapPrm" || k == "NoNewPrivs" || k == "Seccomp") {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

func pids() []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func dialErr(addr string) string {
	if addr == "" {
		return "not tried"
	}
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
	}
	return errString(err)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return err.Error() + " (" + errnoName(errno) + ")"
	}
	return err.Error()
}

func errnoName(e syscall.Errno) string {
	for name, v := range map[string]syscall.Errno{"EPERM": syscall.EPERM, "ENOENT": syscall.ENOENT, "ESRCH": syscall.ESRCH,
		"EACCES": syscall.EACCES, "EROFS": syscall.EROFS, "EAFNOSUPPORT": syscall.EAFNOSUPPORT, "ENETUNREACH": syscall.ENETUNREACH,
		"ECONNREFUSED": syscall.ECONNREFUSED, "ENOSYS": syscall.ENOSYS} {
		if e == v {
			return name
		}
	}
	return strconv.Itoa(int(e))
}
