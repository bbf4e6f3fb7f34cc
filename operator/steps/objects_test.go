package steps_test

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/knativeadmission"
	"github.com/wasmbed/wasmbed/internal/testenv"
	"github.com/wasmbed/wasmbed/operator/steps"
)

// TestKnativeAdmitsObjects runs Knative's admission rules (its webhooks' SetDefaults
// and Validate, with the feature flags config/ asks for) on the Sequence and Trigger
// the operator makes for an Application's steps.
func TestKnativeAdmitsObjects(t *testing.T) {
	opts := steps.ClusterOptions{BrokerNamespace: "wasmbed-system", Broker: "wasmbed",
		ReplyURL: "http://wasmbed-operator.wasmbed-system.svc.cluster.local/steps-done"}
	tests := []struct {
		name  string
		steps []v1.PipelineStep
	}{
		{"a Knative Service", []v1.PipelineStep{{Ref: &v1.StepReference{APIVersion: "serving.knative.dev/v1", Kind: "Service", Name: "scanner"}}}},
		{"a URI", []v1.PipelineStep{{URI: "https://signer.example/sign"}}},
		{"both, in order", []v1.PipelineStep{
			{Ref: &v1.StepReference{APIVersion: "serving.knative.dev/v1", Kind: "Service", Name: "scanner"}},
			{URI: "https://signer.example/sign"},
		}},
	}
	ctx := testenv.KnativeAdmission(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "blink"}, Spec: v1.ApplicationSpec{Steps: tt.steps}}
			seq, trig, err := steps.Objects(app, opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, obj := range []knativeadmission.Object{seq, trig} {
				warnings, err := knativeadmission.Admit(ctx, obj, "system:serviceaccount:wasmbed-system:wasmbed-operator")
				if err != nil {
					t.Error(err)
				}
				for _, w := range warnings {
					t.Errorf("%T: Knative warns: %s", obj, w)
				}
			}
		})
	}
}
