// Package netboot says how QEMU runs the mps2-an386 network image (make -C firmware net):
// the -nic value that gives the board a LAN9118 on user-mode networking restricted to
// one forwarded address, whose ports reach the gateway on this machine's loopback and
// nothing else. The board manager and firmware/nettest boot the image with it.
package netboot

import (
	"fmt"
	"net/netip"
	"strings"
)

// GuestGateway is the address the board is provisioned to dial (firmware/provision,
// Net.Gateway): QEMU forwards its ports, and the board reaches no other address.
var GuestGateway = netip.MustParseAddr("10.0.2.100")

// Forward is one port of GuestGateway and the loopback address QEMU connects it to.
type Forward struct {
	// Port is the port the board dials on GuestGateway.
	Port uint16
	// To is where each connection goes: a loopback address and port only.
	To netip.AddrPort
}

// NIC returns the value of qemu-system-arm's -nic option: user networking with
// restrict=on (the guest reaches neither the host nor anything beyond it) and one
// guestfwd per forward, each connection handed to a new `socat - TCP:<to>,nodelay`
// (QEMU's cmd: form; its tcp: form connects once, when QEMU starts). Every target must
// be a loopback address, and every port set and used once.
func NIC(forwards ...Forward) (string, error) {
	if len(forwards) == 0 {
		return "", fmt.Errorf("netboot: no forward: the board could reach nothing")
	}
	seen := map[uint16]bool{}
	parts := []string{"user", "restrict=on"}
	for _, f := range forwards {
		if f.Port == 0 || f.To.Port() == 0 {
			return "", fmt.Errorf("netboot: forward %d -> %v: a port is 0", f.Port, f.To)
		}
		if !f.To.Addr().IsLoopback() {
			return "", fmt.Errorf("netboot: forward %d -> %v: only loopback targets are allowed", f.Port, f.To)
		}
		if seen[f.Port] {
			return "", fmt.Errorf("netboot: port %d forwarded twice", f.Port)
		}
		seen[f.Port] = true
		// ",," is QEMU's escaped comma, inside the socat address.
		parts = append(parts, fmt.Sprintf("guestfwd=tcp:%s:%d-cmd:socat - TCP:%s,,nodelay", GuestGateway, f.Port, f.To))
	}
	return strings.Join(parts, ","), nil
}

// Args returns qemu-system-arm's arguments for the provisioned image at elf: the
// MPS2 AN386, no display or monitor, the UART (the board's console) on stdio, and the
// network of NIC(forwards...).
func Args(elf string, forwards ...Forward) ([]string, error) {
	nic, err := NIC(forwards...)
	if err != nil {
		return nil, err
	}
	return []string{"-M", "mps2-an386", "-nographic", "-monitor", "none", "-serial", "stdio", "-kernel", elf, "-nic", nic}, nil
}
