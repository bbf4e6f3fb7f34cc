package manager

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/wasmbed/wasmbed/api/boards"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/firmware/provision"
	"github.com/wasmbed/wasmbed/internal/pki"
)

// Defaults of Options.
const (
	// DefaultFirmwareDir holds <board>/firmware.elf, the images `make -C firmware boards`
	// builds, relative to the working directory.
	DefaultFirmwareDir = "firmware/build"
	// DefaultRetry is how soon a Device whose board could not start is tried again.
	DefaultRetry = 30 * time.Second
)

// Options configure a Manager. Config, RootCAs and Gateway are required.
type Options struct {
	// Config reaches the apiserver as the board manager: it needs get, list and watch
	// on Devices, and enrolls each board's key with it, so it also needs the ClusterRoles
	// wasmbed-device-csr-requester and wasmbed-device-enroller (config/200-rbac).
	Config *rest.Config
	// Namespaces limits the watch to these namespaces; empty watches all.
	Namespaces []string
	// RootCAs holds the platform CA's certificate: it verifies the gateway and the
	// certificates issued to the boards. The board manager holds no CA key.
	RootCAs *x509.CertPool
	// Gateway is the gateway's host:port; ServerName the name in its certificate
	// (default: the host of Gateway).
	Gateway, ServerName string
	// CertValidity is the lifetime each board's certificate request asks for (default
	// DefaultCertValidity); EnrollTimeout bounds the wait for one request, and
	// EnrollMinBackoff and EnrollMaxBackoff the pauses after one that did not succeed.
	CertValidity, EnrollTimeout        time.Duration
	EnrollMinBackoff, EnrollMaxBackoff time.Duration
	// Runner builds emulator command lines (default NewRunner()).
	Runner Runner
	// FirmwareDir holds the default image of each board, <FirmwareDir>/<board>/firmware.elf,
	// used when spec.emulation.firmware is empty (default DefaultFirmwareDir).
	FirmwareDir string
	// DeploymentKey, when set, is provisioned into every image before it boots (its
	// .wb_keys section, as a factory writes flash), so each board runs only modules under
	// a manifest that key signed. The provisioned copies go to ProvisionDir, required then.
	DeploymentKey ed25519.PublicKey
	ProvisionDir  string
	// Net, when set, runs Devices whose firmware is a network image (IsNetImage) as
	// boards that hold their own identity (needs DeploymentKey and ProvisionDir); without
	// it such a Device is refused.
	Net *NetBoards
	// Retry is how soon a board that could not start is tried again (default 30 s).
	Retry time.Duration
	// Emulator restart backoff, stop grace period and bridge backoff (zero: defaults).
	RestartMin, RestartMax, GracePeriod time.Duration
	BridgeMinBackoff, BridgeMaxBackoff  time.Duration
	// Registerer receives the metrics (nil: not registered).
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// SkipNameValidation allows several Managers in one process (tests).
	SkipNameValidation bool
}

// Manager runs an emulated board for every Device with spec.emulation.enabled, and
// stops it when the Device is deleted, disabled or no longer asks for emulation. A
// change of board or firmware restarts the board. Each board is owned by the Manager
// and stopped when Run returns.
type Manager struct {
	opts    Options
	log     *slog.Logger
	metrics *Metrics
	client  client.Client
	direct  client.Client // uncached: certificate signing requests
	runCtx  context.Context

	mu     sync.Mutex
	boards map[types.NamespacedName]*managed
	// creds keeps each Device's key across restarts of its board, so that its
	// certificate is renewed for the key the operator recorded; forgotten with the Device.
	creds map[types.NamespacedName]*Credentials
}

// managed is a running board and the spec it was started from.
type managed struct {
	board           *Board
	model, firmware string
}

// BoardStatus describes one running board, for the console.
type BoardStatus struct {
	// Device is "<namespace>/<name>".
	Device string
	// Board is the catalogue name, Firmware the image path.
	Board, Firmware string
	// Running reports the emulator process is up; Connected that the gateway welcomed
	// the device; Enrolled that its key has a certificate; Restarts counts emulator
	// restarts; Port is the UART's loopback port.
	Running, Connected, Enrolled bool
	Restarts, Port               int
}

// New checks opts and returns a Manager; Run starts it.
func New(opts Options) (*Manager, error) {
	if opts.Config == nil || opts.RootCAs == nil || opts.Gateway == "" {
		return nil, errors.New("new board manager: a rest config, the ca certificates and a gateway address are required")
	}
	if opts.Net != nil {
		if err := opts.Net.check(); err != nil {
			return nil, fmt.Errorf("new board manager: %w", err)
		}
		if opts.DeploymentKey == nil {
			return nil, errors.New("new board manager: network boards need the deployment key")
		}
	}
	if opts.DeploymentKey != nil && (len(opts.DeploymentKey) != ed25519.PublicKeySize || opts.ProvisionDir == "") {
		return nil, errors.New("new board manager: a deployment key is 32 bytes and needs a provision directory")
	}
	if opts.Runner.lookPath == nil {
		opts.Runner = NewRunner().WithCommand(opts.Runner.command)
	}
	if opts.FirmwareDir == "" {
		opts.FirmwareDir = DefaultFirmwareDir
	}
	if opts.Retry <= 0 {
		opts.Retry = DefaultRetry
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := NewMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("new board manager: %w", err)
	}
	return &Manager{opts: opts, log: opts.Logger, metrics: m,
		boards: map[types.NamespacedName]*managed{}, creds: map[types.NamespacedName]*Credentials{}}, nil
}

// Run watches Devices and runs their boards until ctx is done, then stops every board.
func (m *Manager) Run(ctx context.Context) error {
	scheme := k8sruntime.NewScheme()
	if err := v1.AddToScheme(scheme); err != nil {
		return fmt.Errorf("board manager: scheme: %w", err)
	}
	if err := certificatesv1.AddToScheme(scheme); err != nil {
		return fmt.Errorf("board manager: scheme: %w", err)
	}
	direct, err := client.New(m.opts.Config, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("board manager: %w", err)
	}
	m.direct = direct
	cacheOpts := cache.Options{}
	if len(m.opts.Namespaces) > 0 {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range m.opts.Namespaces {
			cacheOpts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	skip := m.opts.SkipNameValidation
	mgr, err := ctrl.NewManager(m.opts.Config, ctrl.Options{
		Scheme: scheme, Cache: cacheOpts,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Logger:                 logr.FromSlogHandler(m.log.Handler()),
		Controller:             ctrlconfig.Controller{SkipNameValidation: &skip},
	})
	if err != nil {
		return fmt.Errorf("board manager: %w", err)
	}
	m.client = mgr.GetClient()
	m.runCtx = ctx
	if err := ctrl.NewControllerManagedBy(mgr).Named("board-manager").For(&v1.Device{}).Complete(m); err != nil {
		return fmt.Errorf("board manager: %w", err)
	}
	m.log.Info("board manager started", "namespaces", m.opts.Namespaces, "gateway", m.opts.Gateway)
	err = mgr.Start(ctx)
	m.stopAll()
	if err != nil {
		return fmt.Errorf("board manager: %w", err)
	}
	return nil
}

// Reconcile starts, restarts or stops the board of one Device.
func (m *Manager) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var d v1.Device
	if err := m.client.Get(ctx, req.NamespacedName, &d); err != nil {
		if apierrors.IsNotFound(err) {
			m.stop(req.NamespacedName, "device deleted")
			m.forget(req.NamespacedName)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("get device %s: %w", req.NamespacedName, err)
	}
	switch {
	case d.DeletionTimestamp != nil:
		m.stop(req.NamespacedName, "device deleted")
		m.forget(req.NamespacedName)
		return reconcile.Result{}, nil
	case d.Spec.Emulation == nil || !d.Spec.Emulation.Enabled:
		m.stop(req.NamespacedName, "emulation disabled")
		return reconcile.Result{}, nil
	case d.Spec.Disabled:
		m.stop(req.NamespacedName, "device disabled")
		return reconcile.Result{}, nil
	}
	firmware := d.Spec.Emulation.Firmware
	if firmware == "" {
		firmware = filepath.Join(m.opts.FirmwareDir, d.Spec.Board, "firmware.elf")
	}
	m.mu.Lock()
	cur := m.boards[req.NamespacedName]
	m.mu.Unlock()
	if cur != nil && cur.model == d.Spec.Board && cur.firmware == firmware {
		return reconcile.Result{}, nil
	}
	if cur != nil {
		m.stop(req.NamespacedName, "board or firmware changed")
	}
	if err := m.start(req.NamespacedName, d.Spec.Board, firmware); err != nil {
		// Not an error for the workqueue: the firmware may be built later, Renode
		// installed later; try again at a calm pace.
		m.log.Error("cannot start board", "device", req.String(), "board", d.Spec.Board, "firmware", firmware, "err", err, "retry_in", m.opts.Retry)
		return reconcile.Result{RequeueAfter: m.opts.Retry}, nil
	}
	return reconcile.Result{}, nil
}

func (m *Manager) start(key types.NamespacedName, model, firmware string) error {
	b, err := boards.Lookup(model)
	if err != nil {
		return err
	}
	if b.Emulator == boards.EmulatorVirtual {
		return fmt.Errorf("board %s is virtual: run it with `wasmbed device sim`", model)
	}
	if _, err := os.Stat(firmware); err != nil {
		return fmt.Errorf("firmware image: %w", err)
	}
	id, err := pki.NewIdentity(key.Namespace, key.Name)
	if err != nil {
		return err
	}
	if isNet, err := IsNetImage(firmware); err != nil {
		return err
	} else if isNet {
		image := filepath.Join(m.opts.ProvisionDir, id.Namespace, id.Name, "firmware.elf")
		board, err := m.startNetBoard(b, id, firmware, image)
		if err != nil {
			return err
		}
		m.mu.Lock()
		m.boards[key] = &managed{board: board, model: model, firmware: firmware}
		m.mu.Unlock()
		return nil
	}
	image := firmware // what the board boots; firmware stays the Device's, for comparisons
	if m.opts.DeploymentKey != nil {
		// Every start provisions afresh: a rebuilt image or a new key takes effect.
		image = filepath.Join(m.opts.ProvisionDir, id.Namespace, id.Name, "firmware.elf")
		if err := provision.File(firmware, image, m.opts.DeploymentKey); err != nil {
			return err
		}
	}
	m.mu.Lock()
	creds := m.creds[key]
	m.mu.Unlock()
	if creds == nil {
		if creds, err = NewCredentials(id); err != nil {
			return err
		}
		m.mu.Lock()
		m.creds[key] = creds
		m.mu.Unlock()
	}
	board, err := StartBoard(m.runCtx, BoardConfig{
		Board: model, Firmware: image, Credentials: creds,
		Enroll: &EnrollConfig{Client: m.direct, Validity: m.opts.CertValidity, Timeout: m.opts.EnrollTimeout,
			MinBackoff: m.opts.EnrollMinBackoff, MaxBackoff: m.opts.EnrollMaxBackoff},
		Gateway: m.opts.Gateway, ServerName: m.opts.ServerName, RootCAs: m.opts.RootCAs, Runner: m.opts.Runner,
		RestartMin: m.opts.RestartMin, RestartMax: m.opts.RestartMax, GracePeriod: m.opts.GracePeriod,
		BridgeMinBackoff: m.opts.BridgeMinBackoff, BridgeMaxBackoff: m.opts.BridgeMaxBackoff,
		Logger: m.log, Metrics: m.metrics,
	})
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.boards[key] = &managed{board: board, model: model, firmware: firmware}
	m.mu.Unlock()
	return nil
}

// stop stops the board of key, if any, and waits for it.
func (m *Manager) stop(key types.NamespacedName, why string) {
	m.mu.Lock()
	cur := m.boards[key]
	delete(m.boards, key)
	m.mu.Unlock()
	if cur != nil {
		m.log.Info("stopping board", "device", key.String(), "reason", why)
		cur.board.Stop()
	}
}

// forget drops the key of a deleted Device: a Device created again under the name is
// another device.
func (m *Manager) forget(key types.NamespacedName) {
	m.mu.Lock()
	delete(m.creds, key)
	m.mu.Unlock()
}

// stopAll stops every board, in parallel, and waits for them.
func (m *Manager) stopAll() {
	m.mu.Lock()
	all := m.boards
	m.boards = map[types.NamespacedName]*managed{}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, cur := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cur.board.Stop()
		}()
	}
	wg.Wait()
}

// Boards returns the running boards, sorted by device.
func (m *Manager) Boards() []BoardStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]BoardStatus, 0, len(m.boards))
	for key, cur := range m.boards {
		out = append(out, BoardStatus{Device: key.String(), Board: cur.model, Firmware: cur.firmware,
			Running: cur.board.Emulator().Running(), Connected: cur.board.Connected(), Enrolled: cur.board.Enrolled(),
			Restarts: cur.board.Emulator().Restarts(), Port: cur.board.Port()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Device < out[j].Device })
	return out
}

// ConsoleLog returns the recent console output of a device's board, and whether the
// device has a running board.
func (m *Manager) ConsoleLog(id pki.Identity) ([]byte, bool) {
	m.mu.Lock()
	cur := m.boards[types.NamespacedName{Namespace: id.Namespace, Name: id.Name}]
	m.mu.Unlock()
	if cur == nil {
		return nil, false
	}
	return cur.board.ConsoleLog(), true
}
