package pki_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/internal/pki"
)

func newCA(t testing.TB) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA("test ca", 0)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestParseIdentityURI(t *testing.T) {
	long := strings.Repeat("a", 64)
	tests := []struct {
		uri     string
		want    pki.Identity
		wantErr string
	}{
		{uri: "wasmbed://default/board-1", want: pki.Identity{Namespace: "default", Name: "board-1"}},
		{uri: "wasmbed://lab-2/stm32.f4.disco", want: pki.Identity{Namespace: "lab-2", Name: "stm32.f4.disco"}},
		{uri: "https://default/board-1", wantErr: "scheme"},
		{uri: "wasmbed://Default/board-1", wantErr: "invalid namespace"},
		{uri: "wasmbed://under_score/board-1", wantErr: "invalid namespace"},
		{uri: "wasmbed://" + long + "/board-1", wantErr: "invalid namespace"},
		{uri: "wasmbed://default.sub/board-1", wantErr: "invalid namespace"},
		{uri: "wasmbed://default/Board", wantErr: "invalid device name"},
		{uri: "wasmbed://default/", wantErr: "invalid device name"},
		{uri: "wasmbed:///board-1", wantErr: "invalid namespace"},
		{uri: "wasmbed://default/a/b", wantErr: "want exactly"},
		{uri: "wasmbed://default", wantErr: "want exactly"},
		{uri: "wasmbed://default:8443/board-1", wantErr: "want exactly"},
		{uri: "wasmbed://user@default/board-1", wantErr: "want exactly"},
		{uri: "wasmbed://default/board-1?x=1", wantErr: "want exactly"},
		{uri: "wasmbed://default/board-1#frag", wantErr: "want exactly"},
		{uri: "wasmbed://default/board%2F1", wantErr: "want exactly"},
		{uri: "wasmbed:default/board-1", wantErr: "want exactly"},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			got, err := pki.ParseIdentityURI(mustURL(t, tt.uri))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			if back := got.URI().String(); back != tt.uri {
				t.Fatalf("URI() = %q, want %q", back, tt.uri)
			}
		})
	}
}

func TestIdentityFromCertificate(t *testing.T) {
	tests := []struct {
		name    string
		uris    []string
		want    pki.Identity
		wantErr string
	}{
		{name: "one", uris: []string{"wasmbed://default/board-1"}, want: pki.Identity{Namespace: "default", Name: "board-1"}},
		{name: "other schemes ignored", uris: []string{"spiffe://x/y", "wasmbed://ns/dev"}, want: pki.Identity{Namespace: "ns", Name: "dev"}},
		{name: "none", wantErr: "no wasmbed:// uri san"},
		{name: "only other scheme", uris: []string{"spiffe://x/y"}, wantErr: "no wasmbed:// uri san"},
		{name: "two", uris: []string{"wasmbed://default/a", "wasmbed://default/b"}, wantErr: "2 wasmbed:// uri sans"},
		{name: "bad namespace", uris: []string{"wasmbed://BAD/a"}, wantErr: "invalid namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert := &x509.Certificate{}
			for _, u := range tt.uris {
				cert.URIs = append(cert.URIs, mustURL(t, u))
			}
			got, err := pki.IdentityFromCertificate(cert)
			if tt.wantErr != "" {
				if !errors.Is(err, pki.ErrNoIdentity) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrNoIdentity containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestCASaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	ca := newCA(t)
	if err := ca.Save(dir, false); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, pki.CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("ca.key mode = %v, want 0600", perm)
	}
	if !ca.Cert.IsCA || ca.Cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("ca certificate is not a signing ca")
	}
	if _, ok := ca.Cert.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("ca key is %T", ca.Cert.PublicKey)
	}
	if err := ca.Save(dir, false); !errors.Is(err, pki.ErrCAExists) {
		t.Fatalf("second Save err = %v, want ErrCAExists", err)
	}
	loaded, err := pki.LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Cert.Equal(ca.Cert) || !loaded.Key.Equal(ca.Key) {
		t.Fatal("loaded ca differs from saved ca")
	}
	other := newCA(t)
	if err := other.Save(dir, true); err != nil {
		t.Fatalf("Save with overwrite: %v", err)
	}
	// A certificate with someone else's key must not load.
	keyPEM, _ := pki.EncodeKeyPEM(ca.Key)
	if _, err := pki.ParseCA(other.CertPEM(), keyPEM); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("ParseCA with wrong key: err = %v", err)
	}
	if _, err := pki.LoadCA(t.TempDir()); err == nil {
		t.Fatal("LoadCA of an empty dir succeeded")
	}
}

// csrFor returns a PEM CSR signed by key with the given subject and URIs.
func csrFor(t testing.TB, key any, cn string, uris ...string) []byte {
	t.Helper()
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}
	for _, u := range uris {
		tmpl.URIs = append(tmpl.URIs, mustURL(t, u))
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func TestSignerSign(t *testing.T) {
	ca := newCA(t)
	p256, _ := pki.NewKey()
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	good := csrFor(t, p256, "board-1")
	// A CSR that claims another device: the signer must ignore the claim.
	lying := csrFor(t, p256, "admin", "wasmbed://kube-system/gateway")
	tampered := tamper(t, csrFor(t, p256, "board-1"))
	id := pki.Identity{Namespace: "default", Name: "board-1"}
	deny := pki.ApproverFunc(func(_ context.Context, req pki.SignRequest) error {
		if req.Identity.Name != "board-1" {
			return errors.New("no such device")
		}
		return nil
	})
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name     string
		ctx      context.Context
		csr      []byte
		id       pki.Identity
		approver pki.Approver
		validity time.Duration
		wantErr  string
		denied   bool
	}{
		{name: "good", csr: good, id: id},
		{name: "identity forced over csr claims", csr: lying, id: id},
		{name: "custom validity", csr: good, id: id, validity: time.Hour},
		{name: "approved by policy", csr: good, id: id, approver: deny},
		{name: "denied by policy", csr: good, id: pki.Identity{Namespace: "default", Name: "board-2"}, approver: deny, wantErr: "no such device", denied: true},
		{name: "rsa refused", csr: csrFor(t, rsaKey, "board-1"), id: id, wantErr: "key is RSA, want ecdsa p-256"},
		{name: "p-384 refused", csr: csrFor(t, p384, "board-1"), id: id, wantErr: "want p-256"},
		{name: "tampered refused", csr: tampered, id: id, wantErr: "signature"},
		{name: "not pem", csr: []byte("hello"), id: id, wantErr: "no pem"},
		{name: "wrong pem type", csr: ca.CertPEM(), id: id, wantErr: "want CERTIFICATE REQUEST"},
		{name: "bad namespace", csr: good, id: pki.Identity{Namespace: "Bad_NS", Name: "board-1"}, wantErr: "invalid namespace"},
		{name: "empty name", csr: good, id: pki.Identity{Namespace: "default"}, wantErr: "invalid device name"},
		{name: "cancelled", ctx: cancelled, csr: good, id: id, wantErr: "context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			approver := tt.approver
			if approver == nil {
				approver = pki.AllowAll
			}
			s := pki.NewSigner(ca, approver)
			wantValidity := pki.DefaultDeviceValidity
			if tt.validity != 0 {
				s, wantValidity = s.WithValidity(tt.validity), tt.validity
			}
			certPEM, err := s.Sign(ctx, tt.csr, tt.id)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if errors.Is(err, pki.ErrDenied) != tt.denied {
					t.Fatalf("errors.Is(err, ErrDenied) = %v, want %v", !tt.denied, tt.denied)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cert, err := pki.ParseCertificatePEM(certPEM)
			if err != nil {
				t.Fatal(err)
			}
			got, err := pki.IdentityFromCertificate(cert)
			if err != nil || got != tt.id {
				t.Fatalf("identity = %v, %v; want %v", got, err, tt.id)
			}
			if len(cert.URIs) != 1 {
				t.Errorf("certificate has %d URIs, want 1", len(cert.URIs))
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Errorf("verify as client certificate: %v", err)
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
				t.Errorf("device certificate verifies as a server certificate")
			}
			if !cert.PublicKey.(*ecdsa.PublicKey).Equal(p256.Public()) {
				t.Errorf("certificate key is not the CSR's key")
			}
			if d := cert.NotAfter.Sub(cert.NotBefore); d < wantValidity || d > wantValidity+10*time.Minute {
				t.Errorf("validity = %v, want about %v", d, wantValidity)
			}
			if cert.SerialNumber.Sign() <= 0 || cert.SerialNumber.BitLen() > 128 {
				t.Errorf("serial %v is not a positive 128-bit number", cert.SerialNumber)
			}
		})
	}
}

// tamper flips a bit inside the CSR's subject so that its signature no longer matches.
func tamper(t testing.TB, csrPEM []byte) []byte {
	t.Helper()
	block, _ := pem.Decode(csrPEM)
	der := bytes.Clone(block.Bytes)
	i := bytes.Index(der, []byte("board-1"))
	if i < 0 {
		t.Fatal("subject not found in csr")
	}
	der[i] = 'c'
	return pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: der})
}

func TestSignerWithoutApprover(t *testing.T) {
	ca := newCA(t)
	key, _ := pki.NewKey()
	_, err := pki.NewSigner(ca, nil).Sign(context.Background(), csrFor(t, key, "x"), pki.Identity{Namespace: "default", Name: "x"})
	if err == nil || !strings.Contains(err.Error(), "no approver") {
		t.Fatalf("err = %v, want no approver", err)
	}
}

func TestNewCSRRoundTrip(t *testing.T) {
	ca := newCA(t)
	key, _ := pki.NewKey()
	id := pki.Identity{Namespace: "default", Name: "sim-0001"}
	csrPEM, err := pki.NewCSR(key, id)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := pki.NewSigner(ca, pki.AllowAll).Sign(context.Background(), csrPEM, id)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, _ := pki.EncodeKeyPEM(key)
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatalf("signed certificate does not pair with the device key: %v", err)
	}
}

func TestIssueServer(t *testing.T) {
	ca := newCA(t)
	certPEM, keyPEM, err := ca.IssueServer([]string{"localhost", "gw.example"}, []net.IP{net.ParseIP("127.0.0.1")}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	cert, _ := pki.ParseCertificatePEM(certPEM)
	for _, host := range []string{"localhost", "gw.example", "127.0.0.1"} {
		if err := cert.VerifyHostname(host); err != nil {
			t.Errorf("VerifyHostname(%s): %v", host, err)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("verify as server certificate: %v", err)
	}
	if _, _, err := ca.IssueServer(nil, nil, 0); err == nil {
		t.Error("IssueServer without names succeeded")
	}
}

// leaf is a hand-made client certificate for the handshake tests: what a misbehaving or
// outdated signer might have produced.
type leaf struct {
	uris     []string
	notAfter time.Time
	eku      x509.ExtKeyUsage
}

func (l leaf) make(t testing.TB, ca *pki.CA) tls.Certificate {
	t.Helper()
	key, _ := pki.NewKey()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "hand-made"},
		NotBefore:    time.Now().Add(-48 * time.Hour),
		NotAfter:     l.notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{l.eku},
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(time.Hour)
	}
	for _, u := range l.uris {
		tmpl.URIs = append(tmpl.URIs, mustURL(t, u))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// keyPairs returns a function that turns the results of an Issue call into a
// tls.Certificate, failing t on any error.
func keyPairs(t testing.TB) func(certPEM, keyPEM []byte, err error) tls.Certificate {
	return func(certPEM, keyPEM []byte, err error) tls.Certificate {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}

// handshake runs one TLS connection on loopback and returns the identity the server saw,
// or the server's handshake error.
func handshake(t *testing.T, server, client *tls.Config) (pki.Identity, tls.ConnectionState, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		id  pki.Identity
		cs  tls.ConnectionState
		err error
	}
	done := make(chan result, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer conn.Close()
		tc := tls.Server(conn, server)
		if err := tc.HandshakeContext(ctx); err != nil {
			done <- result{err: err}
			return
		}
		id, err := pki.IdentityFromConnState(tc.ConnectionState())
		if err == nil {
			_, err = tc.Write([]byte{1})
		}
		done <- result{id: id, cs: tc.ConnectionState(), err: err}
	}()
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: client}
	conn, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err == nil {
		// With TLS 1.3 the server checks the client certificate after the client's
		// handshake is over: read so that a rejection reaches the client too.
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _ = conn.Read(make([]byte, 1))
		conn.Close()
	}
	r := <-done
	return r.id, r.cs, r.err
}

func TestHandshake(t *testing.T) {
	ca := newCA(t)
	otherCA := newCA(t)
	id := pki.Identity{Namespace: "default", Name: "board-1"}
	kp := keyPairs(t)
	srvCert := kp((ca.IssueServer([]string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}, 0)))
	goodDevice := kp((ca.IssueDevice(id, 0)))
	foreignDevice := kp((otherCA.IssueDevice(id, 0)))

	tests := []struct {
		name       string
		serverOpts pki.TLSOptions
		clientCert *tls.Certificate
		clientMax  uint16
		suites     []uint16
		curves     []tls.CurveID
		wantErr    string // in the server's error; empty means success
		wantVer    uint16
	}{
		{name: "good device", clientCert: &goodDevice, wantVer: tls.VersionTLS13},
		{name: "no client cert", wantErr: "certificate"},
		{name: "cert from another ca", clientCert: &foreignDevice, wantErr: "unknown authority"},
		{name: "expired cert", clientCert: ptr(leaf{uris: []string{"wasmbed://default/board-1"}, notAfter: time.Now().Add(-time.Hour), eku: x509.ExtKeyUsageClientAuth}.make(t, ca)), wantErr: "expired"},
		{name: "no wasmbed uri", clientCert: ptr(leaf{eku: x509.ExtKeyUsageClientAuth}.make(t, ca)), wantErr: "no wasmbed:// uri san"},
		{name: "two wasmbed uris", clientCert: ptr(leaf{uris: []string{"wasmbed://default/a", "wasmbed://default/b"}, eku: x509.ExtKeyUsageClientAuth}.make(t, ca)), wantErr: "2 wasmbed:// uri sans"},
		{name: "bad namespace", clientCert: ptr(leaf{uris: []string{"wasmbed://Bad_NS/board-1"}, eku: x509.ExtKeyUsageClientAuth}.make(t, ca)), wantErr: "invalid namespace"},
		{name: "server cert as client cert", clientCert: &srvCert, wantErr: "incompatible key usage"},
		{name: "tls 1.2 refused by default", clientCert: &goodDevice, clientMax: tls.VersionTLS12, wantErr: "unsupported versions"},
		{name: "tls 1.2 allowed by option", serverOpts: pki.TLSOptions{AllowTLS12: true}, clientCert: &goodDevice, clientMax: tls.VersionTLS12, wantVer: tls.VersionTLS12},
		{name: "tls 1.2 cbc suite refused", serverOpts: pki.TLSOptions{AllowTLS12: true}, clientCert: &goodDevice, clientMax: tls.VersionTLS12,
			suites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}, wantErr: "cipher suite"},
		{name: "tls 1.3 still preferred with option", serverOpts: pki.TLSOptions{AllowTLS12: true}, clientCert: &goodDevice, wantVer: tls.VersionTLS13},
		{name: "tls 1.2 over p-256", serverOpts: pki.TLSOptions{AllowTLS12: true}, clientCert: &goodDevice, clientMax: tls.VersionTLS12,
			curves: []tls.CurveID{tls.CurveP256}, wantVer: tls.VersionTLS12},
		{name: "tls 1.2 over x25519 refused", serverOpts: pki.TLSOptions{AllowTLS12: true}, clientCert: &goodDevice, clientMax: tls.VersionTLS12,
			curves: []tls.CurveID{tls.X25519}, wantErr: "no cipher suite"}, // Go drops ECDHE suites without a shared curve
		{name: "tls 1.2 over p-384 refused", serverOpts: pki.TLSOptions{AllowTLS12: true}, clientCert: &goodDevice, clientMax: tls.VersionTLS12,
			curves: []tls.CurveID{tls.CurveP384}, wantErr: "no cipher suite"},
		{name: "tls 1.3 over x25519 unaffected", serverOpts: pki.TLSOptions{AllowTLS12: true}, clientCert: &goodDevice,
			curves: []tls.CurveID{tls.X25519}, wantVer: tls.VersionTLS13},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server, err := pki.ServerTLSConfig(ca.Pool(), srvCert, tt.serverOpts)
			if err != nil {
				t.Fatal(err)
			}
			client := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MaxVersion: tt.clientMax, CipherSuites: tt.suites}
			if tt.clientCert != nil {
				if client, err = pki.ClientTLSConfig(ca.Pool(), *tt.clientCert, "localhost", pki.TLSOptions{AllowTLS12: true}); err != nil {
					t.Fatal(err)
				}
				client.MaxVersion = tt.clientMax
				if tt.suites != nil {
					client.CipherSuites = tt.suites
				}
				client.CurvePreferences = tt.curves
			}
			got, cs, err := handshake(t, server, client)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("server err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != id {
				t.Errorf("identity = %v, want %v", got, id)
			}
			if cs.Version != tt.wantVer {
				t.Errorf("version = %x, want %x", cs.Version, tt.wantVer)
			}
			if cs.Version == tls.VersionTLS12 && cs.CurveID != tls.CurveP256 {
				t.Errorf("tls 1.2 key exchange over %s, want P-256", cs.CurveID)
			}
			if cs.Version == tls.VersionTLS12 && cs.CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 &&
				cs.CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 {
				t.Errorf("tls 1.2 suite = %s", tls.CipherSuiteName(cs.CipherSuite))
			}
		})
	}
}

func TestClientRejectsUnknownGateway(t *testing.T) {
	ca, otherCA := newCA(t), newCA(t)
	id := pki.Identity{Namespace: "default", Name: "board-1"}
	kp := keyPairs(t)
	srvCert := kp((otherCA.IssueServer([]string{"localhost"}, nil, 0)))
	server, _ := pki.ServerTLSConfig(ca.Pool(), srvCert, pki.TLSOptions{})
	client, _ := pki.ClientTLSConfig(ca.Pool(), kp((ca.IssueDevice(id, 0))), "localhost", pki.TLSOptions{})
	if _, _, err := handshake(t, server, client); err == nil {
		t.Fatal("handshake with a gateway from another ca succeeded")
	}
}

func TestIdentityFromConnStateUnverified(t *testing.T) {
	ca := newCA(t)
	certPEM, _, _ := ca.IssueDevice(pki.Identity{Namespace: "default", Name: "x"}, 0)
	cert, _ := pki.ParseCertificatePEM(certPEM)
	_, err := pki.IdentityFromConnState(tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}})
	if !errors.Is(err, pki.ErrNoIdentity) {
		t.Fatalf("err = %v, want ErrNoIdentity for an unverified peer", err)
	}
}

func ptr[T any](v T) *T { return &v }

// TestAPITLSConfig: the HTTP port (POST /enroll) follows the device port's version policy,
// with no client certificate asked for.
func TestAPITLSConfig(t *testing.T) {
	ca := newCA(t)
	srvCert := keyPairs(t)(ca.IssueServer([]string{"localhost"}, nil, 0))
	if _, err := pki.APITLSConfig(tls.Certificate{}, pki.TLSOptions{}); err == nil {
		t.Fatal("an API TLS config without a certificate")
	}
	tests := []struct {
		name    string
		opts    pki.TLSOptions
		max     uint16
		curves  []tls.CurveID
		wantErr string
		wantVer uint16
	}{
		{name: "tls 1.3", wantVer: tls.VersionTLS13},
		{name: "tls 1.2 refused by default", max: tls.VersionTLS12, wantErr: "unsupported versions"},
		{name: "tls 1.2 with the option", opts: pki.TLSOptions{AllowTLS12: true}, max: tls.VersionTLS12, wantVer: tls.VersionTLS12},
		{name: "tls 1.2 over p-384 refused", opts: pki.TLSOptions{AllowTLS12: true}, max: tls.VersionTLS12,
			curves: []tls.CurveID{tls.CurveP384}, wantErr: "no cipher suite"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server, err := pki.APITLSConfig(srvCert, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			client := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MaxVersion: tt.max, CurvePreferences: tt.curves}
			c1, c2 := net.Pipe()
			defer c1.Close()
			defer c2.Close()
			errc := make(chan error, 1)
			go func() { errc <- tls.Server(c1, server).Handshake() }()
			cc := tls.Client(c2, client)
			cerr := cc.Handshake()
			serr := <-errc
			if tt.wantErr != "" {
				if serr == nil || !strings.Contains(serr.Error(), tt.wantErr) {
					t.Fatalf("server err = %v, want it to contain %q", serr, tt.wantErr)
				}
				return
			}
			if serr != nil || cerr != nil {
				t.Fatalf("handshake: server %v, client %v", serr, cerr)
			}
			if v := cc.ConnectionState().Version; v != tt.wantVer {
				t.Fatalf("version %x, want %x", v, tt.wantVer)
			}
		})
	}
}
