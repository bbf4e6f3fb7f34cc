package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
)

// errNoToken is returned when a request carries no bearer token.
var errNoToken = errors.New("no bearer token")

// newScheme returns a scheme with the core Kubernetes kinds and the Wasmbed kinds.
func newScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("build scheme: %w", err)
	}
	if err := v1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("build scheme: %w", err)
	}
	return s, nil
}

// newMapper returns a static REST mapper for the few kinds the console uses, so a
// per-request client needs no discovery round trip.
func newMapper() meta.RESTMapper {
	core := schema.GroupVersion{Version: "v1"}
	m := meta.NewDefaultRESTMapper([]schema.GroupVersion{v1.SchemeGroupVersion, core,
		authnv1.SchemeGroupVersion, authzv1.SchemeGroupVersion})
	for _, k := range kinds { // explicit plurals: the guessed plural of Gateway is wrong
		gvk := v1.SchemeGroupVersion.WithKind(k.name)
		m.AddSpecific(gvk, v1.SchemeGroupVersion.WithResource(k.plural),
			v1.SchemeGroupVersion.WithResource(strings.ToLower(k.name)), meta.RESTScopeNamespace)
	}
	for _, k := range []string{"ConfigMap", "Event"} {
		m.Add(core.WithKind(k), meta.RESTScopeNamespace)
	}
	m.Add(core.WithKind("Namespace"), meta.RESTScopeRoot)
	m.Add(authnv1.SchemeGroupVersion.WithKind("SelfSubjectReview"), meta.RESTScopeRoot)
	m.Add(authzv1.SchemeGroupVersion.WithKind("SelfSubjectAccessReview"), meta.RESTScopeRoot)
	return m
}

// bearerToken returns the token of an "Authorization: Bearer" header.
func bearerToken(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", errNoToken
	}
	return strings.TrimSpace(tok), nil
}

// clientFor returns a client of the apiserver that acts as the holder of token: the
// base config keeps only the apiserver's address and CA, never the console's own
// credentials.
func (s *Server) clientFor(token string) (client.WithWatch, error) {
	cfg := rest.AnonymousClientConfig(s.cfg.REST)
	cfg.BearerToken = token
	cfg.UserAgent = "wasmbed-console"
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: s.scheme, Mapper: s.mapper})
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return c, nil
}

// canI asks the apiserver whether the client's user may do verb on resource in ns.
func canI(ctx context.Context, c client.Client, verb, resource, ns string) (bool, error) {
	r := &authzv1.SelfSubjectAccessReview{Spec: authzv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authzv1.ResourceAttributes{
			Namespace: ns, Verb: verb, Group: v1.GroupName, Resource: resource,
		},
	}}
	if err := c.Create(ctx, r); err != nil {
		return false, fmt.Errorf("access review: %w", err)
	}
	return r.Status.Allowed, nil
}

// listEvents returns the Kubernetes Events of kind in ns (all namespaces when empty),
// about one object when name is set, newest first, at most limit.
func listEvents(ctx context.Context, c client.Client, ns, kind, name string, limit int) ([]corev1.Event, error) {
	fields := client.MatchingFields{"involvedObject.apiVersion": v1.SchemeGroupVersion.String()}
	if kind != "" {
		fields["involvedObject.kind"] = kind
	}
	if name != "" {
		fields["involvedObject.name"] = name
	}
	var list corev1.EventList
	opts := []client.ListOption{fields}
	if ns != "" {
		opts = append(opts, client.InNamespace(ns))
	}
	if err := c.List(ctx, &list, opts...); err != nil {
		return nil, err
	}
	items := list.Items
	sortEvents(items)
	if len(items) > limit {
		items = items[:limit]
	}
	for i := range items {
		items[i].ManagedFields = nil
	}
	return items, nil
}

// eventTime is the most recent time an Event was seen.
func eventTime(e *corev1.Event) int64 {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.UnixNano()
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.UnixNano()
	case !e.EventTime.IsZero():
		return e.EventTime.UnixNano()
	default:
		return e.CreationTimestamp.UnixNano()
	}
}
