// Package embedded runs the whole Wasmbed platform in one process on one machine, the
// "embedded default" behind `make run`: the in-process broker, the compile, validate
// and dispatch functions each behind its own HTTP server, the operator, one gateway or
// more (Config.Gateways) and virtual devices, against a real apiserver. Only the
// transport differs from a cluster: the handlers are the ones Knative runs.
package platform

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/wasmbed/wasmbed/api/events"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/console"
	boardmanager "github.com/wasmbed/wasmbed/emulation/manager"
	"github.com/wasmbed/wasmbed/functions/compile"
	"github.com/wasmbed/wasmbed/functions/dispatch"
	"github.com/wasmbed/wasmbed/functions/validate"
	"github.com/wasmbed/wasmbed/gateway"
	"github.com/wasmbed/wasmbed/gateway/kube"
	"github.com/wasmbed/wasmbed/internal/artifacts"
	"github.com/wasmbed/wasmbed/internal/broker"
	"github.com/wasmbed/wasmbed/internal/devicesim"
	"github.com/wasmbed/wasmbed/internal/eventauth"
	"github.com/wasmbed/wasmbed/internal/eventserver"
	"github.com/wasmbed/wasmbed/internal/pki"
	"github.com/wasmbed/wasmbed/internal/sink"
	"github.com/wasmbed/wasmbed/internal/wasmhost"
	"github.com/wasmbed/wasmbed/operator"
	devicectl "github.com/wasmbed/wasmbed/operator/device"
	gatewayctl "github.com/wasmbed/wasmbed/operator/gateway"
	"github.com/wasmbed/wasmbed/operator/steps"
)

// Default ports of `wasmbed dev` (all on 127.0.0.1). Zero in Ports picks free ports.
const (
	DefaultBrokerPort      = 18080
	DefaultCompilePort     = 18081
	DefaultValidatePort    = 18082
	DefaultDispatchPort    = 18083
	DefaultOperatorPort    = 18084
	DefaultGatewayPort     = 18443
	DefaultGatewayHTTPPort = 18090
	DefaultGatewayOpsPort  = 18091
	DefaultConsolePort     = 18000
)

// GatewayName is the first embedded gateway's Gateway object, "<namespace>/<name>":
// the gateway of devices that name none.
const GatewayName = "wasmbed-system/gateway"

// gatewayRef is GatewayName as a reference; the gateway's Trigger and ServiceAccount are
// named after it, as the operator names them in a cluster.
var gatewayRef = v1.Ref{Namespace: events.SystemNamespace, Name: "gateway"}

// GatewayComponent names the i-th gateway (from 0) among the components of Addr, and
// its Gateway object in namespace wasmbed-system: "gateway", then "gateway-1",
// "gateway-2"... Its listeners are Addr(name) (device sessions), Addr(name+"-http")
// (deploy API, device logs) and Addr(name+"-ops") (health, metrics).
func GatewayComponent(i int) string {
	if i == 0 {
		return gatewayRef.Name
	}
	return fmt.Sprintf("%s-%d", gatewayRef.Name, i)
}

// embeddedGateway is one of the platform's gateways: its Gateway object, the listeners
// reserved for it before the broker's Trigger names them, and the running server.
type embeddedGateway struct {
	ref           v1.Ref
	dev, api, ops net.Listener
	srv           *gateway.Server
}

// name is the gateway's component name (GatewayComponent).
func (g *embeddedGateway) name() string { return g.ref.Name }

// Ports are the loopback ports of the components.
type Ports struct {
	Broker, Compile, Validate, Dispatch, Operator, Gateway, GatewayHTTP, Console int
	// GatewayOps serves the gateway's /healthz, /readyz and /metrics.
	GatewayOps int
}

// DefaultPorts returns the documented ports of `wasmbed dev`.
func DefaultPorts() Ports {
	return Ports{DefaultBrokerPort, DefaultCompilePort, DefaultValidatePort, DefaultDispatchPort,
		DefaultOperatorPort, DefaultGatewayPort, DefaultGatewayHTTPPort, DefaultConsolePort, DefaultGatewayOpsPort}
}

// Config configures the platform.
type Config struct {
	// REST reaches the apiserver as an administrator.
	REST *rest.Config
	// Dir keeps state: the platform CA, the artifact store, the gateway's desired state.
	Dir string
	// Artifacts is the artifact store's URL (see artifacts.NewFromURL), e.g.
	// oci+http://127.0.0.1:5000/wasmbed/modules for a registry on this machine;
	// empty keeps modules in Dir/artifacts.
	Artifacts string
	// FetchAllow lists the hosts prebuilt modules (an Application's oci or url source,
	// a deployment's moduleURL) may be fetched from. When Artifacts names an OCI
	// registry, that registry (its host:port only) is added: the platform's own store
	// is always reachable, and no other loopback service is.
	FetchAllow artifacts.AllowList
	// Ports of the components; zero fields pick free ports.
	Ports Ports
	// Devices is the number of virtual devices, in namespace DeviceNamespace (default
	// "default"), named sim-0, sim-1...; a Device object is created for each. Device
	// sim-i connects to gateway i modulo Gateways.
	Devices         int
	DeviceNamespace string
	// Gateways is the number of gateways (default 1), each with its own listeners,
	// ServiceAccount, Trigger, Gateway object and desired state; see GatewayComponent
	// for their names. Ports name the first one's ports; the others take free ports.
	Gateways int
	// Heartbeat and HeartbeatTimeout of the gateway (defaults 30 s and 90 s).
	Heartbeat, HeartbeatTimeout time.Duration
	// Resync is the operator's rollout resync period (default 5 s).
	Resync time.Duration
	// Now is the operator's clock for rollout policies (windows, schedules, rates,
	// timeouts); default time.Now. Tests move it to cross a window or a deadline.
	Now func() time.Time
	// FirmwareDir holds the firmware images of emulated boards, <dir>/<board>/firmware.elf
	// (default firmware/build, relative to the working directory).
	FirmwareDir string
	// EmulatedBoards are catalogue boards to emulate next to the virtual devices: a
	// Device "emu-<board>" with spec.emulation.enabled is created for each, and the board
	// manager boots its firmware (QEMU here).
	EmulatedBoards []string
	// NetworkBoards lets boards that hold their own identity connect, as the
	// mps2-an386 network image does: the gateway also accepts TLS 1.2
	// (ECDHE-ECDSA-AES-GCM over P-256 only) and serves POST /enroll over TLS on a
	// listener of its own (Addr("gateway-enroll")), where a board trades a bootstrap
	// token from IssueEnrollToken for a certificate of the key it generated.
	NetworkBoards bool
	// NetworkBoardFirmware, with NetworkBoards, is a network image (make -C firmware net)
	// for which a Device emu-mps2-an386-net is created: the board manager boots it as a
	// board that holds its own identity.
	NetworkBoardFirmware string
	// Logs gives each component its logger.
	Logs *Logs
}

// NetworkBoardDevice is the Device of Config.NetworkBoardFirmware's board.
const NetworkBoardDevice = "emu-mps2-an386-net"

// Platform is a running embedded platform.
type Platform struct {
	cfg      Config
	client   client.Client
	ca       *pki.CA
	signing  *pki.SigningKey
	attester *pki.SigningKey // the validator's: signs validation attestations
	store    artifacts.Store
	fetch    artifacts.ClientConfig // of the compile function and the gateway
	gws      []*embeddedGateway
	fleet    *devicesim.Fleet
	boards   *boardmanager.Manager
	addrs    map[string]string
	stages   []*stage
	stopOnce sync.Once
	errOnce  sync.Once
	err      error
	done     chan struct{}

	sender *sink.HTTP      // to the broker ingress, as the operator
	ids    *identities     // ServiceAccounts, tokens and policies
	consL  net.Listener    // reserved for the console
	opL    net.Listener    // reserved for the operator's receiver
	tokens *gateway.Tokens // bootstrap tokens, with NetworkBoards
}

// Addr returns the address ("127.0.0.1:port") of a component: broker, compile,
// validate, dispatch, operator, gateway, gateway-http (deploy API, device logs),
// gateway-ops (health, metrics), gateway-enroll (with NetworkBoards), console; with
// more Gateways, gateway-1, gateway-1-http, gateway-1-ops and so on (GatewayComponent).
func (p *Platform) Addr(component string) string { return p.addrs[component] }

// DeploymentKey returns the key that verifies the platform's deployment manifests,
// which a board's image is provisioned with.
func (p *Platform) DeploymentKey() ed25519.PublicKey { return p.signing.Public() }

// FetchAllow returns the hosts the compile function and the gateway may fetch
// prebuilt modules from: Config.FetchAllow and the platform's own registry.
func (p *Platform) FetchAllow() artifacts.AllowList { return p.fetch.AllowList() }

// Client returns a client of the apiserver with the Wasmbed and core types.
func (p *Platform) Client() client.Client { return p.client }

// CA returns the platform CA.
func (p *Platform) CA() *pki.CA { return p.ca }

// Gateway returns the first embedded gateway, GatewayName.
func (p *Platform) Gateway() *gateway.Server { return p.gws[0].srv }

// Gateways returns every embedded gateway, in the order of GatewayComponent.
func (p *Platform) Gateways() []*gateway.Server {
	out := make([]*gateway.Server, len(p.gws))
	for i, g := range p.gws {
		out[i] = g.srv
	}
	return out
}

// Boards returns the manager of emulated boards.
func (p *Platform) Boards() *boardmanager.Manager { return p.boards }

// Fleet returns the virtual devices.
func (p *Platform) Fleet() *devicesim.Fleet { return p.fleet }

// Done is closed when a component fails; Err says which.
func (p *Platform) Done() <-chan struct{} { return p.done }

// Err returns the first component failure.
func (p *Platform) Err() error { return p.err }

func (p *Platform) fail(err error) {
	p.errOnce.Do(func() {
		p.err = err
		close(p.done)
	})
}

// listen opens a loopback listener on port (0: any free port) and records it.
func (p *Platform) listen(name string, port int) (net.Listener, error) {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("%s: listen on port %d: %w", name, port, err)
	}
	p.addrs[name] = l.Addr().String()
	return l, nil
}

// stage is one group of components, stopped together: stages stop in the reverse order
// of their start, so devices go before the gateway, and the gateway's last events
// still reach a running broker.
type stage struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (p *Platform) newStage() *stage {
	ctx, cancel := context.WithCancel(context.Background())
	st := &stage{ctx: ctx, cancel: cancel}
	p.stages = append(p.stages, st)
	return st
}

// serveHTTP serves h on l until the stage stops.
func (p *Platform) serveHTTP(st *stage, name string, l net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	st.wg.Add(2)
	go func() {
		defer st.wg.Done()
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.fail(fmt.Errorf("%s: %w", name, err))
		}
	}()
	go func() {
		defer st.wg.Done()
		<-st.ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
}

// Start starts every component; Stop stops them.
func Start(ctx context.Context, cfg Config) (_ *Platform, err error) {
	if cfg.REST == nil || cfg.Dir == "" {
		return nil, errors.New("embedded: a rest config and a state dir are required")
	}
	if cfg.Logs == nil {
		cfg.Logs = NewLogs(os.Stderr, slog.LevelInfo)
	}
	if cfg.DeviceNamespace == "" {
		cfg.DeviceNamespace = "default"
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 30 * time.Second
	}
	if cfg.HeartbeatTimeout <= cfg.Heartbeat {
		cfg.HeartbeatTimeout = 3 * cfg.Heartbeat
	}
	if cfg.Resync <= 0 {
		cfg.Resync = 5 * time.Second
	}
	if cfg.Gateways <= 0 {
		cfg.Gateways = 1
	}
	scheme, err := operator.NewScheme()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg.REST, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("embedded: client: %w", err)
	}
	p := &Platform{cfg: cfg, client: c, addrs: map[string]string{}, done: make(chan struct{})}
	for i := range cfg.Gateways {
		p.gws = append(p.gws, &embeddedGateway{ref: v1.Ref{Namespace: gatewayRef.Namespace, Name: GatewayComponent(i)}})
	}
	defer func() {
		if err != nil {
			p.Stop()
		}
	}()
	if err := p.startPKIAndStore(); err != nil {
		return nil, err
	}
	if err := p.startPipeline(ctx, p.newStage()); err != nil {
		return nil, err
	}
	// Stages stop in reverse: devices, gateway (its last events still reach the
	// operator), operator, then the broker and functions.
	if err := p.startOperator(ctx, p.newStage()); err != nil {
		return nil, err
	}
	gwStage := p.newStage()
	for _, g := range p.gws {
		if err := p.startGateway(ctx, gwStage, g); err != nil {
			return nil, err
		}
	}
	if err := p.startConsole(p.newStage()); err != nil {
		return nil, err
	}
	if err := p.startDevices(ctx, p.newStage()); err != nil {
		return nil, err
	}
	return p, nil
}

// Stop stops every component, devices first and the broker last, and waits for them.
// It is idempotent.
func (p *Platform) Stop() {
	p.stopOnce.Do(func() {
		for i := len(p.stages) - 1; i >= 0; i-- {
			p.stages[i].cancel()
			p.stages[i].wg.Wait()
		}
		if p.fleet != nil {
			_ = p.fleet.Close(context.Background())
		}
	})
}

func (p *Platform) startPKIAndStore() error {
	pkiDir := filepath.Join(p.cfg.Dir, "pki")
	ca, err := pki.LoadCA(pkiDir)
	if err != nil {
		if ca, err = pki.NewCA("wasmbed-dev CA", 0); err != nil {
			return fmt.Errorf("embedded: platform CA: %w", err)
		}
		if err := ca.Save(pkiDir, false); err != nil {
			return fmt.Errorf("embedded: save platform CA: %w", err)
		}
	}
	p.ca = ca
	// Every module dispatched is signed; the virtual devices hold the public key and
	// refuse what does not verify.
	if p.signing, err = pki.LoadOrCreateSigningKey(filepath.Join(pkiDir, "signing.key")); err != nil {
		return fmt.Errorf("embedded: module signing key: %w", err)
	}
	// Its public half, as `wasmbed pki keys` writes it: `make -C firmware boards` bakes it
	// into the images by default.
	if err := pki.WriteFile(filepath.Join(pkiDir, "signing.pub"), []byte(hex.EncodeToString(p.signing.Public())+"\n"), 0o644); err != nil {
		return fmt.Errorf("embedded: module signing key: %w", err)
	}
	// The validator has a key of its own: dispatch signs only what it attested.
	if p.attester, err = pki.LoadOrCreateSigningKey(filepath.Join(pkiDir, "validation.key")); err != nil {
		return fmt.Errorf("embedded: validation key: %w", err)
	}
	var store artifacts.Store
	if p.cfg.Artifacts != "" {
		store, err = artifacts.NewFromURL(p.cfg.Artifacts, artifacts.NewClientConfig())
	} else {
		store, err = artifacts.NewDir(filepath.Join(p.cfg.Dir, "artifacts"))
	}
	if err != nil {
		return fmt.Errorf("embedded: artifact store: %w", err)
	}
	p.store = store
	// The platform's own registry, by its exact host:port, and nothing else of this
	// machine unless FetchAllow says so.
	allow := p.cfg.FetchAllow
	if oci, ok := store.(*artifacts.OCI); ok {
		if allow, err = allow.Add(oci.Registry()); err != nil {
			return fmt.Errorf("embedded: allow-list: %w", err)
		}
	}
	p.fetch = artifacts.NewClientConfig().WithAllowList(allow)
	return nil
}

// startPipeline starts the broker and the three functions, each on its own port.
func (p *Platform) startPipeline(ctx context.Context, st *stage) error {
	logs := p.cfg.Logs
	ports := p.cfg.Ports
	brokerL, err := p.listen("broker", ports.Broker)
	if err != nil {
		return err
	}
	ids, err := newIdentities(ctx, p.client)
	if err != nil {
		return err
	}
	p.ids = ids
	dispatchTokens, err := ids.component(ctx, "dispatch")
	if err != nil {
		return err
	}
	toBroker, err := sink.NewHTTP("http://"+p.addrs["broker"], 0, dispatchTokens, sink.WithComponent("dispatch"))
	if err != nil {
		return err
	}
	cf, err := compile.New(compile.Config{Store: p.store, Fetch: p.fetch, Reader: p.client, Optimize: true, Logger: logs.For("compile")})
	if err != nil {
		return err
	}
	vf, err := validate.New(validate.Config{Store: p.store, Attester: p.attester, Logger: logs.For("validate")})
	if err != nil {
		return err
	}
	df, err := dispatch.New(dispatch.Config{Reader: p.client, Sender: toBroker, DefaultGateway: GatewayName, Signer: p.signing,
		Attestations: p.store, Validator: p.attester.Public(), Logger: logs.For("dispatch")})
	if err != nil {
		return err
	}
	urls := map[string]string{}
	for _, fn := range []struct {
		name string
		port int
		h    eventserver.Handler
	}{{"compile", ports.Compile, cf}, {"validate", ports.Validate, vf}, {"dispatch", ports.Dispatch, df}} {
		l, err := p.listen(fn.name, fn.port)
		if err != nil {
			return err
		}
		policy, err := ids.policy(events.ReceiverAudience(fn.name), eventauth.ReceiverAllow(fn.name), logs, fn.name)
		if err != nil {
			return err
		}
		p.serveHTTP(st, fn.name, l, eventserver.NewHTTPHandler(fn.name, fn.h, eventserver.Options{Logger: logs.For(fn.name), Auth: policy}))
		urls[fn.name] = "http://" + p.addrs[fn.name]
	}
	// The gateways and operator listen later; reserve their ports now so the triggers
	// can name them. Ports name the first gateway's; the others take free ones.
	for i, g := range p.gws {
		devPort, apiPort, opsPort := ports.Gateway, ports.GatewayHTTP, ports.GatewayOps
		if i > 0 {
			devPort, apiPort, opsPort = 0, 0, 0
		}
		if g.api, err = p.listen(g.name()+"-http", apiPort); err != nil {
			return err
		}
		if g.dev, err = p.listen(g.name(), devPort); err != nil {
			return err
		}
		if g.ops, err = p.listen(g.name()+"-ops", opsPort); err != nil {
			return err
		}
	}
	opL, err := p.listen("operator", ports.Operator)
	if err != nil {
		return err
	}
	consL, err := p.listen("console", ports.Console)
	if err != nil {
		return err
	}
	p.opL, p.consL = opL, consL

	urls["operator"] = "http://" + p.addrs["operator"]
	urls["console"] = "http://" + p.addrs["console"] + "/"
	d := broker.Delivery{Retry: 5, BackoffPolicy: broker.BackoffExponential, BackoffDelay: 200 * time.Millisecond, Timeout: 2 * time.Minute}
	// The same Triggers as a cluster's (config/500-eventing), from one table, each
	// delivering with its own identity as Knative's do.
	var triggers []broker.Trigger
	for consumer, types := range events.Subscriptions {
		for _, t := range types {
			name := events.TriggerName(consumer, t)
			tokens, err := ids.trigger(ctx, events.SystemNamespace, name, events.ReceiverAudience(consumer))
			if err != nil {
				return err
			}
			triggers = append(triggers, broker.Trigger{Name: name, Filter: map[string]string{"type": string(t)}, Subscriber: urls[consumer], Delivery: d,
				Identity: eventauth.TriggerUser(events.SystemNamespace, name), Tokens: tokens})
		}
	}
	// Each gateway has its Trigger, named as its Gateway, for the deployments dispatch
	// addresses to it, and may send its own events into the broker.
	var gwUsers []string
	for _, g := range p.gws {
		gwTokens, err := ids.trigger(ctx, g.ref.Namespace, g.ref.Name, events.GatewayAudience(g.ref.Namespace, g.ref.Name))
		if err != nil {
			return err
		}
		triggers = append(triggers, broker.Trigger{Name: g.ref.Name,
			Filter:     map[string]string{"type": string(events.DeploymentRequested), events.ExtGateway: g.ref.Extension()},
			Subscriber: "http://" + p.addrs[g.name()+"-http"] + "/", Delivery: d,
			Identity: eventauth.TriggerUser(g.ref.Namespace, g.ref.Name), Tokens: gwTokens})
		gwUsers = append(gwUsers, eventauth.GatewayUser(g.ref.Namespace, g.ref.Name))
	}
	ingress, err := ids.policy(events.BrokerAudience(), eventauth.BrokerAllow(gwUsers...), logs, "broker")
	if err != nil {
		return err
	}
	b, err := broker.New(broker.Config{Logger: logs.For("broker"), Workers: 16, Ingress: ingress}, triggers...)
	if err != nil {
		return err
	}
	p.serveHTTP(st, "broker", brokerL, b)
	operatorTokens, err := ids.component(ctx, "operator")
	if err != nil {
		return err
	}
	if p.sender, err = sink.NewHTTP("http://"+p.addrs["broker"], 0, operatorTokens, sink.WithComponent("operator")); err != nil {
		return err
	}
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		<-st.ctx.Done()
		b.Close()
		_ = vf.Close(context.Background())
	}()
	return nil
}

// startGateway starts gateway g: device sessions with mTLS, its deploy API on the
// port the broker's trigger names, Devices from the apiserver as its registry. The
// first gateway also serves enrollment, with NetworkBoards.
func (p *Platform) startGateway(ctx context.Context, st *stage, g *embeddedGateway) error {
	ref := g.ref
	log := p.cfg.Logs.For(g.name())
	certPEM, keyPEM, err := p.ca.IssueServer([]string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}, 0)
	if err != nil {
		return fmt.Errorf("gateway certificate: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("gateway certificate: %w", err)
	}
	desired, err := gateway.NewDirDesired(filepath.Join(p.cfg.Dir, g.name(), "desired"))
	if err != nil {
		return err
	}
	reg, err := kube.New(p.cfg.REST, kube.Options{Logger: log})
	if err != nil {
		return err
	}
	// The gateway runs as its own ServiceAccount, named as its Gateway, as the operator
	// runs gateways in a cluster.
	gwTokens, err := p.ids.tokens(ctx, ref.Namespace, ref.Name, events.BrokerAudience())
	if err != nil {
		return err
	}
	evSink, err := gateway.NewHTTPSink("http://"+p.addrs["broker"], gateway.HTTPSinkOptions{Logger: log, Tokens: gwTokens})
	if err != nil {
		return err
	}
	deployAuth, err := p.ids.policy(events.GatewayAudience(ref.Namespace, ref.Name), eventauth.GatewayAllow(ref.Namespace, ref.Name), p.cfg.Logs, g.name())
	if err != nil {
		return err
	}
	gwCfg := gateway.NewConfig(p.ca.Pool(), cert)
	// The gateways share the process's file descriptors: each derives its session
	// limit from its share.
	if nofile, err := gateway.RaiseFileLimit(); err == nil && nofile > 0 && len(p.gws) > 1 {
		gwCfg = gwCfg.WithFileLimit(nofile / uint64(len(p.gws)))
	}
	gw, err := gateway.New(gwCfg.WithTLS12(p.cfg.NetworkBoards).
		WithName(ref.String()).WithEventAuth(deployAuth).WithHeartbeat(p.cfg.Heartbeat, p.cfg.HeartbeatTimeout).
		// Every device of this machine connects from 127.0.0.1.
		WithMaxPendingPerSource(0).
		WithArtifacts(p.store).WithFetch(p.fetch).WithDeploymentKey(p.signing.Public()).
		WithSink(evSink).WithRegistry(reg).WithDesired(desired).WithLogger(log).
		// A registry of its own: several gateways share the process; its ops listener
		// serves it at /metrics.
		WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		g.dev.Close()
		g.api.Close()
		g.ops.Close()
		return err
	}
	g.srv = gw
	serve := func(name string, serve func(net.Listener) error, l net.Listener) {
		st.wg.Add(1)
		go func() {
			defer st.wg.Done()
			if err := serve(l); err != nil && !errors.Is(err, gateway.ErrServerClosed) {
				p.fail(fmt.Errorf("%s: %w", name, err))
			}
		}()
	}
	// Shutdown stops them all.
	serve(g.name(), gw.Serve, g.dev)
	serve(g.name()+"-http", gw.ServeAPI, g.api)
	serve(g.name()+"-ops", gw.ServeOps, g.ops)
	if p.cfg.NetworkBoards && g == p.gws[0] {
		if err := p.serveEnroll(gw, cert, log, serve); err != nil {
			return err
		}
	}
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		<-st.ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = gw.Shutdown(sctx)
		_ = evSink.Close(sctx)
		if p.tokens != nil && g == p.gws[0] {
			_ = p.tokens.Close()
		}
	}()
	return nil
}

// serveEnroll serves the gateway's POST /enroll over TLS on a listener of its own, with
// bootstrap tokens kept (hashed, spent marks synced) under DIR/gateway/enroll, signing
// with the platform CA: the platform is this machine's CA signer.
func (p *Platform) serveEnroll(gw *gateway.Server, cert tls.Certificate, log *slog.Logger, serve func(string, func(net.Listener) error, net.Listener)) error {
	tokens, err := gateway.OpenTokens(filepath.Join(p.cfg.Dir, "gateway", "enroll"), time.Hour)
	if err != nil {
		return err
	}
	p.tokens = tokens
	gw.SetEnroller(gateway.NewEnroller(pki.NewSigner(p.ca, tokens), tokens, p.ca.CertPEM(), gateway.EnrollerOptions{Logger: log}))
	apiTLS, err := pki.APITLSConfig(cert, pki.TLSOptions{AllowTLS12: true})
	if err != nil {
		return fmt.Errorf("enrollment tls: %w", err)
	}
	l, err := p.listen("gateway-enroll", 0)
	if err != nil {
		return err
	}
	serve("gateway-enroll", func(l net.Listener) error { return gw.ServeEnroll(l, apiTLS) }, l)
	return nil
}

// IssueEnrollToken returns a new single-use bootstrap token, valid for an hour, bound to
// the device id: what a factory writes into a board's flash with the image (NetworkBoards).
func (p *Platform) IssueEnrollToken(id pki.Identity) (string, error) {
	if p.tokens == nil {
		return "", errors.New("issue enrollment token: the platform runs without NetworkBoards")
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("issue enrollment token: %w", err)
	}
	secret := base64.RawURLEncoding.EncodeToString(b)
	if err := p.tokens.Add(gateway.Token{Secret: secret, Identity: id, Expires: time.Now().Add(time.Hour)}); err != nil {
		return "", fmt.Errorf("issue enrollment token for %s: %w", id, err)
	}
	return secret, nil
}

// startOperator runs the operator in-process, its receiver on the reserved port.
func (p *Platform) startOperator(ctx context.Context, st *stage) error {
	log := p.cfg.Logs.For("operator")
	addr := p.addrs["operator"]
	p.opL.Close() // operator.Run listens itself, on the same address
	ready := make(chan struct{})
	opAuth, err := p.ids.policy(events.ReceiverAudience("operator"), eventauth.ReceiverAllow("operator"), p.cfg.Logs, "operator")
	if err != nil {
		return err
	}
	runner, err := steps.NewRunner(p.sender)
	if err != nil {
		return err
	}
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		err := operator.Run(st.ctx, operator.Options{
			Config: p.cfg.REST, Sender: p.sender, EventsAddr: addr, MetricsAddr: "0", HealthAddr: "0", Auth: opAuth,
			Resync: p.cfg.Resync, Now: p.cfg.Now, Logger: logr.FromSlogHandler(log.Handler()),
			// Tests run several platforms in one process.
			SkipNameValidation: true,
			// No Knative here: the operator calls spec.steps itself.
			StepRunner: runner,
			Ready:      func(net.Addr) { close(ready) },
			Setup: []func(ctrl.Manager) error{
				func(mgr ctrl.Manager) error {
					return devicectl.SetupWithManager(mgr, devicectl.Options{CA: p.ca})
				},
				func(mgr ctrl.Manager) error {
					return gatewayctl.SetupWithManager(mgr, gatewayctl.Options{Mode: gatewayctl.ModeEmbedded, Endpoint: p.addrs["gateway"], Resync: 10 * time.Second})
				},
			},
		})
		if err != nil && st.ctx.Err() == nil {
			p.fail(fmt.Errorf("operator: %w", err))
		}
	}()
	select {
	case <-ready:
		return nil
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Minute):
		return errors.New("operator not ready after a minute")
	}
}

// startDevices creates the Gateway and Device objects and starts the virtual devices.
func (p *Platform) startDevices(ctx context.Context, st *stage) error {
	for _, ns := range []string{"wasmbed-system", p.cfg.DeviceNamespace} {
		err := p.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create namespace %s: %w", ns, err)
		}
	}
	for _, g := range p.gws {
		gw := &v1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: g.ref.Name, Namespace: g.ref.Namespace}}
		if err := p.client.Create(ctx, gw); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create gateway object %s: %w", g.ref, err)
		}
	}
	// Devices that ask for an emulated board (spec.emulation.enabled) get one: QEMU (or
	// Renode) running the firmware, bridged to the gateway with the device's certificate.
	// The board manager acts as its own ServiceAccount and enrolls each board's key,
	// generated in its memory, through a CertificateSigningRequest the operator signs:
	// it is given the CA's certificate, never its key.
	bmREST, err := p.ids.boardManager(ctx, p.cfg.REST)
	if err != nil {
		return fmt.Errorf("board manager: %w", err)
	}
	if err := p.reenrollBoards(ctx); err != nil {
		return err
	}
	// With NetworkBoards, a Device whose firmware is the network image boots as a board
	// that holds its own identity: the board manager writes a token the platform issues
	// into each start's image, and the board enrolls and connects by itself.
	var netBoards *boardmanager.NetBoards
	if p.cfg.NetworkBoards {
		gwAP, err := netip.ParseAddrPort(p.addrs["gateway"])
		if err != nil {
			return fmt.Errorf("board manager: gateway address: %w", err)
		}
		enAP, err := netip.ParseAddrPort(p.addrs["gateway-enroll"])
		if err != nil {
			return fmt.Errorf("board manager: enrollment address: %w", err)
		}
		netBoards = &boardmanager.NetBoards{Tokens: p, Gateway: gwAP, Enroll: enAP, ServerName: "localhost", CA: p.ca.Cert}
	}
	bm, err := boardmanager.New(boardmanager.Options{
		Config: bmREST, RootCAs: p.ca.Pool(), Gateway: p.addrs["gateway"], ServerName: "localhost",
		FirmwareDir: p.cfg.FirmwareDir, Logger: p.cfg.Logs.For("boards"), Net: netBoards,
		DeploymentKey: p.signing.Public(), ProvisionDir: filepath.Join(p.cfg.Dir, "boards"),
		SkipNameValidation: true, // several platforms per test process
	})
	if err != nil {
		return fmt.Errorf("board manager: %w", err)
	}
	p.boards = bm
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		if err := bm.Run(st.ctx); err != nil && st.ctx.Err() == nil {
			p.fail(fmt.Errorf("board manager: %w", err))
		}
	}()
	for _, board := range p.cfg.EmulatedBoards {
		d := &v1.Device{
			ObjectMeta: metav1.ObjectMeta{Name: "emu-" + board, Namespace: p.cfg.DeviceNamespace,
				Labels: map[string]string{"wasmbed.dev/kind": "emulated"}},
			Spec: v1.DeviceSpec{Board: board, Emulation: &v1.DeviceEmulation{Enabled: true}},
		}
		if err := p.client.Create(ctx, d); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create device %s: %w", d.Name, err)
		}
	}
	if p.cfg.NetworkBoards && p.cfg.NetworkBoardFirmware != "" {
		d := &v1.Device{
			ObjectMeta: metav1.ObjectMeta{Name: NetworkBoardDevice, Namespace: p.cfg.DeviceNamespace,
				Labels: map[string]string{"wasmbed.dev/kind": "emulated"}},
			Spec: v1.DeviceSpec{Board: "mps2-an386", Emulation: &v1.DeviceEmulation{Enabled: true, Firmware: p.cfg.NetworkBoardFirmware}},
		}
		if err := p.client.Create(ctx, d); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create device %s: %w", d.Name, err)
		}
	}
	if p.cfg.Devices <= 0 {
		return nil
	}
	for i := 0; i < p.cfg.Devices; i++ {
		d := &v1.Device{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("sim-%d", i), Namespace: p.cfg.DeviceNamespace,
				Labels: map[string]string{"wasmbed.dev/kind": "virtual"}},
			Spec: v1.DeviceSpec{Board: "virtual"},
		}
		if err := p.client.Create(ctx, d); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create device %s: %w", d.Name, err)
		}
	}
	// One fleet per gateway, sharing one wasm host: device sim-i connects to gateway
	// i modulo Gateways; Fleet returns the first gateway's.
	var host *wasmhost.Host
	fleets := make([]*devicesim.Fleet, len(p.gws))
	for j, g := range p.gws {
		fleet, err := devicesim.NewFleet(ctx, devicesim.Config{
			Gateway: p.addrs[g.name()], ServerName: "localhost", CA: p.ca,
			Namespace: p.cfg.DeviceNamespace, NamePrefix: "sim-", Board: "virtual",
			DeploymentKey: p.signing.Public(), Host: host,
			Logger: p.cfg.Logs.For("devices"),
		})
		if err != nil {
			return fmt.Errorf("virtual devices: %w", err)
		}
		if j == 0 {
			p.fleet, host = fleet, fleet.Host()
		}
		fleets[j] = fleet
	}
	for i := 0; i < p.cfg.Devices; i++ {
		fleet := fleets[i%len(fleets)]
		id := pki.Identity{Namespace: p.cfg.DeviceNamespace, Name: fmt.Sprintf("sim-%d", i)}
		// A virtual device is enrolled by the platform itself: its certificate is issued
		// here and recorded in its identity Secret and its key in the Device's status, as
		// the operator records signed CSRs (a new key each run).
		certPEM, keyPEM, err := p.ca.IssueDevice(id, 0)
		if err != nil {
			return fmt.Errorf("virtual device %s: %w", id, err)
		}
		if err := p.recordIdentity(ctx, id, certPEM); err != nil {
			return err
		}
		d, err := fleet.NewDeviceWithCert(id, certPEM, keyPEM)
		if err != nil {
			return err
		}
		st.wg.Add(1)
		go func() {
			defer st.wg.Done()
			d.Run(st.ctx)
		}()
	}
	return nil
}

// reenrollBoards marks for re-enrollment every emulated Device that holds a
// certificate from an earlier run: the board manager's keys lived in its memory and are
// gone, and without the mark the operator would refuse the new keys until the old
// certificates expire. The platform does this as the administrator it is; the board
// manager itself may not.
func (p *Platform) reenrollBoards(ctx context.Context) error {
	var list v1.DeviceList
	if err := p.client.List(ctx, &list); err != nil {
		return fmt.Errorf("list devices: %w", err)
	}
	for i := range list.Items {
		d := &list.Items[i]
		if d.Spec.Emulation == nil || !d.Spec.Emulation.Enabled || d.Status.PublicKeyHash == "" || reenrolling(d) {
			continue
		}
		before := d.DeepCopy()
		if d.Annotations == nil {
			d.Annotations = map[string]string{}
		}
		d.Annotations[v1.DeviceReenrollAnnotation] = "true"
		if err := p.client.Patch(ctx, d, client.MergeFrom(before)); err != nil {
			return fmt.Errorf("mark device %s/%s for re-enrollment: %w", d.Namespace, d.Name, err)
		}
	}
	return nil
}

func reenrolling(d *v1.Device) bool { return d.Annotations[v1.DeviceReenrollAnnotation] != "" }

// recordIdentity writes the device's identity Secret (Opaque: tls.crt and ca.crt; the
// key stays with the device), then records its key in the Device's status: the gateway
// admits only that key once a certificate is recorded. The Secret goes first, so that
// the operator, reconciling on the key's change, finds the certificate that matches.
func (p *Platform) recordIdentity(ctx context.Context, id pki.Identity, certPEM []byte) error {
	cert, err := pki.ParseCertificatePEM(certPEM)
	if err != nil {
		return fmt.Errorf("identity of %s: %w", id, err)
	}
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: id.Name + "-identity", Namespace: id.Namespace,
			Labels: map[string]string{"wasmbed.dev/device": id.Name}},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{"tls.crt": certPEM, "ca.crt": p.ca.CertPEM()},
	}
	err = p.client.Create(ctx, sec)
	if apierrors.IsAlreadyExists(err) {
		err = p.client.Update(ctx, sec)
	}
	if err != nil {
		return fmt.Errorf("identity secret of %s: %w", id, err)
	}
	var dev v1.Device
	if err := p.client.Get(ctx, client.ObjectKey{Namespace: id.Namespace, Name: id.Name}, &dev); err != nil {
		return fmt.Errorf("device %s: %w", id, err)
	}
	before := dev.DeepCopy()
	dev.Status.RecordKey(pki.PublicKeyHash(cert.RawSubjectPublicKeyInfo), nil)
	if err := p.client.Status().Patch(ctx, &dev, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("record the key of %s: %w", id, err)
	}
	return nil
}

// startConsole serves the web console on its reserved port. It acts with each user's
// token, so only the apiserver's address and CA are taken from REST.
func (p *Platform) startConsole(st *stage) error {
	consoleAuth, err := p.ids.policy(events.ReceiverAudience("console"), eventauth.ReceiverAllow("console"), p.cfg.Logs, "console")
	if err != nil {
		return err
	}
	srv, err := console.New(console.Config{REST: p.cfg.REST, Logger: p.cfg.Logs.For("console"), EventAuth: consoleAuth,
		GatewayURL: func(gw v1.Ref) string {
			for _, g := range p.gws {
				if gw == g.ref {
					return "http://" + p.addrs[g.name()+"-http"]
				}
			}
			return ""
		}})
	if err != nil {
		return err
	}
	p.serveHTTP(st, "console", p.consL, srv)
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		<-st.ctx.Done()
		srv.Close() // end the streams, so the server's Shutdown does not wait for them
	}()
	return nil
}
