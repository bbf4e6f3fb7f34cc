package artifacts

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"time"

	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/retry"
)

// DefaultTimeout bounds each network call (one Put, Get or Fetch) made with a
// ClientConfig from NewClientConfig.
const DefaultTimeout = 30 * time.Second

// userAgent is what the OCI store and Fetch say they are.
const userAgent = "wasmbed-artifacts"

// ClientConfig says how the OCI store and Fetch reach the network: plain HTTP,
// credentials, the HTTP client, a per-call timeout, and which hosts Fetch may
// download from. It is immutable: each With method returns a changed copy, so one
// value can be shared. The zero value is the defaults of NewClientConfig.
type ClientConfig struct {
	plainHTTP       bool
	creds           map[string]auth.Credential // by registry host[:port]
	dockerConfig    string
	httpClient      *http.Client
	timeout         time.Duration
	timeoutSet      bool // WithTimeout was called; else DefaultTimeout
	allow           AllowList
	resolver        *net.Resolver
	maxRedirects    int
	maxRedirectsSet bool // WithMaxRedirects was called; else DefaultMaxRedirects
}

// NewClientConfig returns the defaults: HTTPS, no credentials, DefaultTimeout per call,
// an empty allow-list (Fetch downloads from no host), DefaultMaxRedirects.
func NewClientConfig() ClientConfig {
	return ClientConfig{}
}

// WithAllowList sets the hosts Fetch may download from (see AllowList). It does not
// apply to the OCI store, whose repository the operator names.
func (c ClientConfig) WithAllowList(a AllowList) ClientConfig {
	c.allow = a
	return c
}

// AllowList returns the hosts Fetch may download from.
func (c ClientConfig) AllowList() AllowList { return c.allow }

// WithResolver makes Fetch resolve host names with r instead of the system's resolver.
func (c ClientConfig) WithResolver(r *net.Resolver) ClientConfig {
	c.resolver = r
	return c
}

// WithMaxRedirects bounds the redirects each request of a Fetch follows; 0 follows
// none. A negative n restores DefaultMaxRedirects.
func (c ClientConfig) WithMaxRedirects(n int) ClientConfig {
	c.maxRedirects, c.maxRedirectsSet = n, n >= 0
	return c
}

// WithPlainHTTP makes the OCI store and OCI Fetch talk plain HTTP instead of HTTPS,
// for a registry on loopback or inside a trusted network.
func (c ClientConfig) WithPlainHTTP(plain bool) ClientConfig {
	c.plainHTTP = plain
	return c
}

// WithBasicAuth sends username and password to the registry at host (as written in
// references, e.g. "registry.example" or "127.0.0.1:5000") and to no other host.
func (c ClientConfig) WithBasicAuth(host, username, password string) ClientConfig {
	return c.withCredential(host, auth.Credential{Username: username, Password: password})
}

// WithBearerToken sends token as a registry access token to the registry at host and
// to no other host.
func (c ClientConfig) WithBearerToken(host, token string) ClientConfig {
	return c.withCredential(host, auth.Credential{AccessToken: token})
}

func (c ClientConfig) withCredential(host string, cred auth.Credential) ClientConfig {
	m := make(map[string]auth.Credential, len(c.creds)+1)
	maps.Copy(m, c.creds)
	m[host] = cred
	c.creds = m
	return c
}

// WithDockerConfig reads registry credentials from a docker config.json at path
// (including the credential helpers it names), for hosts without explicit credentials.
func (c ClientConfig) WithDockerConfig(path string) ClientConfig {
	c.dockerConfig = path
	return c
}

// WithHTTPClient uses client for every request, e.g. for a private CA. The default is
// a client that retries transient registry errors. Fetch uses a copy of the client's
// transport with the address guard in its dialer and no proxy, so its Transport must
// be nil or an *http.Transport.
func (c ClientConfig) WithHTTPClient(client *http.Client) ClientConfig {
	c.httpClient = client
	return c
}

// WithTimeout bounds each Put, Get or Fetch by d on top of the caller's context
// (default DefaultTimeout); zero or less leaves only the caller's context, though
// Fetch still bounds each connection, TLS handshake and wait for response headers.
func (c ClientConfig) WithTimeout(d time.Duration) ClientConfig {
	c.timeout, c.timeoutSet = d, true
	return c
}

// callContext applies the per-call timeout to ctx.
func (c ClientConfig) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	switch {
	case !c.timeoutSet:
		return context.WithTimeout(ctx, DefaultTimeout)
	case c.timeout > 0:
		return context.WithTimeout(ctx, c.timeout)
	}
	return context.WithCancel(ctx)
}

// authClient builds the registry client of the store, over hc (nil: the configured
// client, else one that retries transient errors): explicit credentials first, then
// the docker config, else anonymous.
func (c ClientConfig) authClient(hc *http.Client) (*auth.Client, error) {
	var store credentials.Store
	if c.dockerConfig != "" {
		s, err := credentials.NewStore(c.dockerConfig, credentials.StoreOptions{})
		if err != nil {
			return nil, fmt.Errorf("docker config %s: %w", c.dockerConfig, err)
		}
		store = s
	}
	creds := c.creds
	lookup := func(ctx context.Context, hostport string) (auth.Credential, error) {
		if cred, ok := creds[hostport]; ok {
			return cred, nil
		}
		// References name Docker Hub as docker.io; its API lives elsewhere.
		if hostport == "registry-1.docker.io" {
			if cred, ok := creds["docker.io"]; ok {
				return cred, nil
			}
		}
		if store != nil {
			return credentials.Credential(store)(ctx, hostport)
		}
		return auth.EmptyCredential, nil
	}
	if hc == nil {
		hc = c.httpClient
	}
	if hc == nil {
		hc = retry.DefaultClient
	}
	ac := &auth.Client{Client: hc, Cache: auth.NewCache(), Credential: lookup}
	ac.SetUserAgent(userAgent)
	return ac, nil
}

// fetchRegistryClient is the guarded client FetchOCI talks to a registry with: the
// configured client's transport, or else one that retries transient errors, with the
// address guard in its dialer.
func (c ClientConfig) fetchRegistryClient() (*http.Client, *http.Transport, error) {
	hc, t, err := c.fetchClient()
	if err != nil {
		return nil, nil, err
	}
	if c.httpClient == nil {
		hc.Transport = retry.NewTransport(t)
	}
	return hc, t, nil
}
