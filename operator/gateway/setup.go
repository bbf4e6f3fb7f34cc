// Package gateway is the Gateway reconciler. In cluster mode it runs each Gateway as a
// Deployment, a Service devices connect through (spec.serviceType), a ClusterIP Service
// for the gateway's plain-HTTP side, and a Knative Trigger that delivers the gateway's
// dev.wasmbed.deployment.requested events to it. The gateway checks every device
// against its Device (`--registry=kube`), so its pods run as a ServiceAccount of their
// own, bound by a ClusterRoleBinding to the ClusterRole that reads Devices; the
// binding is cluster-scoped and cannot be owned by the Gateway, so a finalizer removes
// it when the Gateway goes. In embedded mode (`make run`, no
// kubelet) the gateway runs in the operator's process and only the status is kept.
// Either way the status carries the endpoint devices connect to and how many devices
// are connected, counted from Device status without watching Devices.
package gateway

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/pkg/apis"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/wasmbed/wasmbed/api/events"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/pki"
)

// Mode says where gateways run.
type Mode string

const (
	// ModeCluster runs every Gateway as its own Deployment, Services and Trigger.
	ModeCluster Mode = "cluster"
	// ModeEmbedded has one gateway inside the operator's process, at Options.Endpoint.
	ModeEmbedded Mode = "embedded"
)

// Defaults of Options.
const (
	DefaultBroker        = "wasmbed"
	DefaultResync        = time.Minute
	DefaultClusterDomain = "cluster.local"
	DefaultClusterRole   = "wasmbed-gateway"
	// HTTPPort is the port of the gateway's deploy API: deployment.requested
	// CloudEvents and device logs.
	HTTPPort = 8080
	// OpsPort is the port of the gateway's /healthz, /readyz and /metrics.
	OpsPort = 9090
)

// Options configure the Gateway reconciler.
type Options struct {
	// Mode is ModeCluster (default) or ModeEmbedded.
	Mode Mode

	// Image is the gateway container image (cluster mode, required).
	Image string
	// BrokerURL is where gateways send events, given to them as K_SINK (cluster mode,
	// required).
	BrokerURL string
	// Broker is the name of the Broker, in each Gateway's namespace, that the
	// gateway's Trigger subscribes to (default "wasmbed").
	Broker string
	// DeploymentKey is the platform's deployment verification key, hex (`wasmbed pki
	// keys`' signing.pub): every gateway gets it and records only deployments whose
	// manifest it signed (cluster mode, required).
	DeploymentKey string
	// BrokerNamespace is the namespace of the Broker gateways send their events to
	// (BrokerURL's), where each Gateway gets an EventPolicy admitting its events
	// (default events.SystemNamespace).
	BrokerNamespace string
	// DeadLetterSink is a URL that receives deployment requests the gateway could not
	// take after the retries; none when empty.
	DeadLetterSink string
	// DeadLetterAudience is the OIDC audience Knative delivers dead letters with
	// (default, with a DeadLetterSink: the operator receiver's, events.ReceiverAudience).
	DeadLetterAudience string
	// ClusterRole may read Devices in every namespace (config/200-rbac); each
	// Gateway's ServiceAccount is bound to it (default "wasmbed-gateway").
	ClusterRole string
	// ClusterDomain is the cluster's DNS domain, for the Trigger's subscriber URL
	// (default "cluster.local").
	ClusterDomain string

	// Env is added to every gateway container's environment, e.g. the operator's own
	// OTEL_* settings so gateways export traces where it does (cluster mode).
	Env []corev1.EnvVar

	// Endpoint is the host:port of the in-process gateway (embedded mode, required).
	Endpoint string

	// Resync is how often a Gateway is looked at when nothing changed, which is when
	// connectedDevices is counted again (default one minute).
	Resync time.Duration
}

func (o Options) withDefaults() (Options, error) {
	if o.Mode == "" {
		o.Mode = ModeCluster
	}
	if o.Broker == "" {
		o.Broker = DefaultBroker
	}
	if o.Resync <= 0 {
		o.Resync = DefaultResync
	}
	if o.ClusterDomain == "" {
		o.ClusterDomain = DefaultClusterDomain
	}
	if o.ClusterRole == "" {
		o.ClusterRole = DefaultClusterRole
	}
	if o.BrokerNamespace == "" {
		o.BrokerNamespace = events.SystemNamespace
	}
	switch o.Mode {
	case ModeCluster:
		if o.Image == "" {
			return o, errors.New("gateway controller: cluster mode needs Options.Image")
		}
		if o.BrokerURL == "" {
			return o, errors.New("gateway controller: cluster mode needs Options.BrokerURL")
		}
		k, err := pki.ParsePublicKeyHex(o.DeploymentKey)
		if err != nil {
			return o, fmt.Errorf("gateway controller: cluster mode needs Options.DeploymentKey: %w", err)
		}
		o.DeploymentKey = hex.EncodeToString(k)
		if o.DeadLetterSink != "" {
			if _, err := apis.ParseURL(o.DeadLetterSink); err != nil {
				return o, fmt.Errorf("gateway controller: dead letter sink: %w", err)
			}
			if o.DeadLetterAudience == "" {
				o.DeadLetterAudience = events.ReceiverAudience("operator")
			}
		}
	case ModeEmbedded:
		if _, _, err := net.SplitHostPort(o.Endpoint); err != nil {
			return o, fmt.Errorf("gateway controller: embedded mode needs Options.Endpoint as host:port: %w", err)
		}
	default:
		return o, fmt.Errorf("gateway controller: unknown mode %q", o.Mode)
	}
	return o, nil
}

// +kubebuilder:rbac:groups=wasmbed.dev,resources=gateways,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=wasmbed.dev,resources=gateways/finalizers,verbs=update
// +kubebuilder:rbac:groups=wasmbed.dev,resources=gateways/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=wasmbed.dev,resources=devices,verbs=get;list;watch
// +kubebuilder:rbac:groups=eventing.knative.dev,resources=eventpolicies,verbs=get;create;update;delete
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterrolebindings,verbs=get;create;update;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles,verbs=bind,resourceNames=wasmbed-gateway
// +kubebuilder:rbac:groups="",resources=nodes,verbs=list
// +kubebuilder:rbac:groups=eventing.knative.dev,resources=triggers,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// SetupWithManager registers the Gateway reconciler with mgr.
func SetupWithManager(mgr ctrl.Manager, opts Options) error {
	opts, err := opts.withDefaults()
	if err != nil {
		return err
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1.Device{}, connectedIndex, indexConnected); err != nil {
		return fmt.Errorf("gateway controller: index devices: %w", err)
	}
	r := &Reconciler{
		client:   mgr.GetClient(),
		reader:   mgr.GetAPIReader(),
		scheme:   mgr.GetScheme(),
		recorder: mgr.GetEventRecorder("wasmbed-gateway"),
		opts:     opts,
	}
	b := ctrl.NewControllerManagedBy(mgr).
		For(&v1.Gateway{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("gateway")
	if opts.Mode == ModeCluster {
		b = b.Owns(&appsv1.Deployment{}).Owns(&corev1.Service{}).Owns(&corev1.ServiceAccount{}).Owns(&eventingv1.Trigger{})
	}
	if err := b.Complete(r); err != nil {
		return fmt.Errorf("gateway controller: %w", err)
	}
	return nil
}

// ManagedBy is the app.kubernetes.io/managed-by label of every object the operator
// makes for a Gateway.
const ManagedBy = "wasmbed-operator"

// CacheByObject restricts the manager's cache of Deployments, Services,
// ServiceAccounts and Triggers to the ones the operator made for Gateways (their
// managed-by label), so that the operator does not hold every such object of the
// cluster in memory. Pass it as cache.Options.ByObject.
func CacheByObject() map[client.Object]cache.ByObject {
	mine := cache.ByObject{Label: k8slabels.SelectorFromSet(k8slabels.Set{"app.kubernetes.io/managed-by": ManagedBy})}
	return map[client.Object]cache.ByObject{
		&appsv1.Deployment{}: mine, &corev1.Service{}: mine, &corev1.ServiceAccount{}: mine, &eventingv1.Trigger{}: mine,
	}
}

// connectedIndex indexes Devices that are Connected by their status.gateway.
const connectedIndex = "wasmbed.connectedGateway"

func indexConnected(o client.Object) []string {
	d, ok := o.(*v1.Device)
	if !ok || d.Status.Phase != v1.DeviceConnected || d.Status.Gateway == "" {
		return nil
	}
	return []string{d.Status.Gateway}
}
