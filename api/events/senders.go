package events

import "strings"

// SystemNamespace is the namespace the platform's components and Triggers live in.
const SystemNamespace = "wasmbed-system"

// BrokerName is the Knative Broker every component sends to (config/500-eventing).
const BrokerName = "wasmbed"

// Emitters lists, per component, the event types it sends into the broker with its own
// identity (its ServiceAccount, ServiceAccount(component)). The broker admits nothing
// else from it.
var Emitters = map[string][]Type{
	"operator": {BuildRequested, RolloutRequested, ModuleValidated}, // module.validated: a steps Sequence's result, marked done
	"dispatch": {DeploymentRequested},
	"gateway":  {DeploymentSucceeded, DeploymentFailed, DeploymentSummarized, DeviceConnected, DeviceDisconnected, DeviceSeen, DeviceTelemetry},
}

// Replies lists, per consumer, the event types its subscriber answers with. The broker
// publishes a reply on behalf of the Trigger that delivered the request, so a reply
// comes with that Trigger's identity (as in Knative Eventing).
var Replies = map[string][]Type{
	"compile":  {ModuleBuilt, BuildFailed},
	"validate": {ModuleValidated, ModuleRejected},
	"dispatch": {DeploymentDispatched},
}

// ServiceAccount is the name of a component's ServiceAccount: "wasmbed-<component>".
func ServiceAccount(component string) string { return "wasmbed-" + component }

// TriggerName is the name of the Trigger that delivers type t to consumer, e.g.
// "compile-build-requested" (config/500-eventing and the embedded broker).
func TriggerName(consumer string, t Type) string {
	return consumer + "-" + strings.ReplaceAll(strings.TrimPrefix(string(t), "dev.wasmbed."), ".", "-")
}

// ReceiverAudience is the audience a consumer's receiver requires of the tokens of the
// Triggers that deliver to it; each of its Triggers names it as the subscriber's
// audience.
func ReceiverAudience(consumer string) string { return "wasmbed.dev/receiver/" + consumer }

// GatewayAudience is the audience of a gateway's deploy API, which its own Trigger
// delivers deployment.requested to.
func GatewayAudience(namespace, name string) string {
	return "wasmbed.dev/gateway/" + namespace + "/" + name
}

// BrokerAudience is the audience of the broker's ingress, in Knative's form
// (<group>/<kind>/<namespace>/<name>).
func BrokerAudience() string {
	return "eventing.knative.dev/broker/" + SystemNamespace + "/" + BrokerName
}
