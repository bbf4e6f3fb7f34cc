package gateway_test

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/gateway"
)

// scriptedListener fails Accept with errs, in order, then accepts from the real
// listener.
type scriptedListener struct {
	net.Listener
	mu   sync.Mutex
	errs []error
}

func (l *scriptedListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		l.mu.Unlock()
		return nil, err
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

func acceptErr(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestAcceptErrors: temporary accept failures are counted by kind and the gateway
// keeps accepting (a device connects after them); any other failure ends Serve.
func TestAcceptErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		label string // "" when the error is permanent
	}{
		{"EMFILE", acceptErr(syscall.EMFILE), "error=emfile"},
		{"ENFILE", acceptErr(syscall.ENFILE), "error=enfile"},
		{"ENOBUFS", acceptErr(syscall.ENOBUFS), "error=enobufs"},
		{"ENOMEM", acceptErr(syscall.ENOMEM), "error=enomem"},
		{"timeout", &net.OpError{Op: "accept", Net: "tcp", Err: timeoutErr{}}, "error=timeout"},
		{"permanent", &net.OpError{Op: "accept", Net: "tcp", Err: errors.New("listener broke")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			sl := &scriptedListener{Listener: l, errs: []error{tc.err, tc.err, tc.err}}
			served := make(chan error, 1)
			go func() { served <- h.srv.Serve(sl) }()
			if tc.label == "" {
				select {
				case err := <-served:
					if err == nil || errors.Is(err, gateway.ErrServerClosed) || !errors.Is(err, tc.err) {
						t.Fatalf("Serve returned %v, want the accept error", err)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("Serve goes on after a permanent accept error")
				}
				return
			}
			h.addr = l.Addr().String()
			h.connect(id("default", "acc-0"), 2048) // Welcome: accepting goes on
			if got := h.counter(gateway.MetricAcceptErrors, tc.label); got != 3 {
				t.Errorf("%s{%s} = %v, want 3", gateway.MetricAcceptErrors, tc.label, got)
			}
			if !hasLog(h, "accept failed", tc.label) {
				t.Errorf("no log line for the accept failure; logs:\n%s", h.logs.String())
			}
			select {
			case err := <-served:
				t.Fatalf("Serve returned %v", err)
			default:
			}
		})
	}
}
