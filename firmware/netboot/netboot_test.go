package netboot_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/wasmbed/wasmbed/firmware/netboot"
)

// The board's reach is what NIC allows: QEMU itself is run with it by firmware/nettest.
func TestNIC(t *testing.T) {
	lo := func(p uint16) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), p) }
	got, err := netboot.NIC(netboot.Forward{Port: 8443, To: lo(18443)}, netboot.Forward{Port: 8080, To: lo(18090)})
	if err != nil {
		t.Fatal(err)
	}
	want := "user,restrict=on,guestfwd=tcp:10.0.2.100:8443-cmd:socat - TCP:127.0.0.1:18443,,nodelay," +
		"guestfwd=tcp:10.0.2.100:8080-cmd:socat - TCP:127.0.0.1:18090,,nodelay"
	if got != want {
		t.Fatalf("NIC = %q\nwant  %q", got, want)
	}
	if _, err := netboot.NIC(netboot.Forward{Port: 1, To: netip.MustParseAddrPort("[::1]:9")}); err != nil {
		t.Fatalf("IPv6 loopback refused: %v", err)
	}
	for _, tc := range []struct {
		name string
		fwd  []netboot.Forward
		want string
	}{
		{"none", nil, "no forward"},
		{"another host", []netboot.Forward{{Port: 8443, To: netip.MustParseAddrPort("10.1.2.3:8443")}}, "only loopback"},
		{"unspecified", []netboot.Forward{{Port: 8443, To: netip.MustParseAddrPort("0.0.0.0:8443")}}, "only loopback"},
		{"no target", []netboot.Forward{{Port: 8443}}, "a port is 0"},
		{"guest port 0", []netboot.Forward{{Port: 0, To: lo(1)}}, "a port is 0"},
		{"target port 0", []netboot.Forward{{Port: 1, To: lo(0)}}, "a port is 0"},
		{"twice", []netboot.Forward{{Port: 1, To: lo(2)}, {Port: 1, To: lo(3)}}, "twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := netboot.NIC(tc.fwd...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
			if _, err := netboot.Args("x.elf", tc.fwd...); err == nil {
				t.Fatal("Args took what NIC refused")
			}
		})
	}
	args, err := netboot.Args("board.elf", netboot.Forward{Port: 8443, To: lo(1)})
	if err != nil || strings.Join(args, " ") != "-M mps2-an386 -nographic -monitor none -serial stdio -kernel board.elf -nic "+
		"user,restrict=on,guestfwd=tcp:10.0.2.100:8443-cmd:socat - TCP:127.0.0.1:1,,nodelay" {
		t.Fatalf("Args = %q, %v", args, err)
	}
}
