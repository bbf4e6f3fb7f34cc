// Command console runs the Wasmbed web console: the UI, its REST API over the
// Kubernetes API, the /api/v1/stream of live changes, and a CloudEvents receiver on
// POST /. Every Kubernetes call carries the browser user's bearer token: the console's
// own credentials only locate the apiserver. docs/console.md describes it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/internal/eventauth"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client/config"

	"github.com/wasmbed/wasmbed/console"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "console:", err)
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
	fs := flag.NewFlagSet("console", flag.ContinueOnError)
	addr := fs.String("addr", env("WASMBED_CONSOLE_ADDR", ":"+env("PORT", "8080")), "listen address (UI, API, CloudEvents on POST /)")
	gatewayURL := fs.String("gateway-url", env("WASMBED_CONSOLE_GATEWAY_URL", "http://{name}-http.{namespace}.svc:8080"),
		"a gateway's HTTP side, with {namespace} and {name} of the Gateway replaced")
	verbose := fs.Bool("v", false, "debug logs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	// KUBECONFIG or the in-cluster config: used only for the apiserver's address and CA.
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubernetes config: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	tmpl := *gatewayURL
	// Events reach the console from its Triggers only, checked against the apiserver.
	auth, err := eventauth.InCluster(events.ReceiverAudience("console"), eventauth.ReceiverAllow("console"))
	if err != nil {
		return err
	}
	srv, err := console.New(console.Config{
		REST: cfg, Logger: log, Registerer: reg, Gatherer: reg, EventAuth: auth.WithObservability("console", reg, log),
		GatewayURL: func(gw v1.Ref) string {
			return strings.NewReplacer("{namespace}", gw.Namespace, "{name}", gw.Name).Replace(tmpl)
		},
	})
	if err != nil {
		return err
	}
	return srv.ListenAndServe(ctx, *addr, func(a net.Addr) { log.Info("console listening", "addr", a.String()) })
}
