package manager

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/wasmbed/wasmbed/api/boards"
	"github.com/wasmbed/wasmbed/internal/pki"
)

// BoardConfig describes one emulated board that is a device: the emulator running its
// firmware and the bridge that connects its UART to the gateway as that device.
type BoardConfig struct {
	// Board is the catalogue name; Firmware the ELF image it boots.
	Board, Firmware string
	// Credentials are the device's key, in memory, and its certificate (required).
	Credentials *Credentials
	// Enroll, when set, obtains and renews the certificate of Credentials through a
	// CertificateSigningRequest (Enroll) while the board runs; unset, Credentials
	// must already hold one. Its Board, Logger and Metrics default to the board's.
	Enroll *EnrollConfig
	// Gateway is the gateway's host:port, ServerName the name in its certificate
	// (default: the host of Gateway); RootCAs verifies it.
	Gateway, ServerName string
	RootCAs             *x509.CertPool
	// TLS12 limits the gateway session to TLS 1.2, as a constrained stack would.
	TLS12 bool
	// Runner builds the emulator command line (default NewRunner()).
	Runner Runner
	// Port is the loopback port of the board's UART; 0 picks a free one.
	Port int
	// Emulator restart backoff and stop grace period, bridge backoff (zero: defaults).
	RestartMin, RestartMax, GracePeriod time.Duration
	BridgeMinBackoff, BridgeMaxBackoff  time.Duration
	Logger                              *slog.Logger
	Metrics                             *Metrics
}

// Board is a running emulated board: one goroutine supervises its emulator process, one
// runs its bridge and one, when enrolling, keeps its certificate; Stop ends them all.
type Board struct {
	cfg    BoardConfig
	id     pki.Identity // the device the board is
	emu    *Emulator
	bridge *Bridge
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// StartBoard starts the emulator, the bridge and, with cfg.Enroll, the enrollment of
// the board's key, which run until ctx is done or Stop. The bridge holds the board's
// Hello until the key has a certificate.
func StartBoard(ctx context.Context, cfg BoardConfig) (*Board, error) {
	b, err := boards.Lookup(cfg.Board)
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = discardMetrics
	}
	if cfg.Runner.lookPath == nil {
		cfg.Runner = NewRunner().WithCommand(cfg.Runner.command)
	}
	if cfg.RootCAs == nil {
		return nil, errors.New("start board: root cas for the gateway are required")
	}
	if cfg.Credentials == nil {
		return nil, errors.New("start board: the device's credentials are required")
	}
	if cfg.Enroll == nil && cfg.Credentials.Certificate() == nil {
		return nil, errors.New("start board: the credentials hold no certificate and no enrollment is configured")
	}
	if cfg.Enroll != nil && cfg.Enroll.Client == nil {
		return nil, errors.New("start board: enrollment needs a kubernetes client")
	}
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(cfg.Gateway)
		if err != nil {
			return nil, fmt.Errorf("start board: gateway address: %w", err)
		}
		cfg.ServerName = host
	}
	creds := cfg.Credentials
	clientTLS := func() (*tls.Config, error) {
		cert := creds.Certificate()
		if cert == nil {
			return nil, ErrNotEnrolled
		}
		tc, err := pki.ClientTLSConfig(cfg.RootCAs, *cert, cfg.ServerName, pki.TLSOptions{AllowTLS12: cfg.TLS12})
		if err != nil {
			return nil, err
		}
		if cfg.TLS12 {
			tc.MaxVersion = tls.VersionTLS12
		}
		return tc, nil
	}
	if cfg.Port == 0 {
		if cfg.Port, err = freePort(); err != nil {
			return nil, fmt.Errorf("start board: %w", err)
		}
	}
	id := creds.Identity()
	log := cfg.Logger.With("device", id.String(), "board", b.Name)
	bridge, err := NewBridge(BridgeConfig{
		UART: net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port)), Gateway: cfg.Gateway, TLS: clientTLS,
		Identity: id, Board: b.Name, MinBackoff: cfg.BridgeMinBackoff, MaxBackoff: cfg.BridgeMaxBackoff,
		Logger: cfg.Logger, Metrics: cfg.Metrics,
	})
	if err != nil {
		return nil, fmt.Errorf("start board: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	emu, err := StartEmulator(ctx, EmulatorConfig{
		Board: b, Firmware: cfg.Firmware, Port: cfg.Port, Runner: cfg.Runner,
		RestartMin: cfg.RestartMin, RestartMax: cfg.RestartMax, GracePeriod: cfg.GracePeriod,
		Logger: log, Metrics: cfg.Metrics,
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("start board %s: %w", id, err)
	}
	bd := &Board{cfg: cfg, id: id, emu: emu, bridge: bridge, cancel: cancel, done: make(chan struct{})}
	enrolled := make(chan struct{})
	if cfg.Enroll != nil {
		ec := *cfg.Enroll
		ec.Board, ec.Logger, ec.Metrics = b.Name, cfg.Logger, cfg.Metrics
		if ec.RootCAs == nil {
			ec.RootCAs = cfg.RootCAs
		}
		go func() {
			defer close(enrolled)
			Enroll(ctx, ec, creds)
		}()
	} else {
		close(enrolled)
	}
	go func() {
		defer close(bd.done)
		_ = bridge.Run(ctx)
		<-emu.Done()
		<-enrolled
	}()
	log.Info("board started", "firmware", cfg.Firmware, "uart_port", cfg.Port)
	return bd, nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Stop stops the bridge and the emulator and waits for them. It is idempotent.
func (b *Board) Stop() {
	b.once.Do(func() {
		b.cancel()
		<-b.done
		b.cfg.Logger.Info("board stopped", "device", b.id.String(), "board", b.cfg.Board)
	})
}

// Done is closed once the board has stopped.
func (b *Board) Done() <-chan struct{} { return b.done }

// Identity returns the device the board is.
func (b *Board) Identity() pki.Identity { return b.id }

// Enrolled reports whether the board manager holds a certificate for the board; a
// network board holds its own, which the manager never sees (false).
func (b *Board) Enrolled() bool {
	return b.cfg.Credentials != nil && b.cfg.Credentials.Certificate() != nil
}

// Port returns the loopback port of the board's UART.
func (b *Board) Port() int { return b.cfg.Port }

// Emulator returns the board's emulator supervisor.
func (b *Board) Emulator() *Emulator { return b.emu }

// Bridge returns the board's UART-to-gateway bridge; nil for a network board.
func (b *Board) Bridge() *Bridge { return b.bridge }

// ConsoleLog returns the emulator's recent console output.
func (b *Board) ConsoleLog() []byte { return b.emu.ConsoleLog() }

// Connected reports whether the board has a welcomed gateway session.
// A network board's session is its own: false here, its Device says.
func (b *Board) Connected() bool { return b.bridge != nil && b.bridge.Connected() }
