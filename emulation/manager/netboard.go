package manager

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"

	"github.com/wasmbed/wasmbed/api/boards"
	"github.com/wasmbed/wasmbed/firmware/netboot"
	"github.com/wasmbed/wasmbed/firmware/provision"
	"github.com/wasmbed/wasmbed/internal/pki"
)

// TokenIssuer issues single-use bootstrap tokens bound to one device, which a gateway's
// POST /enroll takes (the embedded platform's IssueEnrollToken).
type TokenIssuer interface {
	IssueEnrollToken(id pki.Identity) (string, error)
}

// NetBoards is how the board manager runs boards that hold their own identity (the
// mps2-an386 network image): no bridge and no key of theirs on the host. The manager only
// provisions each start's image with a fresh token (QEMU's flash, and so the board's
// key, lasts as long as the process) and boots it on a network that reaches the
// gateway's two loopback ports and nothing else.
type NetBoards struct {
	// Tokens issues each start's bootstrap token.
	Tokens TokenIssuer
	// Gateway is the gateway's device port and Enroll its TLS enrollment port, both on
	// loopback; ServerName is the name in the gateway's certificate, CA the platform
	// CA's certificate the board verifies it with.
	Gateway, Enroll netip.AddrPort
	ServerName      string
	CA              *x509.Certificate
}

func (n *NetBoards) check() error {
	switch {
	case n.Tokens == nil || n.CA == nil || n.ServerName == "":
		return errors.New("network boards need a token issuer, the CA certificate and the gateway's server name")
	case !n.Gateway.Addr().IsLoopback() || !n.Enroll.Addr().IsLoopback():
		return fmt.Errorf("network boards reach loopback only: gateway %v, enroll %v", n.Gateway, n.Enroll)
	}
	return nil
}

// The ports a network board dials on netboot.GuestGateway (provisioned into it).
const (
	netDevicePort = 8443
	netEnrollPort = 8080
)

// IsNetImage reports whether the ELF at path is a network image (it has the .wb_net
// section provision.NetFile fills).
func IsNetImage(path string) (bool, error) {
	image, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("firmware image: %w", err)
	}
	isNet, err := provision.IsNetImage(image)
	if err != nil {
		return false, nil // not an ELF at all: not a network image (booting it will say what it is)
	}
	return isNet, nil
}

// startNetBoard starts the network image firmware as device id: before each start of the
// emulator, image is provisioned afresh from firmware with the deployment key and a new
// token; QEMU runs it with netboot's restricted network and its console on stdout.
func (m *Manager) startNetBoard(b boards.Board, id pki.Identity, firmware, image string) (*Board, error) {
	n := m.opts.Net
	if n == nil {
		return nil, fmt.Errorf("firmware %s is a network image: this board manager runs no network boards (NetBoards)", firmware)
	}
	if b.Name != "mps2-an386" {
		return nil, fmt.Errorf("firmware %s is a network image, which runs on mps2-an386, not %s", firmware, b.Name)
	}
	key := ed25519.PublicKey(m.opts.DeploymentKey)
	prepare := func(context.Context) error {
		token, err := n.Tokens.IssueEnrollToken(id)
		if err != nil {
			return err
		}
		return provision.NetFile(firmware, image, key, provision.Net{
			Identity: id, Gateway: netip.AddrPortFrom(netboot.GuestGateway, netDevicePort), EnrollPort: netEnrollPort,
			ServerName: n.ServerName, Token: token, CA: n.CA,
		})
	}
	qemu, err := exec.LookPath(DefaultQEMU)
	if err != nil {
		return nil, fmt.Errorf("board %s needs %s: %w", b.Name, DefaultQEMU, err)
	}
	args, err := netboot.Args(image, netboot.Forward{Port: netDevicePort, To: n.Gateway}, netboot.Forward{Port: netEnrollPort, To: n.Enroll})
	if err != nil {
		return nil, err
	}
	runner := m.opts.Runner.WithCommand(func(boards.Board, string, int) ([]string, error) {
		return append([]string{qemu}, args...), nil
	})
	ctx, cancel := context.WithCancel(m.runCtx)
	log := m.log.With("device", id.String(), "board", b.Name)
	emu, err := StartEmulator(ctx, EmulatorConfig{
		Board: b, Firmware: image, Runner: runner, Prepare: prepare, // no UART port: the console is stdout
		RestartMin: m.opts.RestartMin, RestartMax: m.opts.RestartMax, GracePeriod: m.opts.GracePeriod,
		Logger: log, Metrics: m.metrics,
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("start network board %s: %w", id, err)
	}
	bd := &Board{cfg: BoardConfig{Board: b.Name, Firmware: image, Logger: m.log}, id: id, emu: emu, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(bd.done)
		<-emu.Done()
	}()
	log.Info("network board started", "firmware", firmware)
	return bd, nil
}
