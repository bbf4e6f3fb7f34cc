package artifacts

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// AllowList names the hosts Fetch may download modules from: the host of an http(s)
// URL, or the registry of an OCI reference, must match an entry. Each entry is
//
//   - a host name or IP address, optionally with a port ("ghcr.io",
//     "registry.example:5000", "127.0.0.1:5000", "[::1]:5000"): that host, on that port
//     or on any port. A host listed this way is trusted by name: it may resolve to,
//     or be, a loopback, private or other special address (see SpecialAddress);
//   - "*.example.com", optionally with a port: any name below example.com (not
//     example.com itself, and never an IP address);
//   - "*", optionally with a port: any host.
//
// A host admitted only by a wildcard must resolve to public addresses: the address
// is checked as each connection is made, after DNS resolution, so a name that
// answers with a public address first and a private one later gains nothing. So is
// every host a download reaches on the way (redirects, registry token services): a
// public address, or a host listed by exact name.
//
// The zero AllowList admits no host. An AllowList is immutable.
type AllowList struct {
	entries []allowEntry
}

// allowEntry is one parsed entry.
type allowEntry struct {
	raw    string     // as written, for String
	any    bool       // "*"
	suffix string     // ".example.com" for "*.example.com"
	name   string     // a host name, lower case, without a trailing dot
	ip     netip.Addr // an IP address entry
	port   string     // "" for any port
}

// NewAllowList parses patterns, one entry each, and names the first malformed one.
func NewAllowList(patterns ...string) (AllowList, error) {
	var a AllowList
	for _, p := range patterns {
		e, err := parseAllowEntry(p)
		if err != nil {
			return AllowList{}, err
		}
		a.entries = append(a.entries, e)
	}
	return a, nil
}

// ParseAllowList parses a list of entries separated by commas or white space, as
// flags and environment variables hold them. An empty s is an empty list.
func ParseAllowList(s string) (AllowList, error) {
	return NewAllowList(strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})...)
}

// Add returns a copy of a with patterns added.
func (a AllowList) Add(patterns ...string) (AllowList, error) {
	more, err := NewAllowList(patterns...)
	if err != nil {
		return a, err
	}
	out := AllowList{entries: make([]allowEntry, 0, len(a.entries)+len(more.entries))}
	out.entries = append(append(out.entries, a.entries...), more.entries...)
	return out, nil
}

// Empty reports whether a admits no host.
func (a AllowList) Empty() bool { return len(a.entries) == 0 }

// String returns the entries, comma-separated, as ParseAllowList reads them.
func (a AllowList) String() string {
	parts := make([]string, len(a.entries))
	for i, e := range a.entries {
		parts[i] = e.raw
	}
	return strings.Join(parts, ",")
}

// admits reports whether some entry matches host (without brackets) on port.
func (a AllowList) admits(host, port string) bool {
	host = normalHost(host)
	for _, e := range a.entries {
		if e.matches(host, port) {
			return true
		}
	}
	return false
}

// trusts reports whether an entry names host on port exactly (no wildcard): such a
// host may have special addresses.
func (a AllowList) trusts(host, port string) bool {
	host = normalHost(host)
	for _, e := range a.entries {
		if !e.any && e.suffix == "" && e.matches(host, port) {
			return true
		}
	}
	return false
}

func normalHost(host string) string {
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

func (e allowEntry) matches(host, port string) bool {
	if e.port != "" && e.port != port {
		return false
	}
	ip, ipErr := netip.ParseAddr(host)
	switch {
	case e.any:
		return true
	case e.suffix != "":
		return ipErr != nil && strings.HasSuffix(host, e.suffix)
	case e.ip.IsValid():
		return ipErr == nil && ip.WithZone("").Unmap() == e.ip
	default:
		return host == e.name
	}
}

func parseAllowEntry(raw string) (allowEntry, error) {
	e := allowEntry{raw: strings.TrimSpace(raw)}
	bad := func(why string) (allowEntry, error) {
		return allowEntry{}, fmt.Errorf("allow-list entry %q: %s", raw, why)
	}
	s := strings.ToLower(e.raw)
	switch {
	case s == "":
		return bad("empty")
	case strings.Contains(s, "://") || strings.ContainsAny(s, "/?#@ "):
		return bad("want a host or host:port, not a URL")
	}
	host := s
	if strings.HasPrefix(s, "[") || strings.Count(s, ":") == 1 {
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
				h, p, err = s[1:len(s)-1], "", nil
			} else {
				return bad("want host or host:port")
			}
		}
		host = h
		if p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != p {
				return bad("port must be a number from 1 to 65535")
			}
			e.port = p
		}
	}
	switch {
	case host == "*":
		e.any = true
	case strings.HasPrefix(host, "*."):
		name := normalHost(host[2:])
		if err := checkHostName(name); err != nil {
			return bad(err.Error())
		}
		e.suffix = "." + name
	default:
		if ip, err := netip.ParseAddr(host); err == nil {
			if ip.Zone() != "" {
				return bad("an address with a zone cannot be listed")
			}
			e.ip = ip.Unmap()
			break
		}
		if strings.Contains(host, ":") {
			return bad("not an IP address; write an IPv6 address with a port as [addr]:port")
		}
		name := normalHost(host)
		if err := checkHostName(name); err != nil {
			return bad(err.Error())
		}
		e.name = name
	}
	return e, nil
}

// checkHostName accepts a DNS name: labels of letters, digits, '-' and '_', 1 to 63
// bytes each, 253 in all.
func checkHostName(name string) error {
	if name == "" || len(name) > 253 {
		return fmt.Errorf("host name must have 1 to 253 characters")
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("host name has an empty label or one over 63 characters")
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("host name has the character %q", r)
			}
		}
	}
	return nil
}
