package eventauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TokenSource gives the bearer token a sender attaches to its requests.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// Requester asks the apiserver for tokens of one ServiceAccount for one audience (the
// TokenRequest API) and renews each when a fifth of its life is left.
type Requester struct {
	c        client.Client
	sa       types.NamespacedName
	audience string
	ttl      time.Duration
	now      func() time.Time

	mu    sync.Mutex
	token string
	renew time.Time
}

// NewRequester returns a TokenSource for the ServiceAccount sa and audience. The
// client's identity needs create on serviceaccounts/token for sa.
func NewRequester(c client.Client, sa types.NamespacedName, audience string) (*Requester, error) {
	if c == nil || sa.Name == "" || sa.Namespace == "" || audience == "" {
		return nil, errors.New("eventauth: a client, a service account and an audience are required")
	}
	return &Requester{c: c, sa: sa, audience: audience, ttl: time.Hour, now: time.Now}, nil
}

// Token returns a valid token, asking for a new one when needed.
func (r *Requester) Token(ctx context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.token != "" && r.now().Before(r.renew) {
		return r.token, nil
	}
	secs := int64(r.ttl / time.Second)
	req := &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{Audiences: []string{r.audience}, ExpirationSeconds: &secs}}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: r.sa.Namespace, Name: r.sa.Name}}
	if err := r.c.SubResource("token").Create(ctx, sa, req); err != nil {
		return "", fmt.Errorf("request a token of %s for %s: %w", r.sa, r.audience, err)
	}
	now := r.now()
	life := req.Status.ExpirationTimestamp.Sub(now)
	if req.Status.Token == "" || life <= 0 {
		return "", fmt.Errorf("request a token of %s: the apiserver returned none", r.sa)
	}
	r.token, r.renew = req.Status.Token, now.Add(life*4/5)
	return r.token, nil
}

// File reads the token Kubernetes projects into a pod (a serviceAccountToken volume
// with the receiver's audience); the kubelet renews the file, so it is read each time.
type File string

// Token returns the file's content.
func (f File) Token(context.Context) (string, error) {
	b, err := os.ReadFile(string(f))
	if err != nil {
		return "", fmt.Errorf("read token: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("read token: %s is empty", f)
	}
	return t, nil
}

// Header returns the Authorization header carrying a token of ts.
func Header(ctx context.Context, ts TokenSource) (http.Header, error) {
	t, err := ts.Token(ctx)
	if err != nil {
		return nil, err
	}
	return http.Header{"Authorization": []string{"Bearer " + t}}, nil
}

// Transport adds a token of ts to every request that base sends.
func Transport(base http.RoundTripper, ts TokenSource) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return roundTripper{base: base, ts: ts}
}

type roundTripper struct {
	base http.RoundTripper
	ts   TokenSource
}

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	t, err := rt.ts.Token(req.Context())
	if err != nil {
		return nil, err
	}
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+t)
	return rt.base.RoundTrip(req)
}

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(h http.Header) (string, bool) {
	v := h.Get("Authorization")
	scheme, t, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	t = strings.TrimSpace(t)
	return t, t != ""
}

// expiry reads the exp claim of a JWT without verifying it (the TokenReview did), to
// stop trusting a cached answer once the token expires.
func expiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(b, &claims) != nil || claims.Exp <= 0 {
		return time.Time{}, false
	}
	return time.Unix(claims.Exp, 0), true
}

// ServiceAccountUser is the user name Kubernetes gives a ServiceAccount's tokens.
func ServiceAccountUser(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}
