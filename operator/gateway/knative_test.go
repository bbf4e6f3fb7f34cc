package gateway

import (
	"encoding/json"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/knativeadmission"
	"github.com/wasmbed/wasmbed/internal/testenv"
)

// TestKnativeAdmitsGatewayObjects runs Knative's admission rules (its webhook's SetDefaults
// and Validate, with the feature flags config/ asks for) on the Knative objects the
// operator makes for each Gateway: its Trigger and its EventPolicy.
func TestKnativeAdmitsGatewayObjects(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"defaults", Options{}},
		{"with a dead-letter sink", Options{DeadLetterSink: "http://wasmbed-operator.wasmbed-system.svc.cluster.local/dead-letters"}},
		{"another cluster domain and broker", Options{ClusterDomain: "edge.example", Broker: "fleet"}},
	}
	ctx := testenv.KnativeAdmission(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.opts
			o.Image, o.BrokerURL, o.DeploymentKey = "ko.local/gateway:test", "https://broker-ingress.knative-eventing.svc.cluster.local/wasmbed-system/wasmbed", testKey
			o, err := o.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			r := &Reconciler{opts: o}
			gw := &v1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "wasmbed-system", Name: "edge"}}
			trig := &eventingv1.Trigger{
				TypeMeta:   metav1.TypeMeta{APIVersion: "eventing.knative.dev/v1", Kind: "Trigger"},
				ObjectMeta: metav1.ObjectMeta{Namespace: gw.Namespace, Name: gw.Name},
				Spec:       r.triggerSpec(gw),
			}
			raw, err := json.Marshal(r.eventPolicy(gw).Object)
			if err != nil {
				t.Fatal(err)
			}
			policy, err := knativeadmission.Decode(eventPolicyGVK, raw)
			if err != nil {
				t.Fatal(err)
			}
			for _, obj := range []knativeadmission.Object{trig, policy} {
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
