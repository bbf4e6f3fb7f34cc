// Package pki is Wasmbed's device identity: the platform CA, the device identity carried
// in a URI SAN (wasmbed://<namespace>/<device>), the one Signer that every enrollment
// path (Kubernetes CertificateSigningRequests, the gateway's bootstrap endpoint, the CLI)
// goes through, and the TLS configurations of the gateway and of devices.
package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// URIScheme is the scheme of the URI SAN that names a device.
const URIScheme = "wasmbed"

// ErrNoIdentity is wrapped by the errors of IdentityFromCertificate when a certificate
// carries no usable wasmbed URI SAN.
var ErrNoIdentity = errors.New("no wasmbed identity")

// Identity names a device: the Kubernetes namespace and name of its Device object.
type Identity struct {
	Namespace string
	Name      string
}

// NewIdentity returns the identity of device name in namespace, or an error when either
// is not a name Kubernetes would accept.
func NewIdentity(namespace, name string) (Identity, error) {
	id := Identity{Namespace: namespace, Name: name}
	if err := id.Validate(); err != nil {
		return Identity{}, err
	}
	return id, nil
}

// Validate checks that the namespace is a DNS-1123 label and the name a DNS-1123
// subdomain, as Kubernetes requires of a namespaced object.
func (id Identity) Validate() error {
	if msgs := validation.IsDNS1123Label(id.Namespace); len(msgs) > 0 {
		return fmt.Errorf("invalid namespace %q: %s", id.Namespace, strings.Join(msgs, "; "))
	}
	if msgs := validation.IsDNS1123Subdomain(id.Name); len(msgs) > 0 {
		return fmt.Errorf("invalid device name %q: %s", id.Name, strings.Join(msgs, "; "))
	}
	return nil
}

// String returns "<namespace>/<name>", the form used as a CloudEvent subject.
func (id Identity) String() string { return id.Namespace + "/" + id.Name }

// URI returns the URI SAN for the identity: wasmbed://<namespace>/<name>.
func (id Identity) URI() *url.URL {
	return &url.URL{Scheme: URIScheme, Host: id.Namespace, Path: "/" + id.Name}
}

// ParseIdentityURI parses a wasmbed://<namespace>/<name> URI strictly: no user, port,
// query, fragment or extra path segment, and valid Kubernetes names.
func ParseIdentityURI(u *url.URL) (Identity, error) {
	if u == nil {
		return Identity{}, errors.New("nil uri")
	}
	if u.Scheme != URIScheme {
		return Identity{}, fmt.Errorf("uri %q: scheme is not %s", u, URIScheme)
	}
	if u.Opaque != "" || u.User != nil || u.Port() != "" || u.RawQuery != "" || u.ForceQuery ||
		u.Fragment != "" || u.RawPath != "" {
		return Identity{}, fmt.Errorf("uri %q: want exactly %s://<namespace>/<device>", u, URIScheme)
	}
	name, ok := strings.CutPrefix(u.Path, "/")
	if !ok || strings.Contains(name, "/") {
		return Identity{}, fmt.Errorf("uri %q: want exactly %s://<namespace>/<device>", u, URIScheme)
	}
	id := Identity{Namespace: u.Host, Name: name}
	if err := id.Validate(); err != nil {
		return Identity{}, fmt.Errorf("uri %q: %w", u, err)
	}
	return id, nil
}

// IdentityFromCertificate returns the device identity of cert: exactly one URI SAN with
// the wasmbed scheme must be present and valid. Other URI SANs are ignored.
func IdentityFromCertificate(cert *x509.Certificate) (Identity, error) {
	if cert == nil {
		return Identity{}, fmt.Errorf("%w: nil certificate", ErrNoIdentity)
	}
	var found []*url.URL
	for _, u := range cert.URIs {
		if u.Scheme == URIScheme {
			found = append(found, u)
		}
	}
	switch len(found) {
	case 0:
		return Identity{}, fmt.Errorf("%w: certificate has no %s:// uri san", ErrNoIdentity, URIScheme)
	case 1:
	default:
		return Identity{}, fmt.Errorf("%w: certificate has %d %s:// uri sans, want one", ErrNoIdentity, len(found), URIScheme)
	}
	id, err := ParseIdentityURI(found[0])
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrNoIdentity, err)
	}
	return id, nil
}

// IdentityFromConnState returns the identity of the peer of a TLS connection. It only
// trusts a verified chain, so it fails on a connection whose client certificate was not
// verified against the CA.
func IdentityFromConnState(cs tls.ConnectionState) (Identity, error) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return Identity{}, fmt.Errorf("%w: peer certificate not verified", ErrNoIdentity)
	}
	return IdentityFromCertificate(cs.VerifiedChains[0][0])
}
