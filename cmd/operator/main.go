// Command operator is the Wasmbed operator: the Application, Device and Gateway
// reconcilers and the CloudEvents receiver (a Trigger subscriber) that keeps their
// status true. config/400-operator.yaml runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/internal/eventauth"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/wasmbed/wasmbed/internal/logging"
	"github.com/wasmbed/wasmbed/internal/sink"
	"github.com/wasmbed/wasmbed/internal/tracing"
	"github.com/wasmbed/wasmbed/operator"
	devicectl "github.com/wasmbed/wasmbed/operator/device"
	gatewayctl "github.com/wasmbed/wasmbed/operator/gateway"
	"github.com/wasmbed/wasmbed/operator/receiver"
	"github.com/wasmbed/wasmbed/operator/steps"
)

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func main() {
	var o options
	fs := flag.NewFlagSet("operator", flag.ExitOnError)
	fs.StringVar(&o.eventsAddr, "events-addr", env("EVENTS_ADDR", ":8080"), "CloudEvents receiver (Trigger subscriber) address")
	fs.StringVar(&o.metricsAddr, "metrics-addr", ":9090", "Prometheus metrics address, HTTPS for callers allowed GET /metrics (0 turns it off)")
	fs.StringVar(&o.metricsCertDir, "metrics-cert-dir", env("WASMBED_METRICS_CERT_DIR", ""), "directory with tls.crt and tls.key for the metrics server (default: a self-signed certificate)")
	fs.StringVar(&o.healthAddr, "health-addr", ":8081", "health probe address")
	fs.BoolVar(&o.leader, "leader-elect", true, "elect a leader among replicas")
	fs.StringVar(&o.caSecret, "ca-secret", env("WASMBED_CA_SECRET", "wasmbed-system/wasmbed-ca"), "Secret <namespace>/<name> with the platform CA (ca.crt, ca.key)")
	fs.StringVar(&o.gatewayImage, "gateway-image", env("WASMBED_GATEWAY_IMAGE", ""), "container image of the gateway (ko resolves it in config/)")
	fs.StringVar(&o.brokerURL, "broker-url", env("K_SINK", ""), "the broker ingress (K_SINK)")
	fs.StringVar(&o.brokerToken, "broker-token-file", env("K_SINK_TOKEN_FILE", "/var/run/secrets/wasmbed/broker/token"), "the operator's projected service-account token for the broker's audience")
	fs.StringVar(&o.deploymentKey, "deployment-key", env("WASMBED_DEPLOYMENT_KEY", ""), "the deployment verification key, 64 hex digits (signing.pub of `wasmbed pki keys`), given to every gateway")
	fs.StringVar(&o.deadLetter, "dead-letter-sink", env("WASMBED_DEAD_LETTER_SINK", ""), "dead-letter sink URL for gateway triggers")
	fs.StringVar(&o.gatewayRole, "gateway-cluster-role", env("WASMBED_GATEWAY_CLUSTER_ROLE", gatewayctl.DefaultClusterRole), "ClusterRole that reads Devices, bound to each gateway's service account")
	fs.DurationVar(&o.resync, "resync", 30*time.Second, "how often rollouts in progress are looked at")
	fs.Float64Var(&o.statusQPS, "device-status-qps", receiver.DefaultStatusQPS, "Device status writes per second at most (coalesced per device; rollouts count from the gateways' summaries)")
	fs.Var(&o.level, "log-level", "debug, info, warn, error, or a verbosity 0-10 as klog's -v (default info; env LOG_LEVEL)")
	fs.StringVar(&o.stepsReply, "steps-reply-url", env("WASMBED_STEPS_REPLY_URL", "http://wasmbed-operator.wasmbed-system.svc.cluster.local/steps-done"), "where Applications' step Sequences reply (this operator's /steps-done)")
	if v := os.Getenv("LOG_LEVEL"); v != "" {
		if err := o.level.Set(v); err != nil {
			fmt.Fprintln(os.Stderr, "LOG_LEVEL:", err)
			os.Exit(2)
		}
	}
	_ = fs.Parse(os.Args[1:])

	// One JSON logger for the operator, controller-runtime and client-go (klog).
	log := logging.New(os.Stderr, &o.level)
	if err := run(o, log); err != nil {
		log.Error("operator stopped", "err", err)
		os.Exit(1)
	}
}

// options are the operator's flags.
type options struct {
	eventsAddr, metricsAddr, healthAddr, metricsCertDir string
	leader                                              bool
	caSecret, gatewayImage, brokerURL, brokerToken      string
	deploymentKey, deadLetter, gatewayRole, stepsReply  string
	resync                                              time.Duration
	statusQPS                                           float64
	level                                               logging.Level
}

func run(o options, log *slog.Logger) error {
	secret, err := v1.ParseRef(o.caSecret)
	if err != nil {
		return fmt.Errorf("--ca-secret: %w", err)
	}
	ns, name := secret.Namespace, secret.Name
	s, err := sink.NewHTTP(o.brokerURL, 0, eventauth.File(o.brokerToken), sink.WithCACerts(os.Getenv("K_CA_CERTS")), sink.WithComponent("operator"))
	if err != nil {
		return fmt.Errorf("--broker-url: %w", err)
	}
	if o.statusQPS <= 0 {
		return fmt.Errorf("--device-status-qps must be positive, not %v", o.statusQPS)
	}
	auth, err := eventauth.InCluster(events.ReceiverAudience("operator"), eventauth.ReceiverAllow("operator"))
	if err != nil {
		return err
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	stopTracing, err := tracing.Setup(ctx, "wasmbed-operator")
	if err != nil {
		return err
	}
	defer func() { _ = stopTracing(context.Background()) }()
	return operator.Run(ctx, operator.Options{
		Config: cfg, Sender: s, Auth: auth.WithObservability("operator", nil, log), EventsAddr: o.eventsAddr, MetricsAddr: o.metricsAddr, HealthAddr: o.healthAddr,
		MetricsCertDir: o.metricsCertDir,
		LeaderElection: o.leader, LeaderElectionNamespace: os.Getenv("POD_NAMESPACE"), Resync: o.resync, StatusQPS: o.statusQPS,
		Logger: logr.FromSlogHandler(log.Handler()),
		Steps:  &steps.ClusterOptions{BrokerNamespace: "wasmbed-system", Broker: "wasmbed", ReplyURL: o.stepsReply},
		Setup: []func(ctrl.Manager) error{
			func(mgr ctrl.Manager) error {
				return devicectl.SetupWithManager(mgr, devicectl.Options{CASecret: types.NamespacedName{Namespace: ns, Name: name}})
			},
			func(mgr ctrl.Manager) error {
				return gatewayctl.SetupWithManager(mgr, gatewayctl.Options{
					Mode: gatewayctl.ModeCluster, Image: o.gatewayImage, BrokerURL: o.brokerURL,
					DeadLetterSink: o.deadLetter, ClusterRole: o.gatewayRole, DeploymentKey: o.deploymentKey,
					Env: otelEnv(os.Environ()),
				})
			},
		},
	})
}

// otelEnv returns the OTEL_* variables of env: the operator hands its tracing settings
// on to the gateways it runs (docs/tracing.md).
func otelEnv(env []string) []corev1.EnvVar {
	var out []corev1.EnvVar
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, "OTEL_") {
			out = append(out, corev1.EnvVar{Name: k, Value: v})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
