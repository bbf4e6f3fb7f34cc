package knativeadmission_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/wasmbed/wasmbed/internal/knativeadmission"
)

// config reads the configuration of the Knative release in go.mod.
func config(t *testing.T) knativeadmission.Config {
	t.Helper()
	dir := func(module string) string {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module).Output()
		if err != nil || strings.TrimSpace(string(out)) == "" {
			t.Fatalf("go list -m %s: %v (run go mod download)", module, err)
		}
		return strings.TrimSpace(string(out))
	}
	cfg, err := knativeadmission.LoadConfig(dir("knative.dev/serving"), dir("knative.dev/eventing"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

var triggerGVK = schema.GroupVersionKind{Group: "eventing.knative.dev", Version: "v1", Kind: "Trigger"}

// groupRefTrigger names its subscriber by API group instead of apiVersion, which
// Knative admits only with its kreference-group feature enabled.
const groupRefTrigger = `{"apiVersion":"eventing.knative.dev/v1","kind":"Trigger",
 "metadata":{"name":"t","namespace":"team-a"},
 "spec":{"broker":"wasmbed","subscriber":{"ref":{"group":"serving.knative.dev","kind":"Service","name":"sink"}}}}`

func TestAdmitReadsFeatureFlags(t *testing.T) {
	tests := []struct {
		name     string
		features map[string]string
		refused  bool
	}{
		{"Knative's defaults", nil, true},
		{"group references enabled", map[string]string{"kreference-group": "enabled"}, false},
		{"group references disabled", map[string]string{"kreference-group": "disabled"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, err := config(t).WithEventing("config-features", tt.features).Context(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			obj, err := knativeadmission.Decode(triggerGVK, []byte(groupRefTrigger))
			if err != nil {
				t.Fatal(err)
			}
			_, err = knativeadmission.Admit(ctx, obj, "someone")
			if refused := err != nil; refused != tt.refused {
				t.Errorf("refused = %v (%v), want %v", refused, err, tt.refused)
			}
		})
	}
}

func TestAdmitSetsDefaultsFirst(t *testing.T) {
	ctx, err := config(t).Context(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// No broker class: the webhook's defaulting names the cluster's default class
	// (config-br-defaults) before validation, which requires one.
	obj, err := knativeadmission.Decode(schema.GroupVersionKind{Group: "eventing.knative.dev", Version: "v1", Kind: "Broker"},
		[]byte(`{"apiVersion":"eventing.knative.dev/v1","kind":"Broker","metadata":{"name":"b","namespace":"n"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := knativeadmission.Admit(ctx, obj, "someone"); err != nil {
		t.Fatal(err)
	}
	if got := obj.(interface{ GetAnnotations() map[string]string }).GetAnnotations()["eventing.knative.dev/broker.class"]; got != "MTChannelBasedBroker" {
		t.Errorf("broker class %q after defaulting, want Knative's default MTChannelBasedBroker", got)
	}
}

func TestDecodeRefuses(t *testing.T) {
	tests := []struct {
		name string
		gvk  schema.GroupVersionKind
		raw  string
		want string
	}{
		{"a Knative kind without a Go type here", schema.GroupVersionKind{Group: "sources.knative.dev", Version: "v1", Kind: "PingSource"}, `{}`, "no Go type"},
		{"a misspelt field", triggerGVK, `{"spec":{"brokr":"wasmbed"}}`, "unknown field"},
		{"a field of the wrong type", triggerGVK, `{"spec":{"broker":5}}`, "decode Trigger"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := knativeadmission.Decode(tt.gvk, []byte(tt.raw))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one naming %q", err, tt.want)
			}
		})
	}
}

func TestContextRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(knativeadmission.Config) knativeadmission.Config
	}{
		{"a serving default that is not a number", func(c knativeadmission.Config) knativeadmission.Config {
			return c.WithServing("config-defaults", map[string]string{"revision-timeout-seconds": "soon"})
		}},
		{"no ConfigMaps at all", func(knativeadmission.Config) knativeadmission.Config { return knativeadmission.Config{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.cfg(config(t)).Context(context.Background()); err == nil {
				t.Error("Context accepted it")
			}
		})
	}
}

func TestIsKnative(t *testing.T) {
	for g, want := range map[string]bool{"serving.knative.dev": true, "eventing.knative.dev": true, "apps": false, "wasmbed.dev": false, "knative.dev.example": false} {
		if got := knativeadmission.IsKnative(schema.GroupVersionKind{Group: g}); got != want {
			t.Errorf("IsKnative(%s) = %v", g, got)
		}
	}
}

// A rule that needs a cluster (a cross-namespace Broker reference checks the user's
// access) is an error, not a crash of the test binary.
func TestAdmitWithoutACluster(t *testing.T) {
	ctx, err := config(t).WithEventing("config-features", map[string]string{"cross-namespace-event-links": "enabled"}).Context(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	obj, err := knativeadmission.Decode(triggerGVK, []byte(`{"apiVersion":"eventing.knative.dev/v1","kind":"Trigger",
	 "metadata":{"name":"t","namespace":"team-a"},
	 "spec":{"brokerRef":{"apiVersion":"eventing.knative.dev/v1","kind":"Broker","name":"wasmbed","namespace":"wasmbed-system"},
	         "subscriber":{"uri":"http://sink.team-a.svc.cluster.local"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := knativeadmission.Admit(ctx, obj, "someone"); err == nil || !strings.Contains(err.Error(), "needs what a test has not got") {
		t.Errorf("error %v", err)
	}
}
