package config

// The settings these manifests need in Knative's own ConfigMaps (config/README.md,
// "Sender identity"). A cluster admin sets them; `ko apply -Rf config/` does not
// touch Knative's namespaces. Tests run Knative's admission rules with them
// (internal/knativeadmission).
var (
	// EventingFeatures are the keys of knative-eventing/config-features: Knative
	// attaches OIDC tokens to deliveries (every receiver refuses events without one),
	// enforces the EventPolicies of 500-eventing, and, with tokens on the wire,
	// delivers only over TLS.
	EventingFeatures = map[string]string{
		"authentication-oidc":  "enabled",
		"transport-encryption": "strict",
	}
	// ServingFeatures are the keys of knative-serving/config-features that the
	// Knative Services of 600-functions.yaml use.
	ServingFeatures = map[string]string{}
)
