// Command gateway runs the Wasmbed gateway: device mTLS sessions on --addr, the deploy
// API (deployment.requested CloudEvents), device logs and /enroll on --http-addr, and
// /healthz, /readyz and /metrics on --ops-addr. Events go to $K_SINK.
// docs/gateway.md describes it.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/wasmbed/wasmbed/api/events"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/eventauth"
	"github.com/wasmbed/wasmbed/internal/logging"
	"github.com/wasmbed/wasmbed/internal/tracing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client/config"

	"github.com/wasmbed/wasmbed/api/protocol"
	"github.com/wasmbed/wasmbed/gateway"
	"github.com/wasmbed/wasmbed/gateway/kube"
	"github.com/wasmbed/wasmbed/internal/artifacts"
	"github.com/wasmbed/wasmbed/internal/pki"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// options are the command line (and environment) of the gateway.
type options struct {
	addr                string
	httpAddr            string
	opsAddr             string
	tlsDir              string
	caFile              string
	certFile            string
	keyFile             string
	caKeyDir            string
	tokens              string
	tokenTTL            time.Duration
	stateDir            string
	artifactsURL        string
	fetchAllow          string
	name                string
	sink                string
	sinkToken           string
	eventAuth           bool
	registry            string
	allowFile           string
	heartbeat           time.Duration
	heartbeatTimeout    time.Duration
	maxSessions         int
	maxPending          int
	maxPendingPerSource int
	sourceRate          float64
	sourceBurst         int
	tls12               bool
	seen                time.Duration
	summaryInterval     time.Duration
	summaryResync       time.Duration
	level               logging.Level
	httpTLS             bool
	deploymentKey       string
}

// newFlags defines the gateway's flags into o.
func newFlags(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.StringVar(&o.addr, "addr", env("WASMBED_GATEWAY_ADDR", gateway.DefaultAddr), "device (mTLS) listen address")
	fs.StringVar(&o.httpAddr, "http-addr", env("WASMBED_GATEWAY_HTTP_ADDR", ":8080"), "deploy API, device logs and /enroll listen address (plain HTTP unless --http-tls)")
	fs.StringVar(&o.opsAddr, "ops-addr", env("WASMBED_GATEWAY_OPS_ADDR", ":9090"), "/healthz, /readyz and /metrics listen address (plain HTTP)")
	fs.StringVar(&o.tlsDir, "tls-dir", env("WASMBED_GATEWAY_TLS_DIR", ""), "directory with tls.crt, tls.key and ca.crt (the output of `wasmbed pki gateway`)")
	fs.StringVar(&o.caFile, "ca", "", "platform CA certificate (default TLS-DIR/ca.crt)")
	fs.StringVar(&o.certFile, "cert", "", "gateway certificate (default TLS-DIR/tls.crt)")
	fs.StringVar(&o.keyFile, "key", "", "gateway key (default TLS-DIR/tls.key)")
	fs.StringVar(&o.caKeyDir, "enroll-ca-dir", env("WASMBED_GATEWAY_ENROLL_CA_DIR", ""), "directory with ca.crt and ca.key: enables POST /enroll (signing locally)")
	fs.StringVar(&o.tokens, "enroll-tokens", env("WASMBED_GATEWAY_ENROLL_TOKENS", ""), "file of '<token> <namespace>/<name> [<expiry>]' lines for POST /enroll (a token may be given as its sha256:<hex>)")
	fs.DurationVar(&o.tokenTTL, "enroll-token-ttl", gateway.DefaultTokenTTL, "life of a bootstrap token given without an expiry, from when the gateway first reads it")
	fs.StringVar(&o.stateDir, "state-dir", env("WASMBED_GATEWAY_STATE_DIR", "/var/lib/wasmbed-gateway"), "directory for desired state (and artifacts unless --artifacts)")
	fs.StringVar(&o.artifactsURL, "artifacts", env("WASMBED_ARTIFACTS", ""), "artifact store: a directory or oci://registry/repo (default STATE-DIR/artifacts)")
	fs.StringVar(&o.name, "name", env("WASMBED_GATEWAY_NAME", gateway.DefaultName), "this gateway's <namespace>/<name>")
	fs.StringVar(&o.fetchAllow, "fetch-allow", env("WASMBED_GATEWAY_FETCH_ALLOW", ""), "hosts a deployment request's moduleURL may be fetched from, besides an OCI artifact store's own registry: host, host:port, *.domain or *, separated by commas (default none)")
	fs.StringVar(&o.deploymentKey, "deployment-key", env("WASMBED_DEPLOYMENT_KEY", ""), "the platform's deployment verification key, 64 hex digits (signing.pub of `wasmbed pki keys`; required): only deployments whose manifest it signed are recorded")
	fs.StringVar(&o.sink, "sink", env("K_SINK", ""), "CloudEvents sink URL (K_SINK)")
	fs.StringVar(&o.sinkToken, "sink-token-file", env("K_SINK_TOKEN_FILE", "/var/run/secrets/wasmbed/broker/token"), "the gateway's projected service-account token for the sink's audience")
	fs.BoolVar(&o.eventAuth, "event-auth", true, "check the senders of deployment requests against the Kubernetes apiserver (TokenReview); without it the deploy API refuses every event")
	fs.StringVar(&o.registry, "registry", env("WASMBED_GATEWAY_REGISTRY", "none"), "who may connect: none (any certified device), file, or kube")
	fs.StringVar(&o.allowFile, "allow-list", "", "allow-list file for --registry=file (reloaded on SIGHUP)")
	fs.DurationVar(&o.heartbeat, "heartbeat", protocol.DefaultHeartbeatInterval, "heartbeat interval announced to devices")
	fs.DurationVar(&o.heartbeatTimeout, "heartbeat-timeout", protocol.DefaultHeartbeatTimeout, "silence after which a session closes")
	fs.IntVar(&o.maxSessions, "max-sessions", gateway.DefaultMaxSessions, "most device sessions")
	fs.IntVar(&o.maxPending, "max-pending", gateway.DefaultMaxPending, "most connections before a checked Hello (unauthenticated)")
	fs.IntVar(&o.maxPendingPerSource, "max-pending-per-source", gateway.DefaultMaxPendingPerSource, "most unauthenticated connections per source address (IPv4, IPv6 /64); 0: no limit")
	fs.Float64Var(&o.sourceRate, "source-rate", 0, "new connections per second allowed per source address (token bucket); 0: no limit")
	fs.IntVar(&o.sourceBurst, "source-burst", 20, "burst of --source-rate")
	fs.BoolVar(&o.tls12, "tls12", false, "also accept TLS 1.2 (ECDHE-ECDSA-AES-GCM over P-256 only), on the device port and --http-tls")
	fs.DurationVar(&o.seen, "seen-interval", gateway.DefaultSeenInterval, "period of device.seen events")
	fs.DurationVar(&o.summaryInterval, "summary-interval", gateway.DefaultSummaryInterval, "how long changed counts wait before their deployment.summarized event")
	fs.DurationVar(&o.summaryResync, "summary-resync", gateway.DefaultSummaryResync, "how often every deployment.summarized event is sent again (0: never)")
	fs.Var(&o.level, "log-level", "debug, info, warn, error, or a verbosity 0-10 as klog's -v (default info)")
	fs.BoolVar(&o.httpTLS, "http-tls", false, "serve the HTTP port over TLS with the gateway certificate (for /enroll outside a cluster)")
	return fs
}

func run(ctx context.Context, args []string) error {
	var o options
	fs := newFlags(&o)
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := logging.New(os.Stderr, &o.level)
	stopTracing, err := tracing.Setup(ctx, "wasmbed-gateway")
	if err != nil {
		return err
	}
	defer func() { _ = stopTracing(context.Background()) }()
	// Every session holds a descriptor: use all the process may have; New fits the
	// session limit into it.
	if _, err := gateway.RaiseFileLimit(); err != nil {
		log.Warn("file-descriptor limit", "err", err)
	}
	pick := func(v *string, file string) string {
		if *v == "" && o.tlsDir != "" {
			return filepath.Join(o.tlsDir, file)
		}
		return *v
	}
	caPath, certPath, keyPath := pick(&o.caFile, pki.CACertFile), pick(&o.certFile, "tls.crt"), pick(&o.keyFile, "tls.key")
	if caPath == "" || certPath == "" || keyPath == "" {
		return errors.New("give --tls-dir, or --ca, --cert and --key")
	}
	caPEM, err := os.ReadFile(caPath)
	if err != nil {
		return err
	}
	caCert, err := pki.ParseCertificatePEM(caPEM)
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return fmt.Errorf("gateway certificate: %w", err)
	}
	desired, err := gateway.NewDirDesired(filepath.Join(o.stateDir, "desired"))
	if err != nil {
		return err
	}
	if o.artifactsURL == "" {
		o.artifactsURL = filepath.Join(o.stateDir, "artifacts")
	}
	store, err := openStore(o.artifactsURL)
	if err != nil {
		return err
	}
	allow, err := fetchAllowList(o.fetchAllow, store)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	deploymentKey, err := pki.ParsePublicKeyHex(o.deploymentKey)
	if err != nil {
		return fmt.Errorf("--deployment-key: %w", err)
	}
	pool := pkiPool(caCert)
	cfg := gateway.NewConfig(pool, cert).WithDeploymentKey(deploymentKey).
		WithAddr(o.addr).WithName(o.name).WithTLS12(o.tls12).
		WithHeartbeat(o.heartbeat, o.heartbeatTimeout).WithMaxSessions(o.maxSessions).WithSeenInterval(o.seen).WithSummaries(o.summaryInterval, o.summaryResync).
		WithMaxPending(o.maxPending).WithMaxPendingPerSource(o.maxPendingPerSource).WithSourceRate(o.sourceRate, o.sourceBurst).
		WithDesired(desired).WithArtifacts(store).WithLogger(log).WithRegisterer(reg).
		WithFetch(artifacts.NewClientConfig().WithAllowList(allow))
	if o.eventAuth {
		ref, err := v1.ParseRef(o.name)
		if err != nil {
			return fmt.Errorf("--name: %w", err)
		}
		policy, err := eventauth.InCluster(events.GatewayAudience(ref.Namespace, ref.Name), eventauth.GatewayAllow(ref.Namespace, ref.Name))
		if err != nil {
			return fmt.Errorf("--event-auth: %w", err)
		}
		cfg = cfg.WithEventAuth(policy.WithObservability("gateway", reg, log))
	} else {
		log.Warn("--event-auth=false: the deploy API refuses every event")
	}
	var httpSink *gateway.HTTPSink
	if o.sink != "" {
		if httpSink, err = gateway.NewHTTPSink(o.sink, gateway.HTTPSinkOptions{Logger: log, Registerer: reg, Tokens: eventauth.File(o.sinkToken),
			CACerts: os.Getenv("K_CA_CERTS")}); err != nil {
			return err
		}
		cfg = cfg.WithSink(httpSink)
	} else {
		log.Warn("K_SINK is not set: events are dropped")
	}
	switch o.registry {
	case "none":
	case "file":
		allow, err := gateway.LoadAllowList(o.allowFile)
		if err != nil {
			return err
		}
		cfg = cfg.WithRegistry(allow)
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-hup:
					if err := allow.Reload(); err != nil {
						log.Error("reload allow-list", "err", err)
					} else {
						log.Info("allow-list reloaded")
					}
				}
			}
		}()
	case "kube":
		rc, err := ctrl.GetConfig()
		if err != nil {
			return fmt.Errorf("kubernetes config: %w", err)
		}
		kr, err := kube.New(rc, kube.Options{Logger: log})
		if err != nil {
			return err
		}
		cfg = cfg.WithRegistry(kr)
	default:
		return fmt.Errorf("--registry %q: want none, file or kube", o.registry)
	}
	if o.httpTLS {
		// The device port's TLS policy: TLS 1.3, or with --tls12 also TLS 1.2 (ECDHE-ECDSA,
		// AES-GCM, P-256), so a device enrolls with the TLS stack it connects with.
		apiTLS, err := pki.APITLSConfig(cert, pki.TLSOptions{AllowTLS12: o.tls12})
		if err != nil {
			return err
		}
		cfg = cfg.WithAPITLS(apiTLS)
	}
	srv, err := gateway.New(cfg)
	if err != nil {
		return err
	}
	if o.caKeyDir != "" {
		if !o.httpTLS {
			return errors.New("--enroll-ca-dir needs --http-tls: POST /enroll is served over TLS only, a bootstrap token sent in the clear can be replayed")
		}
		t, err := enableEnrollment(srv, o.caKeyDir, o.tokens, o.stateDir, o.tokenTTL, log)
		if err != nil {
			return err
		}
		defer t.Close()
	}
	var listeners []net.Listener
	listen := func(addr string) (net.Listener, error) {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		listeners = append(listeners, l)
		return l, nil
	}
	l, err := listen(o.addr)
	if err != nil {
		return err
	}
	apiL, err := listen(o.httpAddr)
	if err != nil {
		return err
	}
	opsL, err := listen(o.opsAddr)
	if err != nil {
		return err
	}
	errc := make(chan error, 3)
	go func() { errc <- srv.Serve(l) }()
	go func() { errc <- srv.ServeAPI(apiL) }()
	go func() { errc <- srv.ServeOps(opsL) }()
	lim := srv.Limits()
	log.Info("gateway serving", "name", o.name, "addr", l.Addr().String(), "http_addr", apiL.Addr().String(), "ops_addr", opsL.Addr().String(),
		"registry", o.registry, "fetch_allow", allow.String(), "rlimit_nofile", lim.FileLimit, "max_sessions", lim.MaxSessions, "max_pending", lim.MaxPending)
	select {
	case <-ctx.Done():
	case err := <-errc:
		log.Error("server stopped", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if httpSink != nil {
		_ = httpSink.Close(sctx)
	}
	return err
}

func openStore(url string) (artifacts.Store, error) {
	if strings.Contains(url, "://") {
		return artifacts.NewFromURL(url, artifacts.NewClientConfig())
	}
	return artifacts.NewDir(url)
}

// fetchAllowList is the allow-list of moduleURL fetches: the entries of flag, and the
// registry of an OCI artifact store, which the gateway reads anyway.
func fetchAllowList(flag string, store artifacts.Store) (artifacts.AllowList, error) {
	allow, err := artifacts.ParseAllowList(flag)
	if err != nil {
		return allow, fmt.Errorf("--fetch-allow: %w", err)
	}
	if oci, ok := store.(*artifacts.OCI); ok {
		if allow, err = allow.Add(oci.Registry()); err != nil {
			return allow, fmt.Errorf("artifact store registry: %w", err)
		}
	}
	return allow, nil
}
