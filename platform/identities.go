package platform

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/config"
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

// BoardManagerServiceAccount is the board manager's identity, as in
// config/200-rbac/400-board-manager.yaml.
const BoardManagerServiceAccount = "wasmbed-board-manager"

// boardManager applies the board manager's ServiceAccount and bindings from config/
// (read Devices, send certificate signing requests, enroll Devices) and returns a rest
// config acting as that ServiceAccount, with tokens from the TokenRequest API for the
// apiserver's own audience, renewed before they expire. The board manager enrolls its
// boards' keys with these rights; it is given no CA key.
func (id *identities) boardManager(ctx context.Context, admin *rest.Config) (*rest.Config, error) {
	for _, file := range []string{"200-rbac/300-device-enroller.yaml", "200-rbac/400-board-manager.yaml"} {
		raw, err := config.BoardManagerRBAC.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("embedded: %w", err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return nil, fmt.Errorf("embedded: config/%s: %w", file, err)
			}
			if len(u.Object) == 0 {
				continue
			}
			if err := id.c.Create(ctx, u); err != nil && !apierrors.IsAlreadyExists(err) {
				return nil, fmt.Errorf("embedded: config/%s: %s %s: %w", file, u.GetKind(), u.GetName(), err)
			}
		}
	}
	ts := &apiTokens{c: id.c, sa: types.NamespacedName{Namespace: events.SystemNamespace, Name: BoardManagerServiceAccount}}
	if _, err := ts.token(ctx); err != nil { // fail at start, not on the first request
		return nil, err
	}
	cfg := rest.AnonymousClientConfig(admin)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return &bearer{ts: ts, next: rt} }
	return cfg, nil
}

// apiTokens are a ServiceAccount's tokens for the apiserver itself (a TokenRequest
// with no audience gets the apiserver's), renewed at four fifths of their life.
type apiTokens struct {
	c  client.Client
	sa types.NamespacedName

	mu    sync.Mutex
	tok   string
	renew time.Time
}

func (t *apiTokens) token(ctx context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tok != "" && time.Now().Before(t.renew) {
		return t.tok, nil
	}
	secs := int64(time.Hour / time.Second)
	req := &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: &secs}}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: t.sa.Namespace, Name: t.sa.Name}}
	if err := t.c.SubResource("token").Create(ctx, sa, req); err != nil {
		return "", fmt.Errorf("embedded: request a token of %s: %w", t.sa, err)
	}
	life := time.Until(req.Status.ExpirationTimestamp.Time)
	if req.Status.Token == "" || life <= 0 {
		return "", fmt.Errorf("embedded: request a token of %s: the apiserver returned none", t.sa)
	}
	t.tok, t.renew = req.Status.Token, time.Now().Add(life*4/5)
	return t.tok, nil
}

// bearer sends each request with the ServiceAccount's current token.
type bearer struct {
	ts   *apiTokens
	next http.RoundTripper
}

func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	tok, err := b.ts.token(r.Context())
	if err != nil {
		return nil, err
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+tok)
	return b.next.RoundTrip(r)
}
