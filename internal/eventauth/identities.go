package eventauth

import (
	"fmt"

	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/client/config"

	"knative.dev/pkg/kmeta"

	"github.com/wasmbed/wasmbed/api/events"
)

// triggerSASuffix is what Knative Eventing appends to a Trigger's name to name the
// ServiceAccount it delivers that Trigger's events with (OIDC sender identity).
const triggerSASuffix = "-oidc-eventing.knative.dev-trigger"

// TriggerServiceAccount is the name of the ServiceAccount Knative Eventing creates for a
// Trigger's deliveries; the embedded broker uses the same names.
func TriggerServiceAccount(trigger string) string {
	return strings.ToLower(kmeta.ChildName(trigger, triggerSASuffix))
}

// TriggerUser is the user name of a Trigger's deliveries in namespace.
func TriggerUser(namespace, trigger string) string {
	return ServiceAccountUser(namespace, TriggerServiceAccount(trigger))
}

// subscriptionSASuffix is what Knative Eventing appends to a Subscription's name for
// the ServiceAccount its channel delivers with (subscriber and reply).
const subscriptionSASuffix = "-oidc-messaging.knative.dev-subscription"

// SubscriptionUser is the user name of a channel Subscription's deliveries in
// namespace: a Sequence step's, and the reply of its last step.
func SubscriptionUser(namespace, subscription string) string {
	return ServiceAccountUser(namespace, strings.ToLower(kmeta.ChildName(subscription, subscriptionSASuffix)))
}

// ComponentUser is the user name of a platform component's own ServiceAccount.
func ComponentUser(component string) string {
	return ServiceAccountUser(events.SystemNamespace, events.ServiceAccount(component))
}

// ReceiverAllow is who may send what to a consumer's receiver: each type it subscribes
// to (events.Subscriptions), from the Trigger that delivers it.
func ReceiverAllow(consumer string) map[string][]string {
	allow := map[string][]string{}
	for _, t := range events.Subscriptions[consumer] {
		allow[string(t)] = []string{TriggerUser(events.SystemNamespace, events.TriggerName(consumer, t))}
	}
	return allow
}

// GatewayAllow is who may send deployment requests to a gateway's deploy API: its own
// Trigger, named after the Gateway in its namespace.
func GatewayAllow(namespace, name string) map[string][]string {
	return map[string][]string{string(events.DeploymentRequested): {TriggerUser(namespace, name)}}
}

// GatewayUser is the user name of a gateway's events: each Gateway runs as a
// ServiceAccount of its own, named as the Gateway, in its namespace.
func GatewayUser(namespace, name string) string { return ServiceAccountUser(namespace, name) }

// BrokerAllow is who may send what into the broker: each component the types it emits
// (events.Emitters; for gateways, the users given, see GatewayUser), and each Trigger
// the replies of its subscriber (events.Replies).
func BrokerAllow(gateways ...string) map[string][]string {
	allow := map[string][]string{}
	add := func(t events.Type, users ...string) {
		if len(users) > 0 {
			allow[string(t)] = append(allow[string(t)], users...)
		}
	}
	for component, types := range events.Emitters {
		users := []string{ComponentUser(component)}
		if component == "gateway" {
			users = gateways
		}
		for _, t := range types {
			add(t, users...)
		}
	}
	for consumer, replies := range events.Replies {
		for _, in := range events.Subscriptions[consumer] {
			for _, t := range replies {
				add(t, TriggerUser(events.SystemNamespace, events.TriggerName(consumer, in)))
			}
		}
	}
	return allow
}

// InCluster returns the policy of a receiver running in a cluster: tokens for audience,
// checked by TokenReviews against the apiserver the pod's own ServiceAccount reaches
// (it needs create on tokenreviews: the system:auth-delegator ClusterRole).
func InCluster(audience string, allow map[string][]string) (*Policy, error) {
	cfg, err := ctrlconfig.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("eventauth: kubernetes config: %w", err)
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, fmt.Errorf("eventauth: kubernetes client: %w", err)
	}
	return NewReceiverPolicy(c, audience, allow)
}
