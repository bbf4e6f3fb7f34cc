package gateway_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/tls"
	"encoding/json"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmbed/wasmbed/api/protocol"
	"github.com/wasmbed/wasmbed/gateway"
	"github.com/wasmbed/wasmbed/internal/pki"
)

// enrollment is a gateway serving POST /enroll over TLS with its own certificate, and
// devices' HTTP clients for it.
type enrollment struct {
	h      *harness
	tokens *gateway.Tokens
	url    string
}

// enroll opens the tokens of dir, registers toks and serves enrollment on h's gateway
// over TLS; the tokens are closed when the test ends or with close.
func enroll(t *testing.T, h *harness, dir string, o gateway.EnrollerOptions, toks ...gateway.Token) *enrollment {
	t.Helper()
	tokens, err := gateway.OpenTokens(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tokens.Close() })
	if err := tokens.Add(toks...); err != nil {
		t.Fatal(err)
	}
	h.srv.SetEnroller(gateway.NewEnroller(pki.NewSigner(h.ca, tokens), tokens, h.ca.CertPEM(), o))
	ts := httptest.NewUnstartedServer(h.srv.APIHandler())
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{h.cert}, MinVersion: tls.VersionTLS12}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return &enrollment{h: h, tokens: tokens, url: ts.URL}
}

// client returns an HTTP client that trusts the platform CA and connects from the
// loopback address from.
func (e *enrollment) client(from string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext:     d.DialContext,
		TLSClientConfig: &tls.Config{RootCAs: e.h.ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12},
	}}
}

// enrollReply is what POST /enroll answered.
type enrollReply struct {
	status int
	body   string
	header http.Header
}

// post sends a token and a CSR for a fresh key to url/enroll with c.
func post(t *testing.T, c *http.Client, url, token string) (enrollReply, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(key, pki.Identity{Namespace: "default", Name: "whatever-the-csr-says"})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"token": token, "csr": string(csr)})
	resp, err := c.Post(url+"/enroll", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return enrollReply{status: resp.StatusCode, body: string(b), header: resp.Header}, key
}

const (
	tokenA = "bootstrap-token-aaaaaaaa"
	tokenB = "bootstrap-token-bbbbbbbb"
	tokenC = "bootstrap-token-cccccccc"
)

// TestEnroll: a live token enrolls its device once, over TLS, and the certificate
// opens a session; a spent, expired or unknown token is refused.
func TestEnroll(t *testing.T) {
	h := newHarness(t)
	dev := id("default", "enrolled-0")
	e := enroll(t, h, t.TempDir(), gateway.EnrollerOptions{Burst: 100},
		gateway.Token{Secret: tokenA, Identity: dev},
		gateway.Token{Secret: tokenB, Identity: id("default", "enrolled-1"), Expires: time.Now().Add(-time.Second)},
		gateway.Token{Hash: gateway.HashToken(tokenC), Identity: id("default", "enrolled-2"), Expires: time.Now().Add(time.Hour)},
	)
	c := e.client("127.0.0.1")
	for _, tc := range []struct {
		name   string
		token  string
		status int
		device pki.Identity // whose certificate comes back
	}{
		{"live token", tokenA, http.StatusOK, dev},
		{"spent token", tokenA, http.StatusForbidden, pki.Identity{}},
		{"expired token", tokenB, http.StatusForbidden, pki.Identity{}},
		{"token registered by its hash, not expired", tokenC, http.StatusOK, id("default", "enrolled-2")},
		{"unknown token", "bootstrap-token-unknown0", http.StatusForbidden, pki.Identity{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, key := post(t, c, e.url, tc.token)
			if r.status != tc.status {
				t.Fatalf("status %d (%s), want %d", r.status, r.body, tc.status)
			}
			if tc.status != http.StatusOK {
				return
			}
			var out map[string]string
			if err := json.Unmarshal([]byte(r.body), &out); err != nil {
				t.Fatal(err)
			}
			cert, err := tls.X509KeyPair([]byte(out["certificate"]), mustKeyPEM(t, key))
			if err != nil {
				t.Fatal(err)
			}
			if got, err := pki.IdentityFromCertificate(cert.Leaf); err != nil || got != tc.device {
				t.Fatalf("identity %v %v, want %v: the token decides, not the CSR", got, err, tc.device)
			}
			if out["ca"] != string(h.ca.CertPEM()) {
				t.Error("the reply does not carry the platform CA")
			}
			// The enrolled certificate opens a session.
			d, err := h.dialRaw(cert, nil)
			if err != nil {
				t.Fatal(err)
			}
			d.send(helloFor(tc.device.String(), protocol.DefaultMaxFrame))
			d.expect(protocol.TypeWelcome)
		})
	}
	if h.counter(gateway.MetricEnrollments, "result=signed") != 2 || h.counter(gateway.MetricEnrollments, "result=denied") != 3 {
		t.Fatal("enrollments not counted")
	}
	if !hasLog(h, "enrollment refused", "expired") || !hasLog(h, "enrollment refused", "already spent") {
		t.Error("the log does not say why tokens were refused")
	}
}

func mustKeyPEM(t *testing.T, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	b, err := pki.EncodeKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEnrollTokenStaysSpentAfterRestart: a gateway restarted on the same state
// directory, given the same token file, still refuses the token it spent, still takes
// the one it did not, and has never written a token itself to disk.
func TestEnrollTokenStaysSpentAfterRestart(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	file := []byte(tokenA + " default/a\n" + tokenB + " default/b # not used before the restart\n")
	toks, err := gateway.ParseTokenFile(file)
	if err != nil {
		t.Fatal(err)
	}
	e := enroll(t, h, dir, gateway.EnrollerOptions{}, toks...)
	if r, _ := post(t, e.client("127.0.0.1"), e.url, tokenA); r.status != http.StatusOK {
		t.Fatalf("first enrollment: %d %s", r.status, r.body)
	}
	if err := e.tokens.Close(); err != nil {
		t.Fatal(err)
	}
	// A new gateway process: fresh memory, same state directory.
	h.stop()
	h.reg = prometheus.NewRegistry()
	h.cfg = h.cfg.WithRegisterer(h.reg)
	h.start()

	toks, err = gateway.ParseTokenFile(file)
	if err != nil {
		t.Fatal(err)
	}
	e = enroll(t, h, dir, gateway.EnrollerOptions{}, toks...)
	c := e.client("127.0.0.1")
	if r, _ := post(t, c, e.url, tokenA); r.status != http.StatusForbidden {
		t.Fatalf("the spent token after a restart: %d %s, want 403", r.status, r.body)
	}
	if r, _ := post(t, c, e.url, tokenB); r.status != http.StatusOK {
		t.Fatalf("the unused token after a restart: %d %s", r.status, r.body)
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, tok := range []string{tokenA, tokenB} {
			if bytes.Contains(data, []byte(tok)) {
				t.Errorf("%s holds a token in the clear", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestEnrollOverPlainHTTPIsRefused: the plain-HTTP listener refuses /enroll, saying
// why, and does not spend the token it was sent.
func TestEnrollOverPlainHTTPIsRefused(t *testing.T) {
	h := newHarness(t)
	e := enroll(t, h, t.TempDir(), gateway.EnrollerOptions{}, gateway.Token{Secret: tokenA, Identity: id("default", "a")})
	r, _ := post(t, http.DefaultClient, h.apiURL, tokenA)
	if r.status != http.StatusForbidden || !strings.Contains(r.body, "TLS only") {
		t.Fatalf("plain HTTP: %d %q, want 403 saying TLS only", r.status, r.body)
	}
	if h.counter(gateway.MetricEnrollments, "result=insecure") != 1 {
		t.Error("the refusal is not counted as insecure")
	}
	if r, _ := post(t, e.client("127.0.0.1"), e.url, tokenA); r.status != http.StatusOK {
		t.Fatalf("the token after the plain-HTTP attempt: %d %s", r.status, r.body)
	}
}

// TestEnrollRateLimit: a burst of bad tokens from one address exhausts its budget, and
// then even a good token from there waits (429, Retry-After); another address is not
// held back.
func TestEnrollRateLimit(t *testing.T) {
	h := newHarness(t)
	e := enroll(t, h, t.TempDir(), gateway.EnrollerOptions{Burst: 3, Refill: time.Hour},
		gateway.Token{Secret: tokenA, Identity: id("default", "a")})
	guesser := e.client("127.0.0.1")
	for i := range 3 {
		if r, _ := post(t, guesser, e.url, "bootstrap-token-guess-"+string(rune('0'+i))); r.status != http.StatusForbidden {
			t.Fatalf("guess %d: %d, want 403", i, r.status)
		}
	}
	r, _ := post(t, guesser, e.url, tokenA)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("after the burst: %d (Retry-After %q), want 429 with Retry-After", r.status, r.header.Get("Retry-After"))
	}
	if r, _ := post(t, e.client("127.0.0.2"), e.url, tokenA); r.status != http.StatusOK {
		t.Fatalf("from another address: %d %s", r.status, r.body)
	}
	if h.counter(gateway.MetricEnrollments, "result=rate-limited") != 1 {
		t.Error("the refusal is not counted as rate-limited")
	}
}

// TestTokenFile: the token file format, and what registering the same tokens again
// keeps.
func TestTokenFile(t *testing.T) {
	hashed := gateway.HashToken(tokenC)
	for _, tc := range []struct {
		name string
		file string
		want []gateway.Token
		err  string
	}{
		{name: "tokens", file: "# comment\n" + tokenA + " default/a\n\n" + hashed + " lab/c 2030-01-02T03:04:05Z # hashed\n",
			want: []gateway.Token{{Secret: tokenA, Identity: id("default", "a")},
				{Hash: hashed, Identity: id("lab", "c"), Expires: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}}},
		{name: "short token", file: "short default/a\n", err: "shorter than 16"},
		{name: "bad hash", file: "sha256:abc default/a\n", err: "sha256:<64"},
		{name: "bad identity", file: tokenA + " Default/a\n", err: "invalid namespace"},
		{name: "bad expiry", file: tokenA + " default/a tomorrow\n", err: "expiry"},
		{name: "extra field", file: tokenA + " default/a 2030-01-02T03:04:05Z x\n", err: "want <token>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := gateway.ParseTokenFile([]byte(tc.file))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i].Secret != tc.want[i].Secret || got[i].Hash != tc.want[i].Hash || got[i].Identity != tc.want[i].Identity || !got[i].Expires.Equal(tc.want[i].Expires) {
					t.Errorf("token %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}

	dir := t.TempDir()
	tokens, err := gateway.OpenTokens(dir, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer tokens.Close()
	if err := tokens.Add(gateway.Token{Secret: tokenA, Identity: id("default", "a")}); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(dir, gateway.TokensFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := tokens.Add(gateway.Token{Secret: tokenA, Identity: id("default", "a"), Expires: time.Now().Add(48 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, gateway.TokensFile)); !bytes.Equal(before, after) {
		t.Error("registering a token again changed it (an expiry must never be extended)")
	}
	if err := tokens.Add(gateway.Token{Secret: tokenA, Identity: id("default", "b")}); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Errorf("a token registered for another device: %v", err)
	}
	if err := tokens.Add(gateway.Token{Secret: "short", Identity: id("default", "b")}); err == nil {
		t.Error("a short token was registered")
	}
}

// TestEnrollSpentLogSurvivesATornLine: a spent mark cut short by a crash (its token
// was never used) neither stops the gateway nor corrupts the marks written after it.
func TestEnrollSpentLogSurvivesATornLine(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	toks := []gateway.Token{{Secret: tokenA, Identity: id("default", "a")}, {Secret: tokenB, Identity: id("default", "b")}}
	e := enroll(t, h, dir, gateway.EnrollerOptions{}, toks...)
	if r, _ := post(t, e.client("127.0.0.1"), e.url, tokenA); r.status != http.StatusOK {
		t.Fatalf("enroll a: %d %s", r.status, r.body)
	}
	if err := e.tokens.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, gateway.SpentFile), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(gateway.HashToken(tokenB)[:20]); err != nil {
		t.Fatal(err)
	}
	f.Close()

	for i, want := range []int{http.StatusOK, http.StatusForbidden} { // b is live, then spent after a reopening
		e = enroll(t, h, dir, gateway.EnrollerOptions{}, toks...)
		if r, _ := post(t, e.client("127.0.0.1"), e.url, tokenB); r.status != want {
			t.Fatalf("opening %d: enroll b: %d %s, want %d", i, r.status, r.body, want)
		}
		if r, _ := post(t, e.client("127.0.0.1"), e.url, tokenA); r.status != http.StatusForbidden {
			t.Fatalf("opening %d: the spent token a: %d", i, r.status)
		}
		if err := e.tokens.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestServeEnroll: the enrollment listener serves POST /enroll over TLS and nothing of
// the deploy API, and refuses to start without TLS.
func TestServeEnroll(t *testing.T) {
	h := newHarness(t)
	e := enroll(t, h, t.TempDir(), gateway.EnrollerOptions{}, gateway.Token{Secret: tokenA, Identity: id("default", "a")})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tc, err := pki.APITLSConfig(h.cert, pki.TLSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = h.srv.ServeEnroll(l, tc) }()
	url := "https://" + l.Addr().String()
	if r, _ := post(t, e.client("127.0.0.1"), url, tokenA); r.status != http.StatusOK {
		t.Fatalf("enroll on the enrollment listener: %d %s", r.status, r.body)
	}
	resp, err := e.client("127.0.0.1").Get(url + "/devices/default/a/log")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("device logs on the enrollment listener: %s, want 404", resp.Status)
	}
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.srv.ServeEnroll(plain, nil); err == nil || !strings.Contains(err.Error(), "tls configuration is required") {
		t.Errorf("ServeEnroll without TLS: %v, want a refusal", err)
	}
}
