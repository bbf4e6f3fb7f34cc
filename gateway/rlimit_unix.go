//go:build unix

package gateway

import (
	"fmt"
	"syscall"
)

// RaiseFileLimit raises the soft RLIMIT_NOFILE to the hard limit, where allowed, and
// returns the soft limit in effect. (Go's os package does the same at start on most
// systems; calling it says so and reports the result.) New derives the session limit
// from the soft limit.
func RaiseFileLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, fmt.Errorf("getrlimit RLIMIT_NOFILE: %w", err)
	}
	if l.Cur < l.Max {
		raised := syscall.Rlimit{Cur: l.Max, Max: l.Max}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			return uint64(l.Cur), fmt.Errorf("raise RLIMIT_NOFILE from %d to %d: %w", l.Cur, l.Max, err)
		}
		l = raised
	}
	return uint64(l.Cur), nil
}

// fileLimit returns the soft RLIMIT_NOFILE, or 0 when it cannot be read.
func fileLimit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	return uint64(l.Cur)
}
