package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"

	"github.com/wasmbed/wasmbed/api/digest"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/gateway"
	"github.com/wasmbed/wasmbed/internal/artifacts"
	"github.com/wasmbed/wasmbed/internal/pki"
	wasmfix "github.com/wasmbed/wasmbed/testdata/wasm"
)

// target is a server under measurement.
type target interface {
	addr() string
	sessions() int
	fanout(n int) (time.Duration, error)
}

func serverCert(ca *pki.CA) (tls.Certificate, error) {
	certPEM, keyPEM, err := ca.IssueServer([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, 0)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

func serverMain() error {
	ca, err := pki.LoadCA(*pkiDir)
	if err != nil {
		return err
	}
	cert, err := serverCert(ca)
	if err != nil {
		return err
	}
	var t target
	switch *mode {
	case "gateway":
		t, err = newGatewayTarget(ca, cert)
	case "baseline":
		t, err = newBaseline(ca, cert)
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	if err != nil {
		return err
	}
	return commandLoop(func(cmd []string) (string, error) {
		switch cmd[0] {
		case "addr":
			return "addr " + t.addr(), nil
		case "mem":
			return memLine(), nil
		case "wait":
			n, _ := strconv.Atoi(cmd[1])
			deadline := time.Now().Add(3 * time.Minute)
			for t.sessions() != n {
				if time.Now().After(deadline) {
					return "", fmt.Errorf("%d sessions, want %d", t.sessions(), n)
				}
				time.Sleep(20 * time.Millisecond)
			}
			return "ok", nil
		case "pprof":
			runtime.GC()
			f, err := os.Create(cmd[1])
			if err != nil {
				return "", err
			}
			defer f.Close()
			return "ok", pprof.WriteHeapProfile(f)
		case "fanout":
			n, _ := strconv.Atoi(cmd[1])
			d, err := t.fanout(n)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("fanout seconds=%f", d.Seconds()), nil
		}
		return "", fmt.Errorf("unknown command %q", cmd[0])
	})
}

// commandLoop answers one line per command until "quit" or end of input. Both roles
// answer "cpu" and "profile", so that the coordinator can tell which process spent a
// phase's CPU time and where.
func commandLoop(do func([]string) (string, error)) error {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd := strings.Fields(sc.Text())
		if len(cmd) == 0 {
			continue
		}
		if cmd[0] == "quit" {
			fmt.Println("bye")
			return nil
		}
		var out string
		var err error
		switch cmd[0] {
		case "cpu":
			out = fmt.Sprintf("cpu seconds=%f", cpuSeconds())
		case "profile":
			err = profile(cmd[1:])
			out = "ok"
		default:
			out, err = do(cmd)
		}
		if err != nil {
			out = "error " + strings.ReplaceAll(err.Error(), "\n", " ")
		}
		fmt.Println(out)
	}
	return sc.Err()
}

// cpuSeconds is the user and system CPU time this process has used.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

// profile starts ("start FILE") or stops ("stop") this process's CPU profile.
func profile(args []string) error {
	switch {
	case len(args) == 2 && args[0] == "start":
		f, err := os.Create(args[1])
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("cpu profile: %w", err)
		}
		profileFile = f
		profileName = args[1]
		return writeAllocs(args[1] + ".allocs0")
	case len(args) == 1 && args[0] == "stop" && profileFile != nil:
		pprof.StopCPUProfile()
		err := profileFile.Close()
		profileFile = nil
		if err != nil {
			return err
		}
		return writeAllocs(profileName + ".allocs1")
	}
	return fmt.Errorf("profile %q: want start FILE or stop while profiling", args)
}

// profileFile is the CPU profile being written, profileName its name; commands run one
// at a time.
var (
	profileFile *os.File
	profileName string
)

// writeAllocs writes the allocation profile so far to name; the difference of the
// profiles written when the CPU profile starts and stops says what a phase allocated
// (go tool pprof -sample_index=alloc_space -diff_base FILE.allocs0 FILE.allocs1).
func writeAllocs(name string) error {
	runtime.GC() // the profile is as of the last collection
	f, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("allocation profile: %w", err)
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		return fmt.Errorf("allocation profile: %w", err)
	}
	return nil
}

func memLine() string {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	rss := 0
	if data, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(data)); len(f) > 1 {
			pages, _ := strconv.Atoi(f[1])
			rss = pages * os.Getpagesize()
		}
	}
	return fmt.Sprintf("mem heapstack=%d heap=%d stack=%d rss=%d goroutines=%d", m.HeapInuse+m.StackInuse, m.HeapInuse, m.StackInuse, rss, runtime.NumGoroutine())
}

// gatewayTarget is the Wasmbed gateway with a counting event sink.
type gatewayTarget struct {
	srv       *gateway.Server
	l         net.Listener
	digest    digest.Digest
	size      int
	succeeded atomic.Int64
	failed    atomic.Int64
}

func newGatewayTarget(ca *pki.CA, cert tls.Certificate) (*gatewayTarget, error) {
	dir, err := os.MkdirTemp("", "wasmbed-bench-store-")
	if err != nil {
		return nil, err
	}
	store, err := artifacts.NewDir(dir)
	if err != nil {
		return nil, err
	}
	module := padModule(wasmfix.Blink, *moduleSize)
	g := &gatewayTarget{size: len(module)}
	if g.digest, err = store.Put(context.Background(), module); err != nil {
		return nil, err
	}
	sink := gateway.SinkFunc(func(e cloudevents.Event) {
		switch events.Type(e.Type()) {
		case events.DeploymentSucceeded:
			g.succeeded.Add(1)
		case events.DeploymentFailed:
			g.failed.Add(1)
		}
	})
	// Every bench client dials from 127.0.0.1: no per-source limit.
	g.srv, err = gateway.New(gateway.NewConfig(ca.Pool(), cert).WithName("bench/gw").WithArtifacts(store).WithSink(sink).
		WithMaxPendingPerSource(0))
	if err != nil {
		return nil, err
	}
	if g.l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	go g.srv.Serve(g.l)
	return g, nil
}

func (g *gatewayTarget) addr() string  { return g.l.Addr().String() }
func (g *gatewayTarget) sessions() int { return g.srv.Sessions() }

func (g *gatewayTarget) fanout(n int) (time.Duration, error) {
	devices := make([]string, n)
	for i := range devices {
		devices[i] = "d-" + strconv.Itoa(i)
	}
	e, err := events.New(events.DeploymentRequested, "/bench", "bench/app", &events.DeploymentRequestedData{
		Application: events.AppRef{Namespace: "bench", Name: "app", Generation: 1},
		Gateway:     v1.Ref{Namespace: "bench", Name: "gw"}, Digest: g.digest, Size: int64(g.size), Devices: devices,
	})
	if err != nil {
		return 0, err
	}
	g.succeeded.Store(0)
	start := time.Now()
	if _, err := g.srv.Handle(context.Background(), e); err != nil {
		return 0, err
	}
	deadline := start.Add(5 * time.Minute)
	for g.succeeded.Load() < int64(n) {
		if f := g.failed.Load(); f > 0 {
			return 0, fmt.Errorf("%d deployments failed", f)
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%d of %d succeeded", g.succeeded.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start), nil
}

// baseline is a plain goroutine-per-connection TLS echo server with bufio reader and
// writer per connection, the usual way a Go server is written.
type baseline struct {
	l     net.Listener
	mu    sync.Mutex
	conns map[*bconn]struct{}
	acks  atomic.Int64
}

type bconn struct {
	c   *tls.Conn
	r   *bufio.Reader
	wmu sync.Mutex
	w   *bufio.Writer
}

func newBaseline(ca *pki.CA, cert tls.Certificate) (*baseline, error) {
	tc, err := pki.ServerTLSConfig(ca.Pool(), cert, pki.TLSOptions{})
	if err != nil {
		return nil, err
	}
	tc.SessionTicketsDisabled = true // as the gateway: every handshake is a full one
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &baseline{l: l, conns: map[*bconn]struct{}{}}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			go b.serve(tls.Server(c, tc))
		}
	}()
	return b, nil
}

func (b *baseline) serve(c *tls.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.Handshake(); err != nil {
		return
	}
	_ = c.SetDeadline(time.Time{})
	bc := &bconn{c: c, r: bufio.NewReader(c), w: bufio.NewWriter(c)}
	b.mu.Lock()
	b.conns[bc] = struct{}{}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.conns, bc)
		b.mu.Unlock()
	}()
	for {
		_ = c.SetReadDeadline(time.Now().Add(90 * time.Second))
		ch, err := bc.r.ReadByte()
		if err != nil {
			return
		}
		if ch == 'a' {
			b.acks.Add(1)
			continue
		}
		bc.wmu.Lock()
		_ = bc.w.WriteByte(ch)
		err = bc.w.Flush()
		bc.wmu.Unlock()
		if err != nil {
			return
		}
	}
}

func (b *baseline) addr() string { return b.l.Addr().String() }

func (b *baseline) sessions() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

func (b *baseline) fanout(n int) (time.Duration, error) {
	payload := make([]byte, *moduleSize)
	b.acks.Store(0)
	start := time.Now()
	b.mu.Lock()
	for bc := range b.conns {
		go func() {
			bc.wmu.Lock()
			defer bc.wmu.Unlock()
			_, _ = bc.w.Write(payload)
			_ = bc.w.Flush()
		}()
	}
	b.mu.Unlock()
	deadline := start.Add(5 * time.Minute)
	for b.acks.Load() < int64(n) {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%d of %d acknowledged", b.acks.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start), nil
}

// padModule grows wasm to n bytes with a custom section; it stays a valid module.
func padModule(wasm []byte, n int) []byte {
	if n <= len(wasm)+16 {
		return wasm
	}
	name := "pad"
	payload := n - len(wasm) - 1 - 5 - 1 - len(name)
	out := append([]byte(nil), wasm...)
	size := uint32(1 + len(name) + payload)
	out = append(out, 0, byte(size)|0x80, byte(size>>7)|0x80, byte(size>>14)|0x80, byte(size>>21)|0x80, byte(size>>28))
	out = append(out, byte(len(name)))
	out = append(out, name...)
	return append(out, make([]byte, payload)...)
}
