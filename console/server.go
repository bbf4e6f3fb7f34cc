package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wasmbed/wasmbed/internal/eventauth"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
)

// Defaults of the console.
const (
	// DefaultPort is the console's port in `make run` (http://127.0.0.1:18000).
	DefaultPort = 18000
	// DefaultClientBuffer is how many messages a stream client may fall behind before it
	// is dropped.
	DefaultClientBuffer = 256
	// DefaultRequestTimeout bounds one REST call to the apiserver.
	DefaultRequestTimeout = 30 * time.Second
	// maxUploadBytes bounds a request body: a ConfigMap holds at most 1 MiB, and the
	// module travels base64-encoded in JSON.
	maxUploadBytes = 2 << 20
	// keepAlive is the period of SSE comments that keep idle streams open through proxies.
	keepAlive = 15 * time.Second
	// writeTimeout bounds one write to a stream client.
	writeTimeout = 10 * time.Second
)

// Config configures a Server.
type Config struct {
	// EventAuth says who may send events to the console's ingress (POST /): the
	// Triggers of its subscriptions (eventauth.ReceiverAllow of "console"). Without it
	// every event is refused.
	EventAuth *eventauth.Policy
	// REST locates the apiserver (host and CA). Its credentials are never used for
	// requests: each one carries the user's bearer token.
	REST *rest.Config
	// GatewayURL returns the base URL of a gateway's HTTP side ("http://host:port"),
	// or "" when it has none. Default: the in-cluster Service
	// http://<name>-http.<namespace>.svc:8080 the operator creates.
	GatewayURL func(gateway v1.Ref) string
	// ClientBuffer is the per-client stream buffer (default DefaultClientBuffer).
	ClientBuffer int
	// Logger receives the console's logs (default: discarded).
	Logger *slog.Logger
	// Registerer receives the console's metrics; nil uses a private registry. /metrics
	// serves Gatherer when set, else the private registry.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
}

// Server is the console: an http.Handler serving the UI, the REST API, the stream and
// the CloudEvents receiver. Close stops its streams.
type Server struct {
	cfg    Config
	log    *slog.Logger
	scheme *runtime.Scheme
	mapper meta.RESTMapper
	hub    *hub
	m      metrics
	mux    *http.ServeMux
	gw     *http.Client
}

type metrics struct {
	requests *prometheus.CounterVec
	clients  prometheus.Gauge
	dropped  prometheus.Counter
	events   *prometheus.CounterVec
}

// New returns a console server.
func New(cfg Config) (*Server, error) {
	if cfg.REST == nil || cfg.REST.Host == "" {
		return nil, errors.New("console: a rest config with the apiserver's host is required")
	}
	if cfg.GatewayURL == nil {
		cfg.GatewayURL = clusterGatewayURL
	}
	if cfg.ClientBuffer <= 0 {
		cfg.ClientBuffer = DefaultClientBuffer
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registerer == nil {
		reg := prometheus.NewRegistry()
		cfg.Registerer, cfg.Gatherer = reg, reg
	}
	scheme, err := newScheme()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, scheme: scheme, mapper: newMapper(),
		gw: &http.Client{Timeout: 10 * time.Second}}
	s.m = metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmbed_console_requests_total", Help: "API requests, by route and HTTP status.",
		}, []string{"route", "code"}),
		clients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wasmbed_console_stream_clients", Help: "Connected /api/v1/stream clients.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wasmbed_console_stream_dropped_total", Help: "Stream clients dropped for falling behind.",
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmbed_console_cloudevents_total", Help: "CloudEvents received, by type.",
		}, []string{"type"}),
	}
	for _, c := range []prometheus.Collector{s.m.requests, s.m.clients, s.m.dropped, s.m.events} {
		if err := cfg.Registerer.Register(c); err != nil {
			return nil, fmt.Errorf("console: register metrics: %w", err)
		}
	}
	s.hub = newHub(s.m.dropped)
	s.routes()
	return s, nil
}

// clusterGatewayURL is the gateway's HTTP Service in a cluster.
func clusterGatewayURL(gateway v1.Ref) string {
	return "http://" + gateway.Name + "-http." + gateway.Namespace + ".svc:8080"
}

// ServeHTTP serves the console.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close disconnects every stream client. The server keeps answering REST calls.
func (s *Server) Close() { s.hub.close() }

func (s *Server) routes() {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) }
	mux.HandleFunc("GET /healthz", ok)
	mux.HandleFunc("GET /readyz", ok)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("POST /{$}", s.receiveEvent)
	mux.HandleFunc("GET /api/v1/openapi.yaml", serveOpenAPI)

	api := func(pattern string, h func(http.ResponseWriter, *http.Request) error) {
		route := pattern[strings.Index(pattern, " ")+1:]
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
			if err := h(rec, r); err != nil {
				s.writeError(rec, r, err)
			}
			s.m.requests.WithLabelValues(route, strconv.Itoa(rec.code)).Inc()
		})
	}
	api("GET /api/v1/whoami", s.whoami)
	api("GET /api/v1/namespaces", s.listNamespaces)
	api("GET /api/v1/events", s.listRecentEvents)
	for _, k := range kinds {
		api("GET /api/v1/"+k.plural, s.list(k))
		api("GET /api/v1/namespaces/{namespace}/"+k.plural, s.list(k))
		api("GET /api/v1/namespaces/{namespace}/"+k.plural+"/{name}", s.get(k))
		api("GET /api/v1/namespaces/{namespace}/"+k.plural+"/{name}/events", s.objectEvents(k))
	}
	api("POST /api/v1/namespaces/{namespace}/applications", s.createApplication)
	api("PUT /api/v1/namespaces/{namespace}/applications/{name}", s.updateApplication)
	api("DELETE /api/v1/namespaces/{namespace}/applications/{name}", s.deleteApplication)
	api("POST /api/v1/namespaces/{namespace}/applications/{name}/rollout/{action}", s.rolloutAction)
	api("GET /api/v1/namespaces/{namespace}/devices/{name}/log", s.deviceLog)
	mux.HandleFunc("GET /api/v1/stream", s.stream)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, Error{Error: "no such api", Detail: r.Method + " " + r.URL.Path + " is not part of the console API (see /api/v1/openapi.yaml)"})
	})
	mux.Handle("/", webHandler())
	s.mux = mux
}

// statusRecorder remembers the status code written, for metrics.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// ListenAndServe serves the console on addr until ctx is cancelled, then shuts down
// within 5 s. ready, if not nil, is called with the listener's address.
func (s *Server) ListenAndServe(ctx context.Context, addr string, ready func(net.Addr)) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	return s.Serve(ctx, l, ready)
}

// Serve serves the console on l until ctx is cancelled.
func (s *Server) Serve(ctx context.Context, l net.Listener, ready func(net.Addr)) error {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	if ready != nil {
		ready(l.Addr())
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
		case <-stop: // Serve failed on its own
			return
		}
		s.Close() // streams end, so Shutdown need not wait for them
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err := srv.Serve(l)
	close(stop)
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
