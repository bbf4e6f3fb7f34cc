package testenv

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/internal/eventauth"
)

// Sender is a ServiceAccount of the test apiserver that sends events: its user name,
// and tokens for one audience the apiserver issues to it.
type Sender struct {
	User   string
	Tokens eventauth.TokenSource
}

// NewSender creates the ServiceAccount namespace/name (and its namespace) if needed
// and returns it with a TokenSource for audience.
func (e *Env) NewSender(t testing.TB, namespace, name, audience string) Sender {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if err := e.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", namespace, err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if err := e.Client.Create(ctx, sa); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create service account %s/%s: %v", namespace, name, err)
	}
	ts, err := eventauth.NewRequester(e.Client, types.NamespacedName{Namespace: namespace, Name: name}, audience)
	if err != nil {
		t.Fatal(err)
	}
	return Sender{User: eventauth.ServiceAccountUser(namespace, name), Tokens: ts}
}

// Policy returns a receiver policy for audience that admits, for each event type in
// allow, the listed senders, verified by this apiserver.
func (e *Env) Policy(t testing.TB, audience string, allow map[string][]Sender) *eventauth.Policy {
	t.Helper()
	ids := map[string][]string{}
	for typ, senders := range allow {
		for _, s := range senders {
			ids[typ] = append(ids[typ], s.User)
		}
	}
	p, err := eventauth.NewReceiverPolicy(e.Client, audience, ids)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Receiver returns what a consumer's receiver has in a cluster, on this apiserver: its
// policy (eventauth.ReceiverAllow), and the Authorization header of the Trigger that
// delivers typ to it.
func (e *Env) Receiver(t testing.TB, consumer string, typ events.Type) (string, *eventauth.Policy) {
	t.Helper()
	aud := events.ReceiverAudience(consumer)
	s := e.NewSender(t, events.SystemNamespace, eventauth.TriggerServiceAccount(events.TriggerName(consumer, typ)), aud)
	tok, err := s.Tokens.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p, err := eventauth.NewReceiverPolicy(e.Client, aud, eventauth.ReceiverAllow(consumer))
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + tok, p
}
