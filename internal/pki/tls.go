package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"slices"
)

// TLSOptions adjusts the TLS configurations built by this package.
type TLSOptions struct {
	// AllowTLS12 lets peers that cannot do TLS 1.3 (small devices' TLS stacks) connect
	// with TLS 1.2, restricted to ECDHE-ECDSA with AES-GCM over P-256 (what the
	// network firmware's Mbed TLS offers). TLS 1.3 is the minimum otherwise.
	AllowTLS12 bool
}

// tls12Suites are the only TLS 1.2 suites allowed: forward secret, AEAD, and usable with
// the P-256 certificates this package issues.
var tls12Suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
}

func (o TLSOptions) apply(c *tls.Config) {
	c.MinVersion = tls.VersionTLS13
	if o.AllowTLS12 {
		c.MinVersion = tls.VersionTLS12
		c.CipherSuites = tls12Suites
	}
}

// applyServer is apply for a server, which also holds a TLS 1.2 handshake to P-256 for
// its key exchange: a client that offers TLS 1.3 gets the usual configuration, one that
// does not gets a copy whose only curve is P-256.
func (o TLSOptions) applyServer(c *tls.Config) {
	o.apply(c)
	if !o.AllowTLS12 {
		return
	}
	tls12 := c.Clone()
	tls12.CurvePreferences = []tls.CurveID{tls.CurveP256}
	c.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		if slices.Contains(h.SupportedVersions, tls.VersionTLS13) {
			return nil, nil
		}
		return tls12, nil
	}
}

// APITLSConfig returns the TLS configuration of the gateway's HTTP port (--http-tls,
// which serves POST /enroll): it presents cert, asks for no client certificate, and
// follows opts as the device port does, so a device enrolls with the TLS it connects with.
func APITLSConfig(cert tls.Certificate, opts TLSOptions) (*tls.Config, error) {
	if len(cert.Certificate) == 0 {
		return nil, errors.New("api tls config: no certificate")
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}}
	opts.applyServer(c)
	return c, nil
}

// ServerTLSConfig returns the gateway's TLS configuration: it presents cert and requires
// a client certificate that verifies against caPool and carries a valid device identity.
func ServerTLSConfig(caPool *x509.CertPool, cert tls.Certificate, opts TLSOptions) (*tls.Config, error) {
	if caPool == nil {
		return nil, errors.New("server tls config: nil ca pool")
	}
	if len(cert.Certificate) == 0 {
		return nil, errors.New("server tls config: no certificate")
	}
	c := &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    caPool,
		// Refuse a verified certificate that does not name exactly one device, during
		// the handshake rather than after it.
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := IdentityFromConnState(cs)
			return err
		},
	}
	opts.applyServer(c)
	return c, nil
}

// ClientTLSConfig returns a device's TLS configuration: it presents cert and verifies
// the gateway's certificate for serverName against caPool.
func ClientTLSConfig(caPool *x509.CertPool, cert tls.Certificate, serverName string, opts TLSOptions) (*tls.Config, error) {
	if caPool == nil {
		return nil, errors.New("client tls config: nil ca pool")
	}
	if len(cert.Certificate) == 0 {
		return nil, errors.New("client tls config: no certificate")
	}
	if serverName == "" {
		return nil, errors.New("client tls config: empty server name")
	}
	c := &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      caPool,
		ServerName:   serverName,
	}
	opts.apply(c)
	return c, nil
}
