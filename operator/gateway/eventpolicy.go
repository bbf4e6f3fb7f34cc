package gateway

import (
	"context"
	"fmt"
	"maps"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/wasmbed/wasmbed/api/events"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/eventauth"
)

// eventPolicyName names the EventPolicy that lets gw's events into the broker:
// "wasmbed-gateway-<namespace>-<name>", shortened with a hash past 253 characters.
// Namespaces and names cannot hold "--", so no two Gateways share one.
func eventPolicyName(gw *v1.Gateway) string {
	return boundedName("wasmbed-gateway-" + gw.Namespace + "--" + gw.Name)
}

// eventPolicyGVK is Knative Eventing's EventPolicy. The operator handles it as
// unstructured data: its Go package would bring cert-manager's API into the binary.
var eventPolicyGVK = schema.GroupVersionKind{Group: "eventing.knative.dev", Version: "v1alpha1", Kind: "EventPolicy"}

// eventPolicy is the desired EventPolicy, in the broker's namespace, that admits the
// events a gateway emits (events.Emitters) from gw's ServiceAccount alone: what
// config/500-eventing says for the default gateway, for every Gateway.
func (r *Reconciler) eventPolicy(gw *v1.Gateway) *unstructured.Unstructured {
	l := labels(gw)
	l[LabelGatewayNamespace] = gw.Namespace
	l["app.kubernetes.io/part-of"] = "wasmbed"
	var anyOf []any
	for _, t := range events.Emitters["gateway"] {
		anyOf = append(anyOf, map[string]any{"exact": map[string]any{"type": string(t)}})
	}
	p := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{
			"to": []any{map[string]any{"ref": map[string]any{
				"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": r.opts.Broker,
			}}},
			"from":    []any{map[string]any{"sub": eventauth.GatewayUser(gw.Namespace, serviceAccountName(gw))}},
			"filters": []any{map[string]any{"any": anyOf}},
		},
	}}
	p.SetGroupVersionKind(eventPolicyGVK)
	p.SetNamespace(r.opts.BrokerNamespace)
	p.SetName(eventPolicyName(gw))
	p.SetLabels(l)
	return p
}

// policyOf reports whether p was made for gw (its labels say so): the namespaced
// Gateway cannot own an object in the broker's namespace.
func policyOf(p *unstructured.Unstructured, gw *v1.Gateway) bool {
	return p.GetLabels()[LabelGateway] == gw.Name && p.GetLabels()[LabelGatewayNamespace] == gw.Namespace
}

// applyEventPolicy creates or corrects gw's EventPolicy. Without Knative Eventing's
// EventPolicy kind (an older release, or none) there is nothing to enforce and nothing
// is made.
func (r *Reconciler) applyEventPolicy(ctx context.Context, gw *v1.Gateway) error {
	want := r.eventPolicy(gw)
	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(eventPolicyGVK)
	err := r.reader.Get(ctx, client.ObjectKeyFromObject(want), got)
	switch {
	case isNoKind(err):
		return nil
	case apierrors.IsNotFound(err):
		if err := r.client.Create(ctx, want); err != nil {
			return fmt.Errorf("create event policy %s/%s: %w", want.GetNamespace(), want.GetName(), err)
		}
		log.FromContext(ctx).Info("applied gateway object", "kind", "EventPolicy", "name", want.GetName(), "operation", "created")
		return nil
	case err != nil:
		return fmt.Errorf("get event policy %s/%s: %w", want.GetNamespace(), want.GetName(), err)
	case !policyOf(got, gw):
		return &notOwnedError{kind: "EventPolicy", name: want.GetNamespace() + "/" + want.GetName()}
	case !equality.Semantic.DeepEqual(got.Object["spec"], want.Object["spec"]) || !maps.Equal(got.GetLabels(), want.GetLabels()):
		got.Object["spec"] = want.Object["spec"]
		got.SetLabels(want.GetLabels())
		if err := r.client.Update(ctx, got); err != nil {
			return fmt.Errorf("update event policy %s/%s: %w", want.GetNamespace(), want.GetName(), err)
		}
	}
	return nil
}

// isNoKind reports an error for a kind the apiserver does not serve.
func isNoKind(err error) bool { return meta.IsNoMatchError(err) }

// deleteEventPolicy removes gw's EventPolicy when the Gateway goes.
func (r *Reconciler) deleteEventPolicy(ctx context.Context, gw *v1.Gateway) error {
	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(eventPolicyGVK)
	err := r.reader.Get(ctx, client.ObjectKey{Namespace: r.opts.BrokerNamespace, Name: eventPolicyName(gw)}, got)
	switch {
	case isNoKind(err), apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("get event policy of gateway %s: %w", gw.Ref(), err)
	case !policyOf(got, gw):
		return nil
	}
	uid := got.GetUID()
	if err := r.client.Delete(ctx, got, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete event policy of gateway %s: %w", gw.Ref(), err)
	}
	return nil
}
