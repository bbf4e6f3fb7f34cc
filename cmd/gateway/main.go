// Command gateway runs the Wasmbed gateway: device mTLS sessions on --addr, and on
// --http-addr the deploy API (deployment.requested CloudEvents), /healthz, /readyz,
// /metrics and device logs. Events go to $K_SINK. docs/gateway.md describes it.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/wasmbed/wasmbed/api/events"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/eventauth"

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

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	addr := fs.String("addr", env("WASMBED_GATEWAY_ADDR", gateway.DefaultAddr), "device (mTLS) listen address")
	httpAddr := fs.String("http-addr", env("WASMBED_GATEWAY_HTTP_ADDR", ":8080"), "deploy API, health and metrics listen address (plain HTTP)")
	tlsDir := fs.String("tls-dir", env("WASMBED_GATEWAY_TLS_DIR", ""), "directory with tls.crt, tls.key and ca.crt (the output of `wasmbed pki gateway`)")
	caFile := fs.String("ca", "", "platform CA certificate (default TLS-DIR/ca.crt)")
	certFile := fs.String("cert", "", "gateway certificate (default TLS-DIR/tls.crt)")
	keyFile := fs.String("key", "", "gateway key (default TLS-DIR/tls.key)")
	caKeyDir := fs.String("enroll-ca-dir", env("WASMBED_GATEWAY_ENROLL_CA_DIR", ""), "directory with ca.crt and ca.key: enables POST /enroll (signing locally)")
	tokens := fs.String("enroll-tokens", env("WASMBED_GATEWAY_ENROLL_TOKENS", ""), "file of '<token> <namespace>/<name> [<expiry>]' lines for POST /enroll (a token may be given as its sha256:<hex>)")
	tokenTTL := fs.Duration("enroll-token-ttl", gateway.DefaultTokenTTL, "life of a bootstrap token given without an expiry, from when the gateway first reads it")
	stateDir := fs.String("state-dir", env("WASMBED_GATEWAY_STATE_DIR", "/var/lib/wasmbed-gateway"), "directory for desired state (and artifacts unless --artifacts)")
	artifactsURL := fs.String("artifacts", env("WASMBED_ARTIFACTS", ""), "artifact store: a directory or oci://registry/repo (default STATE-DIR/artifacts)")
	name := fs.String("name", env("WASMBED_GATEWAY_NAME", gateway.DefaultName), "this gateway's <namespace>/<name>")
	sink := fs.String("sink", env("K_SINK", ""), "CloudEvents sink URL (K_SINK)")
	sinkToken := fs.String("sink-token-file", env("K_SINK_TOKEN_FILE", "/var/run/secrets/wasmbed/broker/token"), "the gateway's projected service-account token for the sink's audience")
	eventAuth := fs.Bool("event-auth", true, "check the senders of deployment requests against the Kubernetes apiserver (TokenReview); without it the deploy API refuses every event")
	registry := fs.String("registry", env("WASMBED_GATEWAY_REGISTRY", "none"), "who may connect: none (any certified device), file, or kube")
	allowFile := fs.String("allow-list", "", "allow-list file for --registry=file (reloaded on SIGHUP)")
	heartbeat := fs.Duration("heartbeat", protocol.DefaultHeartbeatInterval, "heartbeat interval announced to devices")
	heartbeatTimeout := fs.Duration("heartbeat-timeout", protocol.DefaultHeartbeatTimeout, "silence after which a session closes")
	maxSessions := fs.Int("max-sessions", gateway.DefaultMaxSessions, "most device sessions")
	tls12 := fs.Bool("tls12", false, "also accept TLS 1.2 (ECDHE-ECDSA-AES-GCM only)")
	seen := fs.Duration("seen-interval", gateway.DefaultSeenInterval, "period of device.seen events")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	httpTLS := fs.Bool("http-tls", false, "serve the HTTP port over TLS with the gateway certificate (for /enroll outside a cluster)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	pick := func(v *string, file string) string {
		if *v == "" && *tlsDir != "" {
			return filepath.Join(*tlsDir, file)
		}
		return *v
	}
	caPath, certPath, keyPath := pick(caFile, pki.CACertFile), pick(certFile, "tls.crt"), pick(keyFile, "tls.key")
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
	desired, err := gateway.NewDirDesired(filepath.Join(*stateDir, "desired"))
	if err != nil {
		return err
	}
	if *artifactsURL == "" {
		*artifactsURL = filepath.Join(*stateDir, "artifacts")
	}
	store, err := openStore(*artifactsURL)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	pool := pkiPool(caCert)
	cfg := gateway.NewConfig(pool, cert).
		WithAddr(*addr).WithName(*name).WithTLS12(*tls12).
		WithHeartbeat(*heartbeat, *heartbeatTimeout).WithMaxSessions(*maxSessions).WithSeenInterval(*seen).
		WithDesired(desired).WithArtifacts(store).WithLogger(log).WithRegisterer(reg)
	if *eventAuth {
		ref, err := v1.ParseRef(*name)
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
	if *sink != "" {
		if httpSink, err = gateway.NewHTTPSink(*sink, gateway.HTTPSinkOptions{Logger: log, Registerer: reg, Tokens: eventauth.File(*sinkToken)}); err != nil {
			return err
		}
		cfg = cfg.WithSink(httpSink)
	} else {
		log.Warn("K_SINK is not set: events are dropped")
	}
	switch *registry {
	case "none":
	case "file":
		allow, err := gateway.LoadAllowList(*allowFile)
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
		return fmt.Errorf("--registry %q: want none, file or kube", *registry)
	}
	srv, err := gateway.New(cfg)
	if err != nil {
		return err
	}
	if *caKeyDir != "" {
		if !*httpTLS {
			return errors.New("--enroll-ca-dir needs --http-tls: POST /enroll is served over TLS only, a bootstrap token sent in the clear can be replayed")
		}
		t, err := enableEnrollment(srv, *caKeyDir, *tokens, *stateDir, *tokenTTL, log)
		if err != nil {
			return err
		}
		defer t.Close()
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", *addr, err)
	}
	hs := &http.Server{Addr: *httpAddr, Handler: srv.HTTPHandler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(l) }()
	go func() {
		if *httpTLS {
			hs.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
			errc <- hs.ListenAndServeTLS("", "")
			return
		}
		errc <- hs.ListenAndServe()
	}()
	log.Info("gateway serving", "name", *name, "addr", l.Addr().String(), "http_addr", *httpAddr, "registry", *registry)
	select {
	case <-ctx.Done():
	case err := <-errc:
		log.Error("server stopped", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
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
