package gateway_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/gateway"
)

// shortHTTPTimeouts make the HTTP timeouts quick to observe.
var shortHTTPTimeouts = gateway.HTTPTimeouts{
	ReadHeader: 300 * time.Millisecond, Read: 600 * time.Millisecond, Write: 2 * time.Second,
	Idle: 400 * time.Millisecond, MaxHeaderBytes: 4 << 10,
}

// trickle writes msg a byte at a time, every interval, until it is written or the
// connection fails; it reports whether the gateway cut the connection first.
func trickle(c net.Conn, msg string, interval time.Duration) bool {
	for i := range len(msg) {
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte{msg[i]}); err != nil {
			return true
		}
		time.Sleep(interval)
	}
	return false
}

// cutWithin reports whether the gateway closes c within d; anything it sends before
// (an error response) is read and dropped.
func cutWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// TestHTTPTimeouts: a slow or idle HTTP client is cut off by the timeouts, on the
// deploy API and on the health and metrics listener alike, while other clients are
// served.
func TestHTTPTimeouts(t *testing.T) {
	h := newHarness(t, func(c gateway.Config) gateway.Config { return c.WithHTTPTimeouts(shortHTTPTimeouts) })
	// 200 header lines sent a byte every 10 ms take far longer than any timeout.
	slowHeaders := strings.Repeat("X-Slow: loris\r\n", 200)
	for _, l := range []struct{ name, url, get string }{
		{"api", h.apiURL, "/devices/default/nobody/log"},
		{"ops", h.opsURL, "/healthz"},
	} {
		addr := strings.TrimPrefix(l.url, "http://")
		dial := func(t *testing.T) net.Conn {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c
		}
		t.Run(l.name, func(t *testing.T) {
			for _, tc := range []struct {
				name string
				run  func(t *testing.T, c net.Conn) bool // reports whether c was cut
			}{
				{"slow headers (ReadHeaderTimeout)", func(t *testing.T, c net.Conn) bool {
					return trickle(c, "GET "+l.get+" HTTP/1.1\r\nHost: gw\r\n"+slowHeaders, 10*time.Millisecond)
				}},
				{"slow body (ReadTimeout)", func(t *testing.T, c net.Conn) bool {
					head := "POST / HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n"
					if _, err := io.WriteString(c, head); err != nil {
						t.Fatal(err)
					}
					return trickle(c, strings.Repeat(" ", 4096), 10*time.Millisecond) || cutWithin(c, 5*time.Second)
				}},
				{"idle keep-alive (IdleTimeout)", func(t *testing.T, c net.Conn) bool {
					if _, err := io.WriteString(c, "GET "+l.get+" HTTP/1.1\r\nHost: gw\r\n\r\n"); err != nil {
						t.Fatal(err)
					}
					resp, err := http.ReadResponse(bufio.NewReader(c), nil)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					return cutWithin(c, 5*time.Second)
				}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					start := time.Now()
					if !tc.run(t, dial(t)) {
						t.Fatalf("the connection was not cut after %v", time.Since(start))
					}
					// Meanwhile, and after, others are served.
					resp, err := http.Get(l.url + l.get)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
				})
			}
			t.Run("headers too large (MaxHeaderBytes)", func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodGet, l.url+l.get, nil)
				req.Header.Set("X-Big", strings.Repeat("b", 16<<10))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
					t.Fatalf("status %d, want 431", resp.StatusCode)
				}
			})
		})
	}
}

// TestHTTPListeners: health and metrics are served apart from the deploy API.
func TestHTTPListeners(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name, url, method, path string
		want                    int
	}{
		{"ops healthz", h.opsURL, http.MethodGet, "/healthz", http.StatusOK},
		{"ops readyz", h.opsURL, http.MethodGet, "/readyz", http.StatusOK},
		{"ops metrics", h.opsURL, http.MethodGet, "/metrics", http.StatusOK},
		{"ops has no deploy API", h.opsURL, http.MethodPost, "/", http.StatusNotFound},
		{"ops has no device logs", h.opsURL, http.MethodGet, "/devices/default/d/log", http.StatusNotFound},
		{"api has no metrics", h.apiURL, http.MethodGet, "/metrics", http.StatusNotFound},
		{"api has no healthz", h.apiURL, http.MethodGet, "/healthz", http.StatusNotFound},
		{"api deploy API", h.apiURL, http.MethodPost, "/", http.StatusUnauthorized}, // no token: refused before it is read
		{"api device logs", h.apiURL, http.MethodGet, "/devices/default/d/log", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, tc.url+tc.path, strings.NewReader("{}"))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
			}
		})
	}
}

// TestHTTPAPIOverTLS: with WithAPITLS the deploy API is served over TLS, and a client
// that never finishes its handshake is cut by the header timeout.
func TestHTTPAPIOverTLS(t *testing.T) {
	h := newHarness(t, func(c gateway.Config) gateway.Config {
		cert := gatewayCert(t)
		return c.WithHTTPTimeouts(shortHTTPTimeouts).
			WithAPITLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	})
	url := strings.Replace(h.apiURL, "http://", "https://", 1)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: h.ca.Pool(), ServerName: "localhost"}}}
	resp, err := client.Get(url + "/devices/default/d/log")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(h.apiURL, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !cutWithin(c, 5*time.Second) {
		t.Fatal("a silent TLS client was not cut")
	}
}
