package artifacts

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// Bounds of each connection a fetch makes, inside the per-call timeout.
const (
	fetchDialTimeout           = 10 * time.Second
	fetchTLSHandshakeTimeout   = 10 * time.Second
	fetchResponseHeaderTimeout = 30 * time.Second
)

// DefaultMaxRedirects is how many redirects one request of a fetch follows unless
// ClientConfig.WithMaxRedirects says otherwise.
const DefaultMaxRedirects = 5

// ErrRefused is wrapped by the error of a fetch the allow-list or the address guard
// refused (a *RefusedError).
var ErrRefused = errors.New("refused")

// RefusedError says which host or address a fetch refused, and why. It is returned
// before any connection to the refused address is attempted.
type RefusedError struct {
	// Host is the host as named, host[:port].
	Host string
	// Addr is the refused address, when the host itself was acceptable.
	Addr string
	// Reason says why: not on the allow-list, or the kind of address.
	Reason string
}

func (e *RefusedError) Error() string {
	if e.Addr == "" {
		return fmt.Sprintf("host %s refused: %s", e.Host, e.Reason)
	}
	return fmt.Sprintf("host %s refused: address %s is %s, and the host is not on the fetch allow-list by name", e.Host, e.Addr, e.Reason)
}

// Is makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// notListed is the refusal of a host no allow-list entry matches.
func notListed(hostport string) *RefusedError {
	return &RefusedError{Host: hostport, Reason: "not on the fetch allow-list"}
}

// guard applies an allow-list to every connection of a fetch.
type guard struct {
	allow        AllowList
	resolver     *net.Resolver
	maxRedirects int
}

func (c ClientConfig) guard() guard {
	g := guard{allow: c.allow, resolver: c.resolver, maxRedirects: DefaultMaxRedirects}
	if c.maxRedirectsSet {
		g.maxRedirects = c.maxRedirects
	}
	return g
}

// checkSource refuses a host the user named (a URL's or a registry's) before any
// request: not on the allow-list, or an IP literal of a special address that is not
// listed exactly.
func (g guard) checkSource(hostport, host, port string) error {
	if !g.allow.admits(host, port) {
		return notListed(hostport)
	}
	return g.checkLiteral(hostport, host, port)
}

// checkLiteral refuses host when it is an IP address of a special kind and not
// trusted by name. Names are checked after resolution, in dial.
func (g guard) checkLiteral(hostport, host, port string) error {
	ip, err := netip.ParseAddr(host)
	if err != nil || g.allow.trusts(host, port) {
		return nil
	}
	if reason, special := SpecialAddress(ip); special {
		return &RefusedError{Host: hostport, Addr: ip.WithZone("").String(), Reason: reason}
	}
	return nil
}

// dial connects to addr (host:port). Unless host is trusted by name, every address it
// resolves to is checked in the dialer's Control hook, which runs after the socket
// is created and before connect(2): a refused address is never contacted, and
// resolving again (DNS rebinding) cannot slip another address past the check.
func (g guard) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	d := &net.Dialer{Timeout: fetchDialTimeout, Resolver: g.resolver}
	if !g.allow.trusts(host, port) {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return &RefusedError{Host: addr, Addr: address, Reason: "not an IP address and port"}
			}
			if reason, special := SpecialAddress(ap.Addr()); special {
				return &RefusedError{Host: addr, Addr: ap.Addr().WithZone("").String(), Reason: reason}
			}
			return nil
		}
	}
	return d.DialContext(ctx, network, addr)
}

// checkRedirect bounds the redirects of one request, keeps them on http(s) without a
// downgrade from https, and refuses special IP literals early (names are checked
// when dialed).
func (g guard) checkRedirect(req *http.Request, via []*http.Request) error {
	to := redacted(req.URL)
	if len(via) > g.maxRedirects {
		return fmt.Errorf("redirect to %s: stopped after %d redirects", to, g.maxRedirects)
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return fmt.Errorf("redirect to %s: scheme %q is not http or https", to, req.URL.Scheme)
	}
	if len(via) > 0 && via[len(via)-1].URL.Scheme == "https" && req.URL.Scheme == "http" {
		return fmt.Errorf("redirect to %s: refusing to go from https to http", to)
	}
	if err := g.checkLiteral(req.URL.Host, req.URL.Hostname(), portOf(req.URL)); err != nil {
		return fmt.Errorf("redirect to %s: %w", to, err)
	}
	return nil
}

// transport returns an HTTP transport whose every connection passes the guard. base,
// when not nil, supplies TLS settings and timeouts; its proxy and dial functions are
// dropped: a proxy would connect on our behalf, past the address check.
func (g guard) transport(base *http.Transport) *http.Transport {
	var t *http.Transport
	if base != nil {
		t = base.Clone()
	} else {
		t = &http.Transport{ForceAttemptHTTP2: true, MaxIdleConns: 10, IdleConnTimeout: 90 * time.Second, ExpectContinueTimeout: time.Second}
	}
	t.Proxy = nil
	t.OnProxyConnectResponse = nil
	t.Dial, t.DialTLS, t.DialTLSContext = nil, nil, nil
	t.DialContext = g.dial
	if t.TLSHandshakeTimeout == 0 {
		t.TLSHandshakeTimeout = fetchTLSHandshakeTimeout
	}
	if t.ResponseHeaderTimeout == 0 {
		t.ResponseHeaderTimeout = fetchResponseHeaderTimeout
	}
	return t
}

// fetchClient returns the guarded HTTP client of a fetch and its transport (whose idle
// connections the fetch closes when done), built on the configured client's
// *http.Transport if there is one. Another kind of RoundTripper cannot be guarded and
// is refused.
func (c ClientConfig) fetchClient() (*http.Client, *http.Transport, error) {
	g := c.guard()
	var base *http.Transport
	var timeout time.Duration
	if c.httpClient != nil {
		timeout = c.httpClient.Timeout
		switch rt := c.httpClient.Transport.(type) {
		case nil:
		case *http.Transport:
			base = rt
		default:
			return nil, nil, fmt.Errorf("the configured HTTP client's transport is a %T; fetching needs an *http.Transport, so that every connection passes the address guard", rt)
		}
	}
	t := g.transport(base)
	return &http.Client{Transport: t, CheckRedirect: g.checkRedirect, Timeout: timeout}, t, nil
}

// portOf returns u's port, or the default port of its scheme.
func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "http" {
		return "80"
	}
	return "443"
}

// redacted returns u without credentials, query or fragment, for messages.
func redacted(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}
