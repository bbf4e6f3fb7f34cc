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
	"syscall"
	"time"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/internal/eventauth"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/wasmbed/wasmbed/internal/sink"
	"github.com/wasmbed/wasmbed/operator"
	devicectl "github.com/wasmbed/wasmbed/operator/device"
	gatewayctl "github.com/wasmbed/wasmbed/operator/gateway"
	"github.com/wasmbed/wasmbed/operator/steps"
)

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func main() {
	fs := flag.NewFlagSet("operator", flag.ExitOnError)
	eventsAddr := fs.String("events-addr", env("EVENTS_ADDR", ":8080"), "CloudEvents receiver (Trigger subscriber) address")
	metricsAddr := fs.String("metrics-addr", ":9090", "Prometheus metrics address (0 turns it off)")
	healthAddr := fs.String("health-addr", ":8081", "health probe address")
	leader := fs.Bool("leader-elect", true, "elect a leader among replicas")
	caSecret := fs.String("ca-secret", env("WASMBED_CA_SECRET", "wasmbed-system/wasmbed-ca"), "Secret <namespace>/<name> with the platform CA (ca.crt, ca.key)")
	gatewayImage := fs.String("gateway-image", env("WASMBED_GATEWAY_IMAGE", ""), "container image of the gateway (ko resolves it in config/)")
	brokerURL := fs.String("broker-url", env("K_SINK", ""), "the broker ingress (K_SINK)")
	brokerToken := fs.String("broker-token-file", env("K_SINK_TOKEN_FILE", "/var/run/secrets/wasmbed/broker/token"), "the operator's projected service-account token for the broker's audience")
	deadLetter := fs.String("dead-letter-sink", env("WASMBED_DEAD_LETTER_SINK", ""), "dead-letter sink URL for gateway triggers")
	gatewayRole := fs.String("gateway-cluster-role", env("WASMBED_GATEWAY_CLUSTER_ROLE", gatewayctl.DefaultClusterRole), "ClusterRole that reads Devices, bound to each gateway's service account")
	resync := fs.Duration("resync", 30*time.Second, "how often rollouts in progress are looked at")
	stepsReply := fs.String("steps-reply-url", env("WASMBED_STEPS_REPLY_URL", "http://wasmbed-operator.wasmbed-system.svc.cluster.local/steps-done"), "where Applications' step Sequences reply (this operator's /steps-done)")
	_ = fs.Parse(os.Args[1:])

	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(*eventsAddr, *metricsAddr, *healthAddr, *leader, *caSecret, *gatewayImage, *brokerURL, *brokerToken, *deadLetter, *gatewayRole, *stepsReply, *resync, log); err != nil {
		log.Error("operator stopped", "err", err)
		os.Exit(1)
	}
}

func run(eventsAddr, metricsAddr, healthAddr string, leader bool, caSecret, gatewayImage, brokerURL, brokerToken, deadLetter, gatewayRole, stepsReply string, resync time.Duration, log *slog.Logger) error {
	secret, err := v1.ParseRef(caSecret)
	if err != nil {
		return fmt.Errorf("--ca-secret: %w", err)
	}
	ns, name := secret.Namespace, secret.Name
	s, err := sink.NewHTTP(brokerURL, 0, eventauth.File(brokerToken))
	if err != nil {
		return fmt.Errorf("--broker-url: %w", err)
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
	return operator.Run(ctx, operator.Options{
		Config: cfg, Sender: s, Auth: auth.WithObservability("operator", nil, log), EventsAddr: eventsAddr, MetricsAddr: metricsAddr, HealthAddr: healthAddr,
		LeaderElection: leader, LeaderElectionNamespace: os.Getenv("POD_NAMESPACE"), Resync: resync,
		Logger: logr.FromSlogHandler(log.Handler()),
		Steps:  &steps.ClusterOptions{BrokerNamespace: "wasmbed-system", Broker: "wasmbed", ReplyURL: stepsReply},
		Setup: []func(ctrl.Manager) error{
			func(mgr ctrl.Manager) error {
				return devicectl.SetupWithManager(mgr, devicectl.Options{CASecret: types.NamespacedName{Namespace: ns, Name: name}})
			},
			func(mgr ctrl.Manager) error {
				return gatewayctl.SetupWithManager(mgr, gatewayctl.Options{
					Mode: gatewayctl.ModeCluster, Image: gatewayImage, BrokerURL: brokerURL,
					DeadLetterSink: deadLetter, ClusterRole: gatewayRole,
				})
			},
		},
	})
}
