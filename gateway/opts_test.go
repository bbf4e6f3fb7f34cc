package gateway_test

import (
	"crypto/tls"
	"fmt"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/gateway"

	"github.com/wasmbed/wasmbed/internal/devicesim"
)

func nsOpt(ns string) func(*devicesim.Config) { return func(c *devicesim.Config) { c.Namespace = ns } }
func windowOpt(w uint32) func(*devicesim.Config) {
	return func(c *devicesim.Config) { c.Window = w; c.MaxFrame = 512 }
}
func heartbeatOpt(d time.Duration) func(*devicesim.Config) {
	return func(c *devicesim.Config) { c.Heartbeat = d }
}

// TestLimitsFitTheFileLimit: sessions and pending connections are bounded so that the
// HTTP side, stores and clients keep descriptors (docs/gateway.md, "File descriptors").
func TestLimitsFitTheFileLimit(t *testing.T) {
	for _, tc := range []struct {
		nofile      uint64
		maxSessions int
		want        gateway.Limits
	}{
		{64, gateway.DefaultMaxSessions, gateway.Limits{FileLimit: 64, MaxSessions: 32, MaxPending: 32, HTTPConns: 4}},
		{1024, gateway.DefaultMaxSessions, gateway.Limits{FileLimit: 1024, MaxSessions: 832, MaxPending: 832, HTTPConns: 64}},
		{20000, gateway.DefaultMaxSessions, gateway.Limits{FileLimit: 20000, MaxSessions: 19424, MaxPending: 1024, HTTPConns: 256}},
		{1 << 20, gateway.DefaultMaxSessions, gateway.Limits{FileLimit: 1 << 20, MaxSessions: 100_000, MaxPending: 1024, HTTPConns: 256}},
		{1 << 20, 500, gateway.Limits{FileLimit: 1 << 20, MaxSessions: 500, MaxPending: 500, HTTPConns: 256}},
	} {
		t.Run(fmt.Sprintf("%d files, %d sessions", tc.nofile, tc.maxSessions), func(t *testing.T) {
			ca := testCA(t)
			certPEM, keyPEM, err := ca.IssueServer([]string{"localhost"}, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			cert, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			srv, err := gateway.New(gateway.NewConfig(ca.Pool(), cert).WithFileLimit(tc.nofile).WithMaxSessions(tc.maxSessions))
			if err != nil {
				t.Fatal(err)
			}
			if got := srv.Limits(); got != tc.want {
				t.Errorf("limits %+v, want %+v", got, tc.want)
			}
		})
	}
}
