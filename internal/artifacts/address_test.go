package artifacts_test

import (
	"net/netip"
	"strings"
	"testing"

	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/wasmbed/wasmbed/internal/artifacts"
)

func TestSpecialAddress(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want string // substring of the reason; "" for an address Fetch may reach
	}{
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"140.82.112.3", ""},
		{"100.63.255.255", ""},
		{"100.128.0.0", ""},
		{"172.15.255.255", ""},
		{"172.32.0.0", ""},
		{"169.253.255.255", ""},
		{"223.255.255.255", ""},
		{"2606:4700:4700::1111", ""},
		{"2a00:1450:4001:80b::200e", ""},
		{"::ffff:8.8.8.8", ""},
		{"64:ff9b::808:808", ""}, // NAT64 of 8.8.8.8
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", "unspecified"},
		{"10.0.0.1", "private (RFC 1918)"},
		{"10.255.255.255", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.168.0.1", "private"},
		{"100.64.0.1", "carrier-grade NAT"},
		{"100.100.100.200", "carrier-grade NAT"}, // Alibaba Cloud metadata
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"169.254.169.254", "link-local"},
		{"169.254.0.1", "link-local"},
		{"168.63.129.16", "Azure"},
		{"192.0.0.170", "IETF"},
		{"192.0.2.1", "documentation"},
		{"198.51.100.7", "documentation"},
		{"203.0.113.9", "documentation"},
		{"198.18.0.1", "benchmarking"},
		{"192.88.99.1", "6to4"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"240.0.0.1", "reserved"},
		{"255.255.255.255", "reserved"},
		{"::", "unspecified"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:169.254.169.254", "link-local"},
		{"::ffff:10.0.0.1", "private"},
		{"64:ff9b::7f00:1", "loopback"},           // NAT64 of 127.0.0.1
		{"64:ff9b::a9fe:a9fe", "link-local"},      // NAT64 of 169.254.169.254
		{"64:ff9b:1::808:808", "local-use NAT64"}, // never global
		{"::127.0.0.1", "reserved"},               // IPv4-compatible, deprecated
		{"100::1", "discard-only"},
		{"2001::1", "IETF"},
		{"2001:db8::1", "documentation"},
		{"2002:7f00:1::1", "6to4"},
		{"3fff::1", "documentation"},
		{"5f00::1", "SRv6"},
		{"fc00::1", "unique local"},
		{"fd00:ec2::254", "unique local"}, // AWS metadata over IPv6
		{"fd20:ce::254", "unique local"},  // GCP metadata over IPv6
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"febf::1", "link-local"},
		{"fec0::1", "site-local"},
		{"ff02::1", "multicast"},
		{"ff05::2", "multicast"},
		{"4000::1", "reserved"},
		{"e000::1", "reserved"},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			reason, special := artifacts.SpecialAddress(netip.MustParseAddr(tc.addr))
			if special != (tc.want != "") || !strings.Contains(reason, tc.want) || special != (reason != "") {
				t.Fatalf("SpecialAddress(%s) = %q, %v; want %q", tc.addr, reason, special, tc.want)
			}
		})
	}
	if reason, special := artifacts.SpecialAddress(netip.Addr{}); !special || reason == "" {
		t.Fatalf("the zero Addr = %q, %v; want refused", reason, special)
	}
}

// FuzzSpecialAddress holds the classifier to the standard library's and oras's own
// lists of addresses a client must not be steered to, and to its rules for addresses
// that carry an IPv4 address.
func FuzzSpecialAddress(f *testing.F) {
	for _, s := range []string{"8.8.8.8", "127.0.0.1", "169.254.169.254", "::1", "fe80::1", "fd00::1", "64:ff9b::7f00:1", "::ffff:10.0.0.1", "2001:db8::1", "2606:4700::1111", "ff02::1"} {
		f.Add(netip.MustParseAddr(s).AsSlice())
	}
	var denied []netip.Prefix
	denied = append(denied, auth.DefaultBlockedRealmPrefixes()...)
	denied = append(denied, auth.PrivateRealmPrefixes()...)
	f.Fuzz(func(t *testing.T, b []byte) {
		var addrs []netip.Addr
		if a, ok := netip.AddrFromSlice(b); ok {
			addrs = append(addrs, a)
		}
		if len(b) >= 4 {
			addrs = append(addrs, netip.AddrFrom4([4]byte(b[:4])))
		}
		for _, a := range addrs {
			reason, special := artifacts.SpecialAddress(a)
			if special != (reason != "") {
				t.Fatalf("%s: reason %q with special %v", a, reason, special)
			}
			std := a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
				a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() || !a.IsGlobalUnicast()
			if std && !special {
				t.Fatalf("%s: the standard library calls it special, SpecialAddress does not", a)
			}
			for _, p := range denied {
				if p.Contains(a) && !special {
					t.Fatalf("%s: in oras's denied prefix %s, but not special", a, p)
				}
			}
			if a.Is4() {
				// The same address mapped into IPv6, or behind NAT64, is judged alike.
				v4 := a.As4()
				mapped := netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: v4[0], 13: v4[1], 14: v4[2], 15: v4[3]})
				nat64 := netip.AddrFrom16([16]byte{0: 0x00, 1: 0x64, 2: 0xff, 3: 0x9b, 12: v4[0], 13: v4[1], 14: v4[2], 15: v4[3]})
				for _, alias := range []netip.Addr{mapped, nat64} {
					if r, s := artifacts.SpecialAddress(alias); s != special || r != reason {
						t.Fatalf("%s is %q %v, but %s is %q %v", a, reason, special, alias, r, s)
					}
				}
			}
			if a.Is6() && !a.Is4In6() && special == false && !netip.MustParsePrefix("2000::/3").Contains(a) && !netip.MustParsePrefix("64:ff9b::/96").Contains(a) {
				t.Fatalf("%s: outside global unicast, yet not special", a)
			}
		}
	})
}
