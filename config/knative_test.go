package config_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/wasmbed/wasmbed/internal/knativeadmission"
	"github.com/wasmbed/wasmbed/internal/testenv"
)

// admitter is who applies config/ in a cluster: Knative records the creator.
const admitter = "kubernetes-admin"

// admit runs Knative's webhook defaulting and validation on obj, and returns its
// warnings and errors.
func admit(t *testing.T, obj *unstructured.Unstructured) ([]string, error) {
	t.Helper()
	raw, err := json.Marshal(obj.Object)
	if err != nil {
		t.Fatal(err)
	}
	typed, err := knativeadmission.Decode(obj.GroupVersionKind(), raw)
	if err != nil {
		return nil, err
	}
	return knativeadmission.Admit(testenv.KnativeAdmission(t), typed, admitter)
}

// knativeObjects returns every Knative object in config/, by "file: Kind/name".
func knativeObjects(t *testing.T) map[string]*unstructured.Unstructured {
	t.Helper()
	out := map[string]*unstructured.Unstructured{}
	for _, file := range manifests(t) {
		rel, _ := filepath.Rel(testenv.RepoRoot(), file)
		for _, obj := range objects(t, file) {
			if knativeadmission.IsKnative(obj.GroupVersionKind()) {
				out[rel+": "+obj.GetKind()+"/"+obj.GetName()] = obj
			}
		}
	}
	return out
}

// TestKnativeAdmitsEveryManifest runs Knative's own admission rules (SetDefaults and
// Validate, as its webhooks do, with the feature flags config/ asks for) on every
// Knative object in config/: what the test apiserver's permissive CRD schemas let
// through, a cluster's webhook would refuse. A warning fails too: Knative warns
// about insecure pod defaults it means to change.
func TestKnativeAdmitsEveryManifest(t *testing.T) {
	objs := knativeObjects(t)
	kinds := map[string]int{}
	for name, obj := range objs {
		kinds[obj.GetKind()]++
		warnings, err := admit(t, obj)
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		for _, w := range warnings {
			t.Errorf("%s: Knative warns: %s", name, w)
		}
	}
	for _, k := range []string{"Service", "Broker", "Trigger", "EventPolicy", "SinkBinding"} {
		if kinds[k] == 0 {
			t.Errorf("no %s in config/: the test read nothing it should check (read %v)", k, kinds)
		}
	}
}

// TestKnativeRefusesBrokenManifests breaks a copy of real manifests in ways Knative's
// webhook refuses (and the CRD schemas do not), and checks that admit refuses each.
func TestKnativeRefusesBrokenManifests(t *testing.T) {
	objs := knativeObjects(t)
	find := func(kind, name string) *unstructured.Unstructured {
		for _, o := range objs {
			if o.GetKind() == kind && o.GetName() == name {
				return o.DeepCopy()
			}
		}
		t.Fatalf("no %s/%s in config/", kind, name)
		return nil
	}
	set := func(obj *unstructured.Unstructured, value any, path ...string) *unstructured.Unstructured {
		if err := unstructured.SetNestedField(obj.Object, value, path...); err != nil {
			t.Fatal(err)
		}
		return obj
	}
	firstContainer := func(obj *unstructured.Unstructured, key string, value any) *unstructured.Unstructured {
		cs, _, _ := unstructured.NestedSlice(obj.Object, "spec", "template", "spec", "containers")
		cs[0].(map[string]any)[key] = value
		return set(obj, cs, "spec", "template", "spec", "containers")
	}
	tests := []struct {
		name string
		obj  *unstructured.Unstructured
		want string
	}{
		{"a revision timeout past Knative's maximum (600 s)",
			set(find("Service", "wasmbed-compile"), int64(3600), "spec", "template", "spec", "timeoutSeconds"), "timeoutSeconds"},
		{"container concurrency past 1000",
			set(find("Service", "wasmbed-compile"), int64(5000), "spec", "template", "spec", "containerConcurrency"), "containerConcurrency"},
		{"an autoscaling annotation that is not a number",
			set(find("Service", "wasmbed-validate"), "many", "spec", "template", "metadata", "annotations", "autoscaling.knative.dev/max-scale"), "max-scale"},
		{"a container port Knative reserves",
			firstContainer(find("Service", "wasmbed-dispatch"), "ports", []any{map[string]any{"containerPort": int64(8012)}}), "8012"},
		{"a misspelt field the CRD schema keeps",
			set(find("Trigger", "compile-build-requested"), "wasmbed", "spec", "brokr"), "unknown field"},
		{"a Trigger without a subscriber",
			set(find("Trigger", "validate-module-built"), map[string]any{}, "spec", "subscriber"), "subscriber"},
		{"a Broker's backoff delay that is not an ISO 8601 duration",
			set(find("Broker", "wasmbed"), "200ms", "spec", "delivery", "backoffDelay"), "backoffDelay"},
		{"an EventPolicy that names no sender",
			set(find("EventPolicy", "wasmbed-build-requested"), []any{map[string]any{}}, "spec", "from"), "from"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := admit(t, tt.obj)
			if err == nil {
				t.Fatalf("admitted; Knative's webhook refuses it")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name %q", err, tt.want)
			}
		})
	}
}

// TestBrokerAddressIsBound: no manifest writes the broker's address; SinkBindings
// give it (K_SINK) to every workload that sends events.
func TestBrokerAddressIsBound(t *testing.T) {
	bound := map[string]bool{}
	for _, obj := range knativeObjects(t) {
		if obj.GetKind() == "SinkBinding" {
			name, _, _ := unstructured.NestedString(obj.Object, "spec", "subject", "name")
			sink, _, _ := unstructured.NestedString(obj.Object, "spec", "sink", "ref", "kind")
			if sink == "Broker" {
				bound[name] = true
			}
		}
	}
	for _, file := range manifests(t) {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(raw), "broker-ingress") {
			t.Errorf("%s writes the broker's address; a SinkBinding gives it", file)
		}
		for _, obj := range objects(t, file) {
			if strings.Contains(string(mustJSON(t, obj.Object)), "K_SINK_TOKEN_FILE") && !bound[obj.GetName()] {
				t.Errorf("%s %s sends events (K_SINK_TOKEN_FILE) but no SinkBinding gives it K_SINK", obj.GetKind(), obj.GetName())
			}
		}
	}
	if len(bound) == 0 {
		t.Error("no SinkBinding to the Broker in config/")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
