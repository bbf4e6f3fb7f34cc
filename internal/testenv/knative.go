package testenv

import (
	"context"
	"testing"

	"github.com/wasmbed/wasmbed/config"
	"github.com/wasmbed/wasmbed/internal/knativeadmission"
)

// KnativeAdmission returns a context for knativeadmission.Admit: the configuration
// the webhooks of the Knative release in go.mod start with (the ConfigMaps of its
// modules), with the settings config/ asks a cluster admin for (config.EventingFeatures,
// config.ServingFeatures). It fails the test when that configuration cannot be read.
func KnativeAdmission(t testing.TB) context.Context {
	t.Helper()
	serving, err := moduleDir("knative.dev/serving")
	if err != nil {
		t.Fatal(err)
	}
	eventing, err := moduleDir("knative.dev/eventing")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := knativeadmission.LoadConfig(serving, eventing)
	if err != nil {
		t.Fatal(err)
	}
	ctx, err := cfg.WithEventing("config-features", config.EventingFeatures).
		WithServing("config-features", config.ServingFeatures).
		Context(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ctx
}
