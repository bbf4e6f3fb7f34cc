package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/api/protocol"
	"github.com/wasmbed/wasmbed/internal/artifacts"
	"github.com/wasmbed/wasmbed/internal/eventserver"
	"github.com/wasmbed/wasmbed/internal/pki"
	"github.com/wasmbed/wasmbed/internal/tracing"
)

// APIHandler serves the deploy API: POST / takes dev.wasmbed.deployment.requested
// CloudEvents (binary or structured), GET /devices/{namespace}/{name}/log returns a
// device's last log lines, and POST /enroll enrolls a device when an Enroller is set.
// ServeAPI serves it with the gateway's HTTP timeouts.
func (s *Server) APIHandler() http.Handler { return s.apiHandler }

// OpsHandler serves GET /healthz, /readyz (ready once Serve runs) and /metrics (when
// the Registerer is also a Gatherer). ServeOps serves it with the gateway's HTTP
// timeouts.
func (s *Server) OpsHandler() http.Handler { return s.opsHandler }

func (s *Server) newAPIHandler() http.Handler {
	t := s.cfg.httpTimeouts
	fn := eventserver.NewHTTPHandler("gateway", eventserver.HandlerFunc(s.Handle), eventserver.Options{
		// The handler gives up before the server's write deadline cuts the response.
		Logger: s.log, Registerer: s.cfg.registerer, Timeout: t.Write * 3 / 4, Auth: s.cfg.eventAuth,
	})
	mux := http.NewServeMux()
	mux.Handle("POST /{$}", fn)
	mux.HandleFunc("GET /devices/{namespace}/{name}/log", s.serveLog)
	mux.HandleFunc("POST /enroll", s.serveEnrollment)
	return mux
}

func (s *Server) newOpsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-s.ready:
			_, _ = w.Write([]byte("ok\n"))
		default:
			http.Error(w, "not serving devices yet", http.StatusServiceUnavailable)
		}
	})
	if g, ok := s.cfg.registerer.(prometheus.Gatherer); ok {
		mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	}
	return mux
}

// Handle takes a dev.wasmbed.deployment.requested event: it records the desired state
// durably, then delivers to the devices that are connected (the others get it when
// they connect) and returns no reply (202). Contract violations are 4xx, failures of
// the store 5xx, so the broker retries only what can succeed later.
func (s *Server) Handle(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	d, err := events.DecodeAs[*events.DeploymentRequestedData](e, events.DeploymentRequested)
	if err != nil {
		s.m.deployRequests.WithLabelValues("rejected").Inc()
		return nil, err
	}
	app, err := s.accept(ctx, d)
	if err != nil {
		result := "error"
		if eventserver.StatusOf(err) < 500 {
			result = "rejected"
		}
		s.m.deployRequests.WithLabelValues(result).Inc()
		return nil, err
	}
	s.m.deployRequests.WithLabelValues("accepted").Inc()
	s.deliver(ctx, app, d.Devices)
	return nil, nil
}

// accept checks a request, makes sure the module is at hand and records the desired
// state.
func (s *Server) accept(ctx context.Context, d *events.DeploymentRequestedData) (DesiredApp, error) {
	if d.Gateway != s.ref {
		return DesiredApp{}, eventserver.Permanent(fmt.Errorf("request is for gateway %s, this is %s", d.Gateway, s.cfg.name))
	}
	app := DesiredApp{
		TraceParent: tracing.TraceParent(ctx),
		Namespace:   d.Application.Namespace, Name: d.Application.Name, Generation: d.Application.Generation,
		Digest: d.Digest, Size: d.Size, Config: d.Config, Manifest: d.Manifest, Signature: d.Signature, Remove: d.Remove,
		UID: d.Application.UID, Rollback: d.Rollback,
	}
	if err := s.checkManifest(d); err != nil {
		s.cfg.logger.Warn("deployment request refused", "application", app.Subject(), "reason", err)
		return DesiredApp{}, eventserver.Permanent(err)
	}
	for _, dev := range d.Devices {
		// Devices are names in the Application's namespace; a device of another
		// namespace can never be named, which is the tenancy rule.
		if _, err := pki.NewIdentity(app.Namespace, dev); err != nil {
			return DesiredApp{}, eventserver.Permanent(fmt.Errorf("device %q: %w", dev, err))
		}
	}
	if !d.Remove {
		mod, err := s.modules.get(ctx, d.Digest)
		if errors.Is(err, errNoModule) && d.ModuleURL != "" {
			// Only from the hosts of the gateway's allow-list, through the same guard
			// as the compile function's fetches; the error quotes no server's answer.
			data, _, ferr := artifacts.Fetch(ctx, d.ModuleURL, d.Digest, s.cfg.fetch)
			switch {
			case errors.Is(ferr, artifacts.ErrRefused), errors.Is(ferr, artifacts.ErrNotFound), errors.Is(ferr, artifacts.ErrDigestMismatch):
				return DesiredApp{}, eventserver.Permanent(fmt.Errorf("moduleURL: %w", ferr))
			case ferr != nil:
				return DesiredApp{}, fmt.Errorf("moduleURL: %w", ferr)
			}
			if s.cfg.store != nil {
				if _, perr := s.cfg.store.Put(ctx, data); perr != nil {
					return DesiredApp{}, fmt.Errorf("store module: %w", perr)
				}
			}
			mod, err = s.modules.add(d.Digest, data)
		}
		switch {
		case errors.Is(err, errNoModule):
			return DesiredApp{}, eventserver.Permanent(err)
		case err != nil:
			return DesiredApp{}, err
		case d.Size != 0 && int64(len(mod.data)) != d.Size:
			return DesiredApp{}, eventserver.Permanent(fmt.Errorf("size is %d, the module has %d bytes", d.Size, len(mod.data)))
		}
		// A size of 0 means the sender did not know it (a rollback names only the
		// digest): the module in the store says.
		app.Size = int64(len(mod.data))
	}
	if err := s.desired.Apply(ctx, app, d.Devices); err != nil {
		return DesiredApp{}, fmt.Errorf("record desired state: %w", err)
	}
	s.sum.touch(app.Namespace, app.Name)
	return app, nil
}

// deliver applies app to the connected devices among devices.
func (s *Server) deliver(ctx context.Context, app DesiredApp, devices []string) {
	s.mu.Lock()
	targets := make([]*session, 0, min(len(devices), len(s.sessions)))
	for _, dev := range devices {
		if ss := s.sessions[pki.Identity{Namespace: app.Namespace, Name: dev}]; ss != nil {
			targets = append(targets, ss)
		}
	}
	s.mu.Unlock()
	for _, ss := range targets {
		ss.apply(ctx, app, true)
	}
}

// checkManifest verifies, when the gateway holds the deployment key, that the platform
// signed this very request: a module for a device is recorded only under a manifest
// that names it. Removals carry none: they put no code on a device.
func (s *Server) checkManifest(d *events.DeploymentRequestedData) error {
	if s.cfg.deploymentKey == nil || d.Remove {
		return nil
	}
	m, err := protocol.VerifyManifest(s.cfg.deploymentKey, d.Manifest, d.Signature)
	if err != nil {
		return fmt.Errorf("deployment of %s: %w", d.Application.Subject(), err)
	}
	if err := m.Matches(d.Application.Namespace, d.Application.Name, d.Digest.Bytes(), d.Config); err != nil {
		return fmt.Errorf("deployment of %s: %w", d.Application.Subject(), err)
	}
	if m.UID != d.Application.UID || m.Generation != uint64(max(d.Application.Generation, 0)) {
		return fmt.Errorf("deployment of %s: %w: it is for uid %s generation %d, the request for uid %s generation %d",
			d.Application.Subject(), protocol.ErrManifestMismatch, m.UID, m.Generation, d.Application.UID, d.Application.Generation)
	}
	return nil
}

// serveEnrollment is POST /enroll: the Enroller's, or 404 while none is set.
func (s *Server) serveEnrollment(w http.ResponseWriter, r *http.Request) {
	if e := s.enroller(); e != nil {
		e.ServeHTTP(w, r)
		return
	}
	http.Error(w, "enrollment is not enabled on this gateway", http.StatusNotFound)
}
