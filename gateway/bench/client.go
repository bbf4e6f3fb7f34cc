package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmbed/wasmbed/api/protocol"
	"github.com/wasmbed/wasmbed/internal/devicesim"
	"github.com/wasmbed/wasmbed/internal/pki"
)

func clientMain() error {
	ca, err := pki.LoadCA(*pkiDir)
	if err != nil {
		return err
	}
	var (
		cancel context.CancelFunc
		done   chan struct{}
		conns  []net.Conn
		lean   *leanFleet
	)
	closeAll := func() {
		if cancel != nil {
			cancel()
			<-done
			cancel = nil
		}
		if lean != nil {
			lean.close()
			lean = nil
		}
		for _, c := range conns {
			c.Close()
		}
		conns = nil
	}
	return commandLoop(func(cmd []string) (string, error) {
		switch cmd[0] {
		case "connect":
			n, _ := strconv.Atoi(cmd[1])
			if *mode == "gateway" && *device == "lean" {
				f, err := connectLean(ca, n)
				if err != nil {
					return "", err
				}
				lean = f
				return "connected", nil
			}
			if *mode == "gateway" {
				fleet, err := devicesim.NewFleet(context.Background(), devicesim.Config{
					Gateway: *addr, ServerName: "localhost", CA: ca, Namespace: "bench", NamePrefix: "d-", Count: n,
					NoRun: !*run, MinBackoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second,
				})
				if err != nil {
					return "", err
				}
				var ctx context.Context
				ctx, cancel = context.WithCancel(context.Background())
				done = make(chan struct{})
				go func() { fleet.Run(ctx); fleet.Close(context.Background()); close(done) }()
				return "connected", nil
			}
			cs, err := baselineConnect(ca, n)
			conns = cs
			if err != nil {
				return "", err
			}
			return "connected", nil
		case "close":
			closeAll()
			return "closed", nil
		case "churn":
			ms, _ := strconv.Atoi(cmd[1])
			workers, _ := strconv.Atoi(cmd[2])
			n, err := churn(ca, time.Duration(ms)*time.Millisecond, workers)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("churn count=%d", n), nil
		}
		return "", fmt.Errorf("unknown command %q", cmd[0])
	})
}

func clientConfig(ca *pki.CA, id pki.Identity) (*tls.Config, error) {
	certPEM, keyPEM, err := ca.IssueDevice(id, 0)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	tc, err := pki.ClientTLSConfig(ca.Pool(), cert, "localhost", pki.TLSOptions{})
	if err != nil {
		return nil, err
	}
	tc.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256} // as devicesim: a device's TLS stack
	return tc, nil
}

// baselineConnect opens n echo connections that acknowledge every module-sized
// payload with one byte.
func baselineConnect(ca *pki.CA, n int) ([]net.Conn, error) {
	tc, err := clientConfig(ca, pki.Identity{Namespace: "bench", Name: "echo"})
	if err != nil {
		return nil, err
	}
	conns := make([]net.Conn, n)
	failed, first := parallel(n, 256, func(i int) error {
		c, err := dialRecords(tc, 30*time.Second)
		if err != nil {
			return err
		}
		var b [1]byte
		if _, err := c.Write([]byte{'x'}); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return err
		}
		conns[i] = c
		go func() {
			buf := make([]byte, 16<<10)
			got := 0
			for {
				k, err := c.Read(buf)
				if err != nil {
					return
				}
				for got += k; got >= *moduleSize; got -= *moduleSize {
					if _, err := c.Write([]byte{'a'}); err != nil {
						return
					}
				}
			}
		}()
		return nil
	})
	if failed > 0 {
		return conns, fmt.Errorf("%d connections failed, first: %v", failed, first)
	}
	return conns, nil
}

// churn opens sessions back to back from workers for d: a full TLS handshake, then
// Hello/Welcome (gateway) or one echoed byte (baseline), then close.
func churn(ca *pki.CA, d time.Duration, workers int) (int64, error) {
	var count atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	errs := make(chan error, workers)
	for w := range workers {
		id := pki.Identity{Namespace: "bench", Name: "churn-" + strconv.Itoa(w)}
		tc, err := clientConfig(ca, id)
		if err != nil {
			return 0, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if err := once(tc, id); err != nil {
					errs <- err
					return
				}
				count.Add(1)
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return count.Load(), err
	default:
	}
	return count.Load(), nil
}

func once(tc *tls.Config, id pki.Identity) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", *addr, tc)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if *mode == "baseline" {
		var b [1]byte
		if _, err := c.Write([]byte{'x'}); err != nil {
			return err
		}
		_, err = io.ReadFull(c, b[:])
		return err
	}
	w := protocol.NewWriter(c, protocol.DefaultMaxFrame)
	r := protocol.NewReader(c, protocol.DefaultMaxFrame)
	if err := w.WriteMessage(&protocol.Hello{DeviceID: id.String(), Board: "virtual", Firmware: "bench",
		Caps: protocol.Capabilities{RAM: 1 << 18, Flash: 1 << 20, MaxModule: 1 << 18, ABI: 1, MaxFrame: 2048}}); err != nil {
		return err
	}
	m, err := r.ReadMessage()
	if err != nil {
		return err
	}
	if m.Type() != protocol.TypeWelcome {
		return fmt.Errorf("got %s", m.Type())
	}
	return nil
}
