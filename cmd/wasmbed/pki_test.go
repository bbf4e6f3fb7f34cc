package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmbed/wasmbed/internal/pki"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// loadIssued reads tls.crt, tls.key and ca.crt from dir, checks that the key pairs with
// the certificate and that the certificate verifies against ca.crt for usage.
func loadIssued(t *testing.T, dir string, usage x509.ExtKeyUsage) *x509.Certificate {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	certPEM, keyPEM, caPEM := read(pki.CertFile), read(pki.KeyFile), read(pki.CACertFile)
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatalf("key does not pair with certificate: %v", err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, pki.KeyFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode = %v, want 0600", fi.Mode().Perm())
	}
	cert, err := pki.ParseCertificatePEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.crt holds no certificate")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		t.Fatalf("certificate does not verify against ca.crt: %v", err)
	}
	return cert
}

func TestPKICommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")

	if code, _, stderr := runCLI(t, "pki", "init", "--dir", dir); code != 0 {
		t.Fatalf("pki init: exit %d: %s", code, stderr)
	}
	ca, err := pki.LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, pki.CAKeyFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("ca.key mode = %v, want 0600", fi.Mode().Perm())
	}
	code, _, stderr := runCLI(t, "pki", "init", "--dir", dir)
	if code != 1 || !strings.Contains(stderr, "--force") {
		t.Fatalf("second pki init: exit %d, stderr %q; want 1 mentioning --force", code, stderr)
	}
	if again, _ := pki.LoadCA(dir); !again.Cert.Equal(ca.Cert) {
		t.Fatal("refused pki init still replaced the CA")
	}

	gwDir := filepath.Join(t.TempDir(), "gw")
	if code, _, stderr := runCLI(t, "pki", "gateway", "--dir", dir, "--dns", "localhost", "--dns", "gw.example,gw2.example",
		"--ip", "127.0.0.1", "--out-dir", gwDir); code != 0 {
		t.Fatalf("pki gateway: exit %d: %s", code, stderr)
	}
	gw := loadIssued(t, gwDir, x509.ExtKeyUsageServerAuth)
	if got := strings.Join(gw.DNSNames, ","); got != "localhost,gw.example,gw2.example" {
		t.Errorf("dns names = %s", got)
	}
	if len(gw.IPAddresses) != 1 || !gw.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Errorf("ips = %v", gw.IPAddresses)
	}

	devDir := filepath.Join(t.TempDir(), "dev")
	if code, _, stderr := runCLI(t, "pki", "device", "--dir", dir, "--namespace", "lab", "--name", "board-1", "--out-dir", devDir); code != 0 {
		t.Fatalf("pki device: exit %d: %s", code, stderr)
	}
	dev := loadIssued(t, devDir, x509.ExtKeyUsageClientAuth)
	if id, err := pki.IdentityFromCertificate(dev); err != nil || id != (pki.Identity{Namespace: "lab", Name: "board-1"}) {
		t.Errorf("device identity = %v, %v", id, err)
	}

	// Default output directory under the CA directory.
	if code, _, stderr := runCLI(t, "pki", "device", "--dir", dir, "--name", "board-2"); code != 0 {
		t.Fatalf("pki device: exit %d: %s", code, stderr)
	}
	loadIssued(t, filepath.Join(dir, "devices", "default", "board-2"), x509.ExtKeyUsageClientAuth)

	if code, _, stderr := runCLI(t, "pki", "init", "--dir", dir, "--force"); code != 0 {
		t.Fatalf("pki init --force: exit %d: %s", code, stderr)
	}
	if replaced, _ := pki.LoadCA(dir); replaced.Cert.Equal(ca.Cert) {
		t.Fatal("pki init --force kept the old CA")
	}
}

func TestPKICommandErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	if code, _, stderr := runCLI(t, "pki", "init", "--dir", dir); code != 0 {
		t.Fatalf("pki init: exit %d: %s", code, stderr)
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"gateway without names", []string{"pki", "gateway", "--dir", dir}, 2, "--dns or --ip"},
		{"gateway bad ip", []string{"pki", "gateway", "--dir", dir, "--ip", "300.1.1.1"}, 2, "invalid ip"},
		{"gateway without ca", []string{"pki", "gateway", "--dir", t.TempDir(), "--dns", "localhost"}, 1, "load ca"},
		{"device without name", []string{"pki", "device", "--dir", dir}, 2, "--name is required"},
		{"device bad namespace", []string{"pki", "device", "--dir", dir, "--namespace", "Bad_NS", "--name", "x"}, 2, "invalid namespace"},
		{"device bad name", []string{"pki", "device", "--dir", dir, "--name", "UPPER"}, 2, "invalid device name"},
		{"unknown flag", []string{"pki", "init", "--dir", dir, "--nope"}, 2, "nope"},
		{"stray argument", []string{"pki", "device", "--dir", dir, "--name", "x", "extra"}, 2, "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tt.args...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want exit %d containing %q", code, stderr, tt.wantCode, tt.wantErr)
			}
		})
	}
}

func TestPKIKeys(t *testing.T) {
	dir := t.TempDir()
	if code, _, stderr := runCLI(t, "pki", "keys", "--dir", dir); code != 0 {
		t.Fatalf("pki keys: %d %s", code, stderr)
	}
	for _, name := range []string{"signing", "validation"} {
		key, err := pki.LoadSigningKey(filepath.Join(dir, name+".key"))
		if err != nil {
			t.Fatal(err)
		}
		pub, err := pki.LoadPublicKey(filepath.Join(dir, name+".pub"))
		if err != nil || !pub.Equal(key.Public()) {
			t.Fatalf("%s.pub does not hold the key's public half: %v", name, err)
		}
		if fi, err := os.Stat(filepath.Join(dir, name+".key")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s.key mode: %v %v", name, fi.Mode(), err)
		}
	}
	first, _ := os.ReadFile(filepath.Join(dir, "signing.key"))
	if code, _, _ := runCLI(t, "pki", "keys", "--dir", dir); code != 0 {
		t.Fatal("pki keys again failed")
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "signing.key")); string(again) != string(first) {
		t.Fatal("pki keys replaced an existing key")
	}
}
