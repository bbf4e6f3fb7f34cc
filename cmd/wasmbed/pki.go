package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wasmbed/wasmbed/internal/pki"
)

func init() {
	register(command{name: "pki init", summary: "create the platform CA in a directory", run: runPKIInit})
	register(command{name: "pki gateway", summary: "issue the gateway's server certificate", run: runPKIGateway})
	register(command{name: "pki device", summary: "issue a device key and client certificate", run: runPKIDevice})
}

// defaultPKIDir is where the CA lives when --dir is not given.
const defaultPKIDir = ".wasmbed/pki"

func runPKIInit(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("pki init", stderr)
	dir := fs.String("dir", defaultPKIDir, "directory for ca.crt and ca.key")
	force := fs.Bool("force", false, "replace an existing CA (every issued certificate stops verifying)")
	cn := fs.String("cn", "Wasmbed platform CA", "common name of the CA certificate")
	validity := fs.Duration("validity", pki.DefaultCAValidity, "how long the CA certificate is valid")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ca, err := pki.NewCA(*cn, *validity)
	if err != nil {
		return err
	}
	if err := ca.Save(*dir, *force); err != nil {
		if errors.Is(err, pki.ErrCAExists) {
			return fmt.Errorf("%w (use --force to replace it)", err)
		}
		return err
	}
	fmt.Fprintf(stdout, "created CA in %s (valid until %s)\n", *dir, ca.Cert.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

func runPKIGateway(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("pki gateway", stderr)
	dir := fs.String("dir", defaultPKIDir, "directory holding the CA")
	outDir := fs.String("out-dir", "", "directory for tls.crt, tls.key and ca.crt (default DIR/gateway)")
	validity := fs.Duration("validity", pki.DefaultServerValidity, "how long the certificate is valid")
	var dnsNames []string
	var ips []net.IP
	fs.Func("dns", "DNS name of the gateway (repeatable, or comma-separated)", func(v string) error {
		dnsNames = append(dnsNames, splitList(v)...)
		return nil
	})
	fs.Func("ip", "IP address of the gateway (repeatable, or comma-separated)", func(v string) error {
		for _, s := range splitList(v) {
			ip := net.ParseIP(s)
			if ip == nil {
				return fmt.Errorf("invalid ip %q", s)
			}
			ips = append(ips, ip)
		}
		return nil
	})
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if len(dnsNames) == 0 && len(ips) == 0 {
		return fmt.Errorf("%w: give at least one --dns or --ip", errUsage)
	}
	if *outDir == "" {
		*outDir = filepath.Join(*dir, "gateway")
	}
	ca, err := pki.LoadCA(*dir)
	if err != nil {
		return err
	}
	certPEM, keyPEM, err := ca.IssueServer(dnsNames, ips, *validity)
	if err != nil {
		return err
	}
	if err := writeCredentials(*outDir, ca, certPEM, keyPEM); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote gateway certificate for %s to %s\n", strings.Join(sanList(dnsNames, ips), ", "), *outDir)
	return nil
}

func runPKIDevice(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("pki device", stderr)
	dir := fs.String("dir", defaultPKIDir, "directory holding the CA")
	namespace := fs.String("namespace", "default", "namespace of the Device")
	name := fs.String("name", "", "name of the Device (required)")
	outDir := fs.String("out-dir", "", "directory for tls.crt, tls.key and ca.crt (default DIR/devices/NAMESPACE/NAME)")
	validity := fs.Duration("validity", pki.DefaultDeviceValidity, "how long the certificate is valid")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *name == "" {
		return fmt.Errorf("%w: --name is required", errUsage)
	}
	id, err := pki.NewIdentity(*namespace, *name)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *outDir == "" {
		*outDir = filepath.Join(*dir, "devices", id.Namespace, id.Name)
	}
	ca, err := pki.LoadCA(*dir)
	if err != nil {
		return err
	}
	certPEM, keyPEM, err := ca.IssueDevice(id, *validity)
	if err != nil {
		return err
	}
	if err := writeCredentials(*outDir, ca, certPEM, keyPEM); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote device certificate for %s to %s\n", id.URI(), *outDir)
	return nil
}

// writeCredentials writes a key (0600), its certificate and the CA certificate, the
// layout of a kubernetes.io/tls Secret plus ca.crt.
func writeCredentials(dir string, ca *pki.CA, certPEM, keyPEM []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := []struct {
		name string
		data []byte
		perm os.FileMode
	}{
		{pki.KeyFile, keyPEM, 0o600},
		{pki.CertFile, certPEM, 0o644},
		{pki.CACertFile, ca.CertPEM(), 0o644},
	}
	for _, f := range files {
		if err := pki.WriteFile(filepath.Join(dir, f.name), f.data, f.perm); err != nil {
			return err
		}
	}
	return nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func sanList(dnsNames []string, ips []net.IP) []string {
	out := append([]string(nil), dnsNames...)
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	return out
}

func init() {
	register(command{name: "pki keys", summary: "create the module signing key and the validator's attestation key", run: runPKIKeys})
}

// runPKIKeys creates, when missing, the two Ed25519 keys of the trust chain and writes
// their public halves as hex: signing.key (dispatch signs deployments; devices hold
// signing.pub) and validation.key (validate signs attestations; dispatch holds
// validation.pub). Each private key goes into its own Secret, mounted only where used.
func runPKIKeys(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("pki keys", stderr)
	dir := fs.String("dir", defaultPKIDir, "directory for the keys")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	for _, name := range []string{"signing", "validation"} {
		key, err := pki.LoadOrCreateSigningKey(filepath.Join(*dir, name+".key"))
		if err != nil {
			return err
		}
		pub := filepath.Join(*dir, name+".pub")
		if err := pki.WriteFile(pub, []byte(hex.EncodeToString(key.Public())+"\n"), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s key in %s, public key in %s\n", name, filepath.Join(*dir, name+".key"), pub)
	}
	return nil
}
