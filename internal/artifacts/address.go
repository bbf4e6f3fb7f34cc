package artifacts

import "net/netip"

// specialRange is a block of addresses Fetch does not connect to, and why.
type specialRange struct {
	prefix netip.Prefix
	reason string
}

func ranges(pairs ...string) []specialRange {
	out := make([]specialRange, 0, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, specialRange{netip.MustParsePrefix(pairs[i]), pairs[i+1]})
	}
	return out
}

// The IANA special-purpose address registries (RFC 6890 and later), and the cloud
// metadata addresses outside them.
var (
	special4 = ranges(
		"0.0.0.0/8", "unspecified (0.0.0.0/8, \"this network\")",
		"10.0.0.0/8", "private (RFC 1918)",
		"100.64.0.0/10", "shared address space (carrier-grade NAT, RFC 6598)",
		"127.0.0.0/8", "loopback",
		"168.63.129.16/32", "a cloud platform endpoint (Azure WireServer)",
		"169.254.0.0/16", "link-local (169.254.0.0/16, where cloud metadata services answer)",
		"172.16.0.0/12", "private (RFC 1918)",
		"192.0.0.0/24", "reserved for IETF protocol assignments",
		"192.0.2.0/24", "reserved for documentation",
		"192.88.99.0/24", "6to4 relay anycast (deprecated)",
		"192.168.0.0/16", "private (RFC 1918)",
		"198.18.0.0/15", "reserved for benchmarking",
		"198.51.100.0/24", "reserved for documentation",
		"203.0.113.0/24", "reserved for documentation",
		"224.0.0.0/4", "multicast",
		"240.0.0.0/4", "reserved (240.0.0.0/4, with the broadcast address)",
	)
	special6 = ranges(
		"::/128", "unspecified",
		"::1/128", "loopback",
		"64:ff9b:1::/48", "local-use NAT64 (RFC 8215)",
		"100::/64", "discard-only (RFC 6666)",
		"2001::/23", "reserved for IETF protocol assignments (Teredo among them)",
		"2001:db8::/32", "reserved for documentation",
		"2002::/16", "6to4 (deprecated)",
		"3fff::/20", "reserved for documentation",
		"5f00::/16", "SRv6 segment identifiers",
		"fc00::/7", "unique local (ULA, fc00::/7)",
		"fe80::/10", "link-local",
		"fec0::/10", "site-local (deprecated)",
		"ff00::/8", "multicast",
	)
	// nat64 is the well-known NAT64 prefix: its addresses stand for the IPv4 address
	// in their last 32 bits, and are as special as that address.
	nat64 = netip.MustParsePrefix("64:ff9b::/96")
	// global6 is the IPv6 global unicast range; everything outside is reserved.
	global6 = netip.MustParsePrefix("2000::/3")
)

// SpecialAddress reports whether addr is an address Fetch refuses to connect to unless
// the host that resolved to it is on the allow-list by its exact name, and why:
// loopback, private (RFC 1918, IPv6 unique local), link-local (with the cloud
// metadata services at 169.254.169.254), unspecified, multicast, and the other
// blocks of the IANA special-purpose registries. IPv4-mapped and NAT64 addresses are
// judged by the IPv4 address they carry; an IPv6 address outside 2000::/3 is
// reserved. reason is empty when special is false.
func SpecialAddress(addr netip.Addr) (reason string, special bool) {
	if !addr.IsValid() {
		return "not a valid address", true
	}
	addr = addr.WithZone("").Unmap()
	if nat64.Contains(addr) {
		b := addr.As16()
		addr = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	table := special6
	if addr.Is4() {
		table = special4
	}
	for _, r := range table {
		if r.prefix.Contains(addr) {
			return r.reason, true
		}
	}
	if addr.Is6() && !global6.Contains(addr) {
		return "reserved (outside the IPv6 global unicast range 2000::/3)", true
	}
	return "", false
}
