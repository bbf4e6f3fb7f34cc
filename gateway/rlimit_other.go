//go:build !unix

package gateway

import "errors"

// RaiseFileLimit is not supported on this system; the session limit is then
// WithMaxSessions alone.
func RaiseFileLimit() (uint64, error) {
	return 0, errors.New("RLIMIT_NOFILE is not supported on this system")
}

func fileLimit() uint64 { return 0 }
