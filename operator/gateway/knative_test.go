package gateway

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/knativeadmission"
	"github.com/wasmbed/wasmbed/internal/testenv"
)

// TestKnativeAdmitsTrigger runs Knative's admission rules (its webhook's SetDefaults
// and Validate, with the feature flags config/ asks for) on the Trigger the operator
// makes for each Gateway.
func TestKnativeAdmitsTrigger(t *testing.T) {
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
			o.Image, o.BrokerURL = "ko.local/gateway:test", "http://broker-ingress.knative-eventing.svc.cluster.local/wasmbed-system/wasmbed"
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
			warnings, err := knativeadmission.Admit(ctx, trig, "system:serviceaccount:wasmbed-system:wasmbed-operator")
			if err != nil {
				t.Error(err)
			}
			for _, w := range warnings {
				t.Errorf("Knative warns: %s", w)
			}
		})
	}
}
