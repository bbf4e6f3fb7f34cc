// Package devicesim runs virtual devices: pure-Go devices that speak the Wasmbed device
// protocol over mutual TLS, each with its own certificate, and run the modules they
// receive in wazero through internal/wasmhost, as `wasmbed device sim` does. Thousands
// share one process: a device holds one goroutine while connected (its read loop),
// plus one per running application.
package devicesim

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/wasmbed/wasmbed/api/boards"
	"github.com/wasmbed/wasmbed/api/protocol"
	"github.com/wasmbed/wasmbed/internal/pki"
	"github.com/wasmbed/wasmbed/internal/wasmhost"
)

// Defaults of Config.
const (
	DefaultFirmware    = "devicesim/0.1.0"
	DefaultMaxFrame    = protocol.HardMaxFrame
	DefaultWindow      = 8
	DefaultMinBackoff  = time.Second
	DefaultMaxBackoff  = 60 * time.Second
	DefaultDialTimeout = 10 * time.Second
)

// Config describes a fleet of virtual devices. Zero values take the defaults noted.
type Config struct {
	// Gateway is the gateway's host:port; ServerName the name its certificate must
	// carry (default: the host part of Gateway).
	Gateway, ServerName string
	// CA issues each device's certificate and is trusted for the gateway's; RootCAs,
	// when set, replaces the CA for verifying the gateway.
	CA      *pki.CA
	RootCAs *x509.CertPool
	// Namespace and NamePrefix name the devices: <Namespace>/<NamePrefix><i>, i from
	// First (default 0).
	Namespace, NamePrefix string
	First, Count          int
	// Board is the catalogue board the devices claim (default "virtual").
	Board string
	// Host runs modules; nil creates one shared by the fleet.
	Host *wasmhost.Host
	// TLS12 limits the devices to TLS 1.2, as small TLS stacks do.
	TLS12 bool
	// MaxFrame is the body limit announced in Hello (default 16384); Window the
	// chunks in flight allowed in DeployAck (default 8).
	MaxFrame, Window uint32
	// Heartbeat overrides the interval from Welcome (tests).
	Heartbeat time.Duration
	// MinBackoff and MaxBackoff bound the jittered exponential reconnect backoff.
	MinBackoff, MaxBackoff time.Duration
	DialTimeout            time.Duration
	// NoRun keeps received modules without instantiating them; Start then reports
	// Running at once (load tests of delivery only).
	NoRun bool
	// CutTransferAt, when positive, makes each device drop its connection once, the
	// first time a transfer holds at least that many bytes (tests of resume).
	CutTransferAt int
	// DeploymentKey is the platform's deployment verification key, provisioned as in
	// the firmware: with it, every Deploy must carry a manifest it signed that names
	// this device's namespace and the Deploy's app, module and configuration, at a
	// version not lower than the one the app holds (docs/protocol.md). Without it,
	// manifests are not checked.
	DeploymentKey ed25519.PublicKey
	// Logger receives connection and application events.
	Logger *slog.Logger
	// OnStatus, when set, sees every AppStatus a device sends.
	OnStatus func(d *Device, s *protocol.AppStatus)
}

// Fleet is a set of virtual devices.
type Fleet struct {
	cfg      Config
	host     *wasmhost.Host
	ownsHost bool
	board    boards.Board
	devices  []*Device
}

// NewFleet issues a certificate for each device and returns the fleet, not yet
// connected.
func NewFleet(ctx context.Context, cfg Config) (*Fleet, error) {
	if cfg.CA == nil {
		return nil, errors.New("device sim: a ca is required")
	}
	if cfg.Count < 0 {
		return nil, fmt.Errorf("device sim: count %d", cfg.Count)
	}
	if cfg.Board == "" {
		cfg.Board = "virtual"
	}
	b, err := boards.Lookup(cfg.Board)
	if err != nil {
		return nil, fmt.Errorf("device sim: %w", err)
	}
	host, _, err := net.SplitHostPort(cfg.Gateway)
	if err != nil {
		return nil, fmt.Errorf("device sim: gateway address: %w", err)
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	if cfg.RootCAs == nil {
		cfg.RootCAs = cfg.CA.Pool()
	}
	if cfg.MaxFrame == 0 {
		cfg.MaxFrame = DefaultMaxFrame
	}
	if cfg.Window == 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	f := &Fleet{cfg: cfg, board: b, host: cfg.Host}
	if f.host == nil && !cfg.NoRun {
		// A wall-clock budget is at the mercy of the machine's load: thousands of virtual
		// devices share a few cores, so each call gets a second, not the default 100 ms.
		hc := wasmhost.NewHostConfig().WithMemoryLimitPages(uint32(max(1, b.AppMemoryBytes>>16))).
			WithCallBudget(time.Second)
		if f.host, err = wasmhost.NewHost(ctx, hc); err != nil {
			return nil, fmt.Errorf("device sim: %w", err)
		}
		f.ownsHost = true
	}
	for i := cfg.First; i < cfg.First+cfg.Count; i++ {
		id, err := pki.NewIdentity(cfg.Namespace, fmt.Sprintf("%s%d", cfg.NamePrefix, i))
		if err != nil {
			return nil, fmt.Errorf("device sim: %w", err)
		}
		d, err := f.NewDevice(id)
		if err != nil {
			return nil, err
		}
		f.devices = append(f.devices, d)
	}
	return f, nil
}

// NewDevice issues a certificate for id and returns a device of the fleet that is not
// part of Run (the caller runs it).
func (f *Fleet) NewDevice(id pki.Identity) (*Device, error) {
	certPEM, keyPEM, err := f.cfg.CA.IssueDevice(id, 0)
	if err != nil {
		return nil, fmt.Errorf("device sim: %w", err)
	}
	return f.NewDeviceWithCert(id, certPEM, keyPEM)
}

// NewDeviceWithCert returns a device of the fleet that presents the given certificate
// (tests use it for bad certificates) and claims id in Hello.
func (f *Fleet) NewDeviceWithCert(id pki.Identity, certPEM, keyPEM []byte) (*Device, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("device sim: key pair: %w", err)
	}
	cert.Leaf = nil // not needed by a client; saves memory per device
	tc, err := pki.ClientTLSConfig(f.cfg.RootCAs, cert, f.cfg.ServerName, pki.TLSOptions{AllowTLS12: f.cfg.TLS12})
	if err != nil {
		return nil, fmt.Errorf("device sim: %w", err)
	}
	if f.cfg.TLS12 {
		tc.MaxVersion = tls.VersionTLS12
	}
	// The key exchanges of microcontroller TLS stacks (mbedTLS): no post-quantum hybrid
	// share, which also keeps the ClientHello, and the buffers sized by it, small.
	tc.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256}
	return &Device{fleet: f, id: id, claim: id.String(), tls: tc, apps: map[string]*app{}}, nil
}

// Devices returns the fleet's devices.
func (f *Fleet) Devices() []*Device { return f.devices }

// Host returns the wasm host the fleet runs modules on.
func (f *Fleet) Host() *wasmhost.Host { return f.host }

// Run runs every device until ctx is done, then stops their applications.
func (f *Fleet) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, d := range f.devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.Run(ctx)
		}()
	}
	wg.Wait()
	return nil
}

// Close releases the fleet's wasm host if it created it.
func (f *Fleet) Close(ctx context.Context) error {
	if f.ownsHost {
		return f.host.Close(ctx)
	}
	return nil
}
