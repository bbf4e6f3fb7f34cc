package artifacts_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/api/digest"
	"github.com/wasmbed/wasmbed/internal/artifacts"
)

// allow parses patterns into an allow-list.
func allow(t *testing.T, patterns ...string) artifacts.AllowList {
	t.Helper()
	a, err := artifacts.NewAllowList(patterns...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// hostOf returns the host:port of rawurl.
func hostOf(t *testing.T, rawurl string) string {
	t.Helper()
	u, err := url.Parse(rawurl)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// portOf returns the port of rawurl.
func portOf(t *testing.T, rawurl string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(hostOf(t, rawurl))
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// moduleServer serves mod at /m.wasm on 127.0.0.1 and counts the connections made to
// it; other paths answer as h says (404 when h is nil).
func moduleServer(t *testing.T, mod []byte, h http.HandlerFunc) (*httptest.Server, *countingListener) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: l}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/m.wasm":
			_, _ = w.Write(mod)
		case h != nil:
			h(w, r)
		default:
			http.NotFound(w, r)
		}
	}))
	srv.Listener.Close()
	srv.Listener = cl
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, cl
}

// noConnections fails t when l accepted a connection, after giving a connection that
// might be in flight time to arrive.
func noConnections(t *testing.T, l *countingListener) {
	t.Helper()
	time.Sleep(50 * time.Millisecond)
	if n := l.n.Load(); n != 0 {
		t.Fatalf("the refused server accepted %d connections; want the refusal before connecting", n)
	}
}

// startDNS runs a DNS server on loopback that answers A and AAAA queries for names
// (lower case, without the trailing dot) and NXDOMAIN for others, and returns a
// resolver that asks only it.
func startDNS(t *testing.T, names map[string]string) *net.Resolver {
	t.Helper()
	addrs := map[string]netip.Addr{}
	for n, a := range names {
		addrs[n] = netip.MustParseAddr(a)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := dnsAnswer(buf[:n], addrs); resp != nil {
				_, _ = pc.WriteTo(resp, from)
			}
		}
	}()
	server := pc.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", server)
	}}
}

// dnsAnswer answers the one question of the DNS query q (RFC 1035 section 4).
func dnsAnswer(q []byte, addrs map[string]netip.Addr) []byte {
	if len(q) < 12 {
		return nil
	}
	i := 12
	var labels []string
	for {
		if i >= len(q) {
			return nil
		}
		n := int(q[i])
		i++
		if n == 0 {
			break
		}
		if n&0xc0 != 0 || i+n > len(q) {
			return nil
		}
		labels = append(labels, string(q[i:i+n]))
		i += n
	}
	if i+4 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i:])
	question := q[12 : i+4]
	ip, known := addrs[strings.ToLower(strings.Join(labels, "."))]
	answer := known && (qtype == 1 && ip.Is4() || qtype == 28 && ip.Is6())
	flags := uint16(0x8580) // response, authoritative, recursion desired and available
	if !known {
		flags |= 3 // NXDOMAIN
	}
	resp := append([]byte{q[0], q[1]}, 0, 0)
	binary.BigEndian.PutUint16(resp[2:], flags)
	ancount := uint16(0)
	if answer {
		ancount = 1
	}
	resp = binary.BigEndian.AppendUint16(resp, 1)
	resp = binary.BigEndian.AppendUint16(resp, ancount)
	resp = append(resp, 0, 0, 0, 0)
	resp = append(resp, question...)
	if answer {
		resp = append(resp, 0xc0, 12) // the question's name
		resp = binary.BigEndian.AppendUint16(resp, qtype)
		resp = binary.BigEndian.AppendUint16(resp, 1) // IN
		resp = binary.BigEndian.AppendUint32(resp, 60)
		b := ip.AsSlice()
		resp = binary.BigEndian.AppendUint16(resp, uint16(len(b)))
		resp = append(resp, b...)
	}
	return resp
}

// refusal checks that err is a refusal whose message holds every part of want.
func refusal(t *testing.T, err error, want ...string) {
	t.Helper()
	if !errors.Is(err, artifacts.ErrRefused) {
		t.Fatalf("err = %v, want a refusal", err)
	}
	var re *artifacts.RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want a *RefusedError", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("err = %v, want it to name %q", err, w)
		}
	}
}

func TestFetchRefusesHostsNotOnTheAllowList(t *testing.T) {
	ctx := context.Background()
	mod := module(21)
	srv, conns := moduleServer(t, mod, nil)
	port := portOf(t, srv.URL)
	for _, tc := range []struct {
		name   string
		allow  []string
		source string
	}{
		{"empty allow-list", nil, srv.URL + "/m.wasm"},
		{"another port of the host", []string{"127.0.0.1:1"}, srv.URL + "/m.wasm"},
		{"another host", []string{"registry.example"}, srv.URL + "/m.wasm"},
		{"an OCI reference", []string{"registry.example"}, "127.0.0.1:" + port + "/m:v1"},
		{"an oci+http reference", []string{"127.0.0.1:1"}, "oci+http://127.0.0.1:" + port + "/m:v1"},
		{"169.254.169.254", []string{"127.0.0.1"}, "http://169.254.169.254/latest/meta-data/"},
		{"a registry on 169.254.169.254", []string{"127.0.0.1"}, "169.254.169.254/m:v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := artifacts.NewClientConfig().WithAllowList(allow(t, tc.allow...))
			_, _, err := artifacts.Fetch(ctx, tc.source, "", cfg)
			refusal(t, err, "not on the fetch allow-list", "host ")
			noConnections(t, conns)
		})
	}
	// Listed, the same server answers.
	cfg := artifacts.NewClientConfig().WithAllowList(allow(t, "127.0.0.1:"+port))
	if got, _, err := artifacts.Fetch(ctx, srv.URL+"/m.wasm", digest.Of(mod), cfg); err != nil || string(got) != string(mod) {
		t.Fatalf("listed: %x, %v", got, err)
	}
}

func TestFetchRefusesSpecialAddressesOfWildcardHosts(t *testing.T) {
	ctx := context.Background()
	mod := module(22)
	srv, conns := moduleServer(t, mod, nil)
	port := portOf(t, srv.URL)
	resolver := startDNS(t, map[string]string{
		"modules.example.test": "127.0.0.1", // a public-looking name that answers with loopback
	})
	base := artifacts.NewClientConfig().WithResolver(resolver)
	for _, tc := range []struct {
		name   string
		allow  string
		source string
		want   []string
	}{
		// Admitted by a wildcard, refused once resolved: the dialer's hook sees 127.0.0.1.
		{"a name resolving to loopback", "*.example.test", "http://modules.example.test:" + port + "/m.wasm",
			[]string{"modules.example.test:" + port, "127.0.0.1", "loopback"}},
		{"the same, as an OCI registry", "*.example.test", "oci+http://modules.example.test:" + port + "/m:v1",
			[]string{"modules.example.test:" + port, "127.0.0.1", "loopback"}},
		{"localhost", "*", "http://localhost:" + port + "/m.wasm", []string{"localhost:" + port, "loopback"}},
		// IP literals are refused before any dial.
		{"a loopback literal", "*", srv.URL + "/m.wasm", []string{"127.0.0.1", "loopback"}},
		{"cloud metadata", "*", "http://169.254.169.254/latest/meta-data/iam/", []string{"169.254.169.254", "link-local"}},
		{"cloud metadata as a registry", "*", "169.254.169.254/m:v1", []string{"169.254.169.254", "link-local"}},
		{"IPv4-mapped loopback", "*", "http://[::ffff:127.0.0.1]:" + port + "/m.wasm", []string{"loopback"}},
		{"NAT64 of metadata", "*", "http://[64:ff9b::a9fe:a9fe]/m.wasm", []string{"link-local"}},
		{"private", "*", "http://10.1.2.3/m.wasm", []string{"10.1.2.3", "private"}},
		{"ULA", "*", "http://[fd00::1]/m.wasm", []string{"fd00::1", "unique local"}},
		{"IPv6 link-local", "*", "http://[fe80::1]/m.wasm", []string{"link-local"}},
		{"unspecified", "*", "http://0.0.0.0:" + port + "/m.wasm", []string{"unspecified"}},
		{"multicast", "*", "http://224.0.0.1/m.wasm", []string{"multicast"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base.WithAllowList(allow(t, tc.allow))
			_, _, err := artifacts.Fetch(ctx, tc.source, "", cfg)
			refusal(t, err, tc.want...)
			noConnections(t, conns)
		})
	}
	// Listed by its exact name, the host is trusted with its loopback address.
	cfg := base.WithAllowList(allow(t, "modules.example.test:"+port))
	if got, _, err := artifacts.Fetch(ctx, "http://modules.example.test:"+port+"/m.wasm", digest.Of(mod), cfg); err != nil || string(got) != string(mod) {
		t.Fatalf("listed by name: %x, %v", got, err)
	}
}

func TestFetchGuardsRedirects(t *testing.T) {
	ctx := context.Background()
	mod := module(23)
	target, targetConns := moduleServer(t, mod, nil)
	tport := portOf(t, target.URL)
	resolver := startDNS(t, map[string]string{"cdn.example.test": "127.0.0.1"})
	var hops atomic.Int64
	origin, _ := moduleServer(t, mod, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to":
			http.Redirect(w, r, r.URL.Query().Get("u"), http.StatusFound)
		case "/loop":
			hops.Add(1)
			http.Redirect(w, r, "/loop", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	})
	oport := portOf(t, origin.URL)
	to := func(u string) string { return origin.URL + "/to?u=" + url.QueryEscape(u) }
	// The origin is listed by address; the redirect targets are not.
	base := artifacts.NewClientConfig().WithResolver(resolver).WithAllowList(allow(t, "127.0.0.1:"+oport, "*.example.test"))

	for _, tc := range []struct {
		name, source string
		want         []string
	}{
		{"to another loopback port", to(target.URL + "/m.wasm"), []string{"127.0.0.1:" + tport, "loopback"}},
		{"to localhost", to("http://localhost:" + tport + "/m.wasm"), []string{"localhost:" + tport, "loopback"}},
		{"to a name resolving to loopback", to("http://cdn.example.test:" + tport + "/m.wasm"), []string{"cdn.example.test:" + tport, "127.0.0.1", "loopback"}},
		{"to cloud metadata", to("http://169.254.169.254/latest/meta-data/"), []string{"169.254.169.254", "link-local"}},
		{"to a private address", to("http://192.168.1.1/m.wasm"), []string{"192.168.1.1", "private"}},
		{"to IPv6 loopback", to("http://[::1]:" + tport + "/m.wasm"), []string{"::1", "loopback"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := artifacts.Fetch(ctx, tc.source, "", base)
			refusal(t, err, tc.want...)
			noConnections(t, targetConns)
		})
	}

	t.Run("redirect cap", func(t *testing.T) {
		for _, tc := range []struct {
			cfg  artifacts.ClientConfig
			hops int64
		}{
			{base, artifacts.DefaultMaxRedirects + 1},
			{base.WithMaxRedirects(2), 3},
			{base.WithMaxRedirects(0), 1},
		} {
			hops.Store(0)
			_, _, err := artifacts.Fetch(ctx, origin.URL+"/loop", "", tc.cfg)
			if err == nil || !strings.Contains(err.Error(), "stopped after") {
				t.Fatalf("err = %v, want the redirect cap", err)
			}
			if got := hops.Load(); got != tc.hops {
				t.Fatalf("%d requests, want %d", got, tc.hops)
			}
		}
	})
	t.Run("to another scheme", func(t *testing.T) {
		_, _, err := artifacts.Fetch(ctx, to("file:///etc/passwd"), "", base)
		if err == nil || !strings.Contains(err.Error(), `scheme "file"`) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("to a host listed by address", func(t *testing.T) {
		cfg := base.WithAllowList(allow(t, "127.0.0.1:"+oport, "127.0.0.1:"+tport))
		got, _, err := artifacts.Fetch(ctx, to(target.URL+"/m.wasm"), digest.Of(mod), cfg)
		if err != nil || string(got) != string(mod) {
			t.Fatalf("fetch = %x, %v", got, err)
		}
	})
}

func TestFetchHTTPSDowngradeRefused(t *testing.T) {
	ctx := context.Background()
	plain, plainConns := moduleServer(t, module(24), nil)
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/m.wasm", http.StatusFound)
	}))
	defer tlsSrv.Close()
	cfg := artifacts.NewClientConfig().WithHTTPClient(tlsSrv.Client()).
		WithAllowList(allow(t, hostOf(t, tlsSrv.URL), hostOf(t, plain.URL)))
	_, _, err := artifacts.Fetch(ctx, tlsSrv.URL+"/x", "", cfg)
	if err == nil || !strings.Contains(err.Error(), "from https to http") {
		t.Fatalf("err = %v, want the downgrade refused", err)
	}
	noConnections(t, plainConns)
}

// A transport the guard cannot wrap is refused rather than used unguarded.
func TestFetchRefusesAnUnguardableTransport(t *testing.T) {
	srv, conns := moduleServer(t, module(25), nil)
	hc := &http.Client{Transport: roundTripFunc(http.DefaultTransport.RoundTrip)}
	cfg := artifacts.NewClientConfig().WithHTTPClient(hc).WithAllowList(allow(t, hostOf(t, srv.URL)))
	_, _, err := artifacts.Fetch(context.Background(), srv.URL+"/m.wasm", "", cfg)
	if err == nil || !strings.Contains(err.Error(), "needs an *http.Transport") {
		t.Fatalf("err = %v", err)
	}
	noConnections(t, conns)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestFetchOCIAllowList(t *testing.T) {
	ctx := context.Background()
	r := startRegistry(t, false)
	mod := module(26)
	pushArtifact(t, r.repo(t, "prebuilt/app"), "v1", testLayer{"application/wasm", mod})
	_, port, _ := net.SplitHostPort(r.host)
	resolver := startDNS(t, map[string]string{"registry.example.test": "127.0.0.1"})
	base := artifacts.NewClientConfig().WithPlainHTTP(true).WithResolver(resolver)
	for _, tc := range []struct {
		name, allow, ref string
		refused          []string // empty: fetched
	}{
		{"listed by address", r.host, r.host + "/prebuilt/app:v1", nil},
		{"listed by address, any port", "127.0.0.1", r.host + "/prebuilt/app:v1", nil},
		{"listed by name", "registry.example.test:" + port, "registry.example.test:" + port + "/prebuilt/app:v1", nil},
		{"not listed", "registry.example", r.host + "/prebuilt/app:v1", []string{r.host, "not on the fetch allow-list"}},
		{"another port listed", "127.0.0.1:1", r.host + "/prebuilt/app:v1", []string{r.host, "not on the fetch allow-list"}},
		{"wildcard name resolving to loopback", "*.example.test", "registry.example.test:" + port + "/prebuilt/app:v1",
			[]string{"registry.example.test:" + port, "127.0.0.1", "loopback"}},
		{"any host, loopback literal", "*", r.host + "/prebuilt/app:v1", []string{"127.0.0.1", "loopback"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, d, err := artifacts.FetchOCI(ctx, tc.ref, "", base.WithAllowList(allow(t, tc.allow)))
			if len(tc.refused) == 0 {
				if err != nil || string(got) != string(mod) || d != digest.Of(mod) {
					t.Fatalf("fetch = %x, %s, %v", got, d, err)
				}
				return
			}
			refusal(t, err, tc.refused...)
		})
	}
}

func TestAllowListMatching(t *testing.T) {
	ctx := context.Background()
	mod := module(27)
	srv, _ := moduleServer(t, mod, nil)
	port := portOf(t, srv.URL)
	resolver := startDNS(t, map[string]string{"mod.example.test": "127.0.0.1", "example.test": "127.0.0.1"})
	const (
		fetched  = "fetched"
		unlisted = "not on the fetch allow-list"
		guarded  = "loopback"
	)
	for _, tc := range []struct {
		allow []string
		host  string // of http://HOST:PORT/m.wasm
		want  string
	}{
		{[]string{"127.0.0.1:" + port}, "127.0.0.1", fetched},
		{[]string{"127.0.0.1"}, "127.0.0.1", fetched},
		{[]string{"::ffff:127.0.0.1"}, "127.0.0.1", fetched},
		{[]string{"127.0.0.1:1"}, "127.0.0.1", unlisted},
		{[]string{"127.0.0.2"}, "127.0.0.1", unlisted},
		{[]string{"*"}, "127.0.0.1", guarded},
		{[]string{"*:" + port}, "127.0.0.1", guarded},
		{[]string{"*:1"}, "127.0.0.1", unlisted},
		{[]string{"*.0.0.1"}, "127.0.0.1", unlisted}, // wildcards never match an address
		{[]string{"mod.example.test"}, "mod.example.test", fetched},
		{[]string{"MOD.Example.Test."}, "mod.example.test", fetched},
		{[]string{"mod.example.test:" + port}, "mod.example.test", fetched},
		{[]string{"mod.example.test:1"}, "mod.example.test", unlisted},
		{[]string{"*.example.test"}, "mod.example.test", guarded},
		{[]string{"*.example.test"}, "example.test", unlisted},
		{[]string{"*.example.test", "mod.example.test"}, "mod.example.test", fetched},
		{[]string{"other.example.test"}, "mod.example.test", unlisted},
		{[]string{"example.test"}, "mod.example.test", unlisted},
		{nil, "mod.example.test", unlisted},
	} {
		t.Run(fmt.Sprintf("%v/%s", tc.allow, tc.host), func(t *testing.T) {
			cfg := artifacts.NewClientConfig().WithResolver(resolver).WithAllowList(allow(t, tc.allow...))
			got, _, err := artifacts.Fetch(ctx, "http://"+net.JoinHostPort(tc.host, port)+"/m.wasm", "", cfg)
			if tc.want == fetched {
				if err != nil || string(got) != string(mod) {
					t.Fatalf("fetch = %x, %v", got, err)
				}
				return
			}
			refusal(t, err, tc.want)
		})
	}
}

func TestParseAllowList(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want: String() of the list, or "error: <substring>"
	}{
		{"", ""},
		{" , ", ""},
		{"ghcr.io", "ghcr.io"},
		{"ghcr.io, registry.example:5000\t*.example.com\n127.0.0.1:5000,[::1]:5000 ::1 *", "ghcr.io,registry.example:5000,*.example.com,127.0.0.1:5000,[::1]:5000,::1,*"},
		{"*:8080", "*:8080"},
		{"[fd00::1]", "[fd00::1]"},
		{"https://ghcr.io", "error: not a URL"},
		{"ghcr.io/org", "error: not a URL"},
		{"user@ghcr.io", "error: not a URL"},
		{"ghcr.io:0", "error: port must be"},
		{"ghcr.io:65536", "error: port must be"},
		{"ghcr.io:08", "error: port must be"},
		{"ghcr.io:http", "error: port must be"},
		{"bad_host!.io", "error: character"},
		{"a..b", "error: empty label"},
		{"*.", "error: host name"},
		{"**.example.com", "error: character"},
		{"fe80::1%eth0", "error: zone"},
		{"fe80::zz", "error: not an IP address"},
		{strings.Repeat("a", 64) + ".io", "error: over 63"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			a, err := artifacts.ParseAllowList(tc.in)
			if msg, ok := strings.CutPrefix(tc.want, "error: "); ok {
				if err == nil || !strings.Contains(err.Error(), msg) {
					t.Fatalf("err = %v, want %q", err, msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.String() != tc.want || a.Empty() != (tc.want == "") {
				t.Fatalf("list = %q (empty %v), want %q", a.String(), a.Empty(), tc.want)
			}
			// String is what ParseAllowList reads back.
			if again, err := artifacts.ParseAllowList(a.String()); err != nil || again.String() != a.String() {
				t.Fatalf("reparse = %q, %v", again.String(), err)
			}
		})
	}
	a := allow(t, "ghcr.io")
	b, err := a.Add("127.0.0.1:5000")
	if err != nil || a.String() != "ghcr.io" || b.String() != "ghcr.io,127.0.0.1:5000" {
		t.Fatalf("add: %q, %q, %v", a, b, err)
	}
	if _, err := a.Add("http://x"); err == nil {
		t.Fatal("add accepted a URL")
	}
}
