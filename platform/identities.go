package platform

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/internal/eventauth"
)

// identities gives each component and each Trigger of the embedded platform a
// ServiceAccount of the platform's own apiserver, as a cluster does: senders attach
// tokens the apiserver issues to them (TokenRequest), receivers check them with
// TokenReviews. No component shares another's identity, and nothing is switched off.
type identities struct {
	c client.Client
}

func newIdentities(ctx context.Context, c client.Client) (*identities, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: events.SystemNamespace}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("embedded: namespace %s: %w", events.SystemNamespace, err)
	}
	return &identities{c: c}, nil
}

// tokens creates the ServiceAccount sa in namespace if needed and returns its tokens
// for audience.
func (id *identities) tokens(ctx context.Context, namespace, sa, audience string) (eventauth.TokenSource, error) {
	obj := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: sa,
		Labels: map[string]string{"app.kubernetes.io/part-of": "wasmbed"}}}
	if err := id.c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("embedded: service account %s/%s: %w", namespace, sa, err)
	}
	ts, err := eventauth.NewRequester(id.c, types.NamespacedName{Namespace: namespace, Name: sa}, audience)
	if err != nil {
		return nil, err
	}
	if _, err := ts.Token(ctx); err != nil { // fail at start, not on the first event
		return nil, fmt.Errorf("embedded: %w", err)
	}
	return ts, nil
}

// component returns the tokens of a component's own ServiceAccount for the broker.
func (id *identities) component(ctx context.Context, component string) (eventauth.TokenSource, error) {
	return id.tokens(ctx, events.SystemNamespace, events.ServiceAccount(component), events.BrokerAudience())
}

// trigger returns the tokens a Trigger's deliveries carry to a subscriber's audience.
func (id *identities) trigger(ctx context.Context, namespace, trigger, audience string) (eventauth.TokenSource, error) {
	return id.tokens(ctx, namespace, eventauth.TriggerServiceAccount(trigger), audience)
}

// policy is a receiver's policy: tokens for audience, checked by this apiserver.
func (id *identities) policy(audience string, allow map[string][]string, logs *Logs, receiver string) (*eventauth.Policy, error) {
	p, err := eventauth.NewReceiverPolicy(id.c, audience, allow)
	if err != nil {
		return nil, err
	}
	return p.WithObservability(receiver, nil, logs.For(receiver)), nil
}
