package gateway

// File descriptors. Every session and every pending connection holds one, so the
// session limit must fit the process's RLIMIT_NOFILE, or a flood of connections runs
// the process out of descriptors and the HTTP side, the desired-state store, the
// artifact store, the Kubernetes client and the event sink fail with it. New keeps a
// reserve for them:
//
//	http    = clamp(limit/16, 4, 256)          connections per HTTP listener
//	reserve = min(limit/2, 64 + 2*http)        64 for files, clients and listeners
//	sessions (with pending) <= limit - reserve
//
// With the usual container limit of 1,048,576 the reserve is 576 and the configured
// --max-sessions is the bound; with 1,024 it is 192 (832 sessions); with 64, 32.

const (
	// DefaultMaxHTTPConns bounds the connections each HTTP listener serves at once.
	DefaultMaxHTTPConns = 256
	// reservedFiles are the descriptors kept for everything but connections.
	reservedFiles = 64
)

// Limits are the bounds a Server derived from its configuration and its
// file-descriptor limit.
type Limits struct {
	// FileLimit is the RLIMIT_NOFILE they come from (WithFileLimit, or the process's
	// soft limit when New ran); 0 when it is unknown.
	FileLimit uint64
	// MaxSessions bounds sessions plus pending connections: WithMaxSessions, lowered
	// to fit FileLimit.
	MaxSessions int
	// MaxPending bounds connections before a checked Hello (at most MaxSessions).
	MaxPending int
	// HTTPConns bounds the connections each HTTP listener serves at once.
	HTTPConns int
}

// deriveLimits fits the configured bounds into nofile descriptors (0: unknown).
func deriveLimits(nofile uint64, maxSessions, maxPending int) Limits {
	l := Limits{FileLimit: nofile, MaxSessions: maxSessions, HTTPConns: DefaultMaxHTTPConns}
	if nofile > 0 {
		l.HTTPConns = int(min(max(nofile/16, 4), DefaultMaxHTTPConns))
		reserve := min(nofile/2, reservedFiles+2*uint64(l.HTTPConns))
		l.MaxSessions = int(min(uint64(maxSessions), nofile-reserve))
	}
	l.MaxPending = min(maxPending, l.MaxSessions)
	return l
}
