// Package operator assembles the Wasmbed operator: a controller-runtime manager with the
// Application, Device and Gateway reconcilers, and the CloudEvents receiver that turns
// pipeline and gateway events into status. cmd/operator and `wasmbed dev` both run it.
package operator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/wasmbed/wasmbed/internal/eventauth"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	flowsv1 "knative.dev/eventing/pkg/apis/flows/v1"
	messagingv1 "knative.dev/eventing/pkg/apis/messaging/v1"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/eventserver"
	"github.com/wasmbed/wasmbed/operator/application"
	devicectl "github.com/wasmbed/wasmbed/operator/device"
	gatewayctl "github.com/wasmbed/wasmbed/operator/gateway"
	"github.com/wasmbed/wasmbed/operator/receiver"
	"github.com/wasmbed/wasmbed/operator/steps"
)

// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// Options configure the operator.
type Options struct {
	// Config reaches the apiserver.
	Config *rest.Config
	// Sender delivers build and rollout requests to the broker.
	Sender application.Sender
	// EventsAddr is where the CloudEvents receiver listens (the Trigger subscriber), e.g. ":8080".
	EventsAddr string
	// Auth says who may send which events to the receiver (eventauth.ReceiverAllow of
	// "operator"); the dead-letter endpoint admits any sender it authenticates, the
	// steps-done one only the Sequence of the Application an event names. Without it
	// every event is refused.
	Auth *eventauth.Policy
	// MetricsAddr serves Prometheus metrics over HTTPS, to callers the apiserver
	// authenticates (TokenReview) and authorizes for GET /metrics (SubjectAccessReview);
	// HealthAddr serves /healthz and /readyz. "0" turns either off.
	MetricsAddr, HealthAddr string
	// MetricsCertDir holds tls.crt and tls.key for the metrics server, reloaded when they
	// change; empty: a self-signed certificate made in memory at start.
	MetricsCertDir string
	// LeaderElection makes only one replica reconcile at a time.
	LeaderElection bool
	// LeaderElectionNamespace holds the lease (default: the pod's namespace).
	LeaderElectionNamespace string
	// Resync is how often rollouts in progress are looked at without a change.
	Resync time.Duration
	// Now is the Application reconciler's clock (default time.Now; tests move it).
	Now func() time.Time
	// SeenInterval is how stale a device's lastSeen may get (default 5 minutes).
	SeenInterval time.Duration
	// StatusQPS bounds the Device status writes per second (default
	// receiver.DefaultStatusQPS): rollouts count from the gateways' summaries, so these
	// writes only bring each Device's own status up to date.
	StatusQPS float64
	// Steps, in a cluster, runs Applications' spec.steps as Knative Sequences; StepRunner
	// runs them in-process instead (the embedded platform). One of them, or neither when
	// steps need not be supported.
	Steps      *steps.ClusterOptions
	StepRunner receiver.StepRunner
	// Setup registers further reconcilers (Device, Gateway) on the manager.
	Setup []func(ctrl.Manager) error
	// Logger is the operator's logger.
	Logger logr.Logger
	// SkipNameValidation allows several operators in one process (tests).
	SkipNameValidation bool
	// Ready, if set, is called with the receiver's address once it listens.
	Ready func(eventsAddr net.Addr)
}

// NewScheme returns the scheme the operator works with.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	for _, add := range []func(*runtime.Scheme) error{v1.AddToScheme, eventingv1.AddToScheme, flowsv1.AddToScheme, messagingv1.AddToScheme} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Run runs the operator until ctx is cancelled.
func Run(ctx context.Context, o Options) error {
	if o.Config == nil || o.Sender == nil {
		return errors.New("operator: a rest config and an event sender are required")
	}
	scheme, err := NewScheme()
	if err != nil {
		return fmt.Errorf("operator: scheme: %w", err)
	}
	ctrl.SetLogger(o.Logger)
	// The cache holds only what the operator acts on: CertificateSigningRequests of its
	// signer and the objects it made for Gateways, not every one of the cluster.
	byObject := devicectl.CacheByObject()
	maps.Copy(byObject, gatewayctl.CacheByObject())
	mgr, err := ctrl.NewManager(o.Config, ctrl.Options{
		Scheme: scheme,
		Logger: o.Logger,
		Cache:  cache.Options{ByObject: byObject},
		Metrics: metricsserver.Options{
			BindAddress:    o.MetricsAddr,
			SecureServing:  true,
			FilterProvider: filters.WithAuthenticationAndAuthorization,
			CertDir:        o.MetricsCertDir,
		},
		HealthProbeBindAddress:  o.HealthAddr,
		LeaderElection:          o.LeaderElection,
		LeaderElectionID:        "wasmbed-operator.wasmbed.dev",
		LeaderElectionNamespace: o.LeaderElectionNamespace,
		Controller:              ctrlconfig.Controller{SkipNameValidation: &o.SkipNameValidation},
	})
	if err != nil {
		return fmt.Errorf("operator: manager: %w", err)
	}
	if err := application.SetupWithManager(mgr, application.Options{Sender: o.Sender, Resync: o.Resync, Now: o.Now, Steps: o.Steps}); err != nil {
		return fmt.Errorf("operator: %w", err)
	}
	for _, setup := range o.Setup {
		if err := setup(mgr); err != nil {
			return fmt.Errorf("operator: %w", err)
		}
	}
	var serving atomic.Bool
	if o.HealthAddr != "0" {
		if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
			return err
		}
		// Ready means serving: the receiver answers the broker only once the cache is in
		// sync, and the broker must not send events here before.
		if err := mgr.AddReadyzCheck("events-receiver", func(*http.Request) error {
			if !serving.Load() {
				return errors.New("the events receiver is not serving yet: waiting for the cache to sync")
			}
			return nil
		}); err != nil {
			return err
		}
	}

	// The receiver reads straight from the apiserver, so a retry after a conflict sees the
	// latest object, and serves once the manager's cache is in sync.
	writer := receiver.NewStatusWriter(mgr.GetClient(), mgr.GetAPIReader(), o.StatusQPS, slogFrom(o.Logger).With("component", "device-status"))
	rcv := &receiver.Receiver{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), SeenInterval: o.SeenInterval, Steps: o.StepRunner, Writer: writer}
	mux := http.NewServeMux()
	mux.Handle("/", eventserver.NewHTTPHandler("operator", rcv, eventserver.Options{Logger: slogFrom(o.Logger), Auth: o.Auth}))
	mux.Handle("POST /dead-letters", authenticated(o.Auth, deadLetters(slogFrom(o.Logger))))
	mux.Handle("POST /steps-done", steps.DoneHandler(o.Sender, mgr.GetAPIReader(), o.Auth))
	handler := mux
	l, err := net.Listen("tcp", o.EventsAddr)
	if err != nil {
		return fmt.Errorf("operator: listen %s: %w", o.EventsAddr, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	if err := mgr.Add(runnable(func(ctx context.Context) error {
		// The receiver reads Applications and Devices from the cache: wait until their
		// informers hold the cluster's state (controllers start theirs concurrently, so
		// WaitForCacheSync alone may see none yet).
		for _, obj := range []client.Object{&v1.Application{}, &v1.Device{}} {
			if _, err := mgr.GetCache().GetInformer(ctx, obj, cache.BlockUntilSynced(true)); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("operator: cache of %T: %w", obj, err)
			}
		}
		if !mgr.GetCache().WaitForCacheSync(ctx) {
			return errors.New("operator: cache did not sync")
		}
		// Device status writes go on after the server stops, to drain what it queued.
		wctx, stopWriter := context.WithCancel(context.Background())
		writerDone := make(chan struct{})
		go func() {
			defer close(writerDone)
			writer.Run(wctx, statusWorkers, 10*time.Second)
		}()
		defer func() {
			stopWriter()
			<-writerDone
		}()
		if o.Ready != nil {
			o.Ready(l.Addr())
		}
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(l) }()
		serving.Store(true)
		defer serving.Store(false)
		select {
		case err := <-errc:
			return fmt.Errorf("operator: events server: %w", err)
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		}
	})); err != nil {
		l.Close()
		return err
	}
	return mgr.Start(ctx)
}

// statusWorkers is how many Device status writes run at once.
const statusWorkers = 8

// runnable adapts a function to a manager Runnable that runs on every replica (the
// receiver must answer the broker even on replicas that are not the leader).
type runnable func(context.Context) error

func (r runnable) Start(ctx context.Context) error { return r(ctx) }

// NeedLeaderElection reports false: every replica serves events.
func (r runnable) NeedLeaderElection() bool { return false }

// authenticated serves h only to senders p authenticates.
func authenticated(p *eventauth.Policy, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := eventauth.Admit(p, w, r); ok {
			h.ServeHTTP(w, r)
		}
	})
}
