package eventserver

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/internal/eventauth"
	"github.com/wasmbed/wasmbed/internal/logging"
	"github.com/wasmbed/wasmbed/internal/tracing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Main is the whole main function of a function binary: JSON logs (level from
// $LOG_LEVEL), metrics, $PORT,
// graceful stop on SIGTERM, and sender authentication: the Triggers of the function's
// subscriptions (events.Subscriptions[name]) may send it their event types, with tokens
// for events.ReceiverAudience(name), checked against the cluster's apiserver.
// newHandler builds the function from its environment.
func Main(name string, newHandler func(*slog.Logger) (Handler, error)) {
	var level logging.Level
	if v := os.Getenv("LOG_LEVEL"); v != "" {
		if err := level.Set(v); err != nil {
			slog.Error("configure", "function", name, "err", fmt.Errorf("LOG_LEVEL: %w", err))
			os.Exit(1)
		}
	}
	log := logging.New(os.Stderr, &level).With("function", name)
	// Traces go where the OTEL_* variables say (none by default); the trace context
	// rides on the events either way.
	stopTracing, err := tracing.Setup(context.Background(), "wasmbed-"+name)
	if err != nil {
		log.Error("configure tracing", "err", err)
		os.Exit(1)
	}
	defer func() { _ = stopTracing(context.Background()) }()
	h, err := newHandler(log)
	if err != nil {
		log.Error("configure", "err", err)
		os.Exit(1)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	auth, err := eventauth.InCluster(events.ReceiverAudience(name), eventauth.ReceiverAllow(name))
	if err != nil {
		log.Error("configure sender authentication", "err", err)
		os.Exit(1)
	}
	auth.WithObservability(name, reg, log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	handler := NewHTTPHandler(name, h, Options{Logger: log, Registerer: reg, Gatherer: reg, Auth: auth})
	err = ListenAndServe(ctx, Addr(), handler, func(a net.Addr) { log.Info("serving", "addr", a.String()) })
	if err != nil {
		log.Error("serve", "err", err)
		os.Exit(1)
	}
}
