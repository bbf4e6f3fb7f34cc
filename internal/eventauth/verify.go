package eventauth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// MaxTokenBytes bounds a bearer token; Kubernetes' tokens are a little over 1 KiB.
const MaxTokenBytes = 8 << 10

// ErrUnauthenticated is wrapped by Verify's errors for a token the apiserver does not
// accept for the audience.
var ErrUnauthenticated = errors.New("token not accepted")

// TokenVerifier turns a bearer token into the name of the identity it was issued to.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (string, error)
}

// Verifier checks tokens for one audience with TokenReviews, and remembers each answer
// for a short while: an accepted token until it expires or for Positive, whichever is
// sooner, a refused one for Negative, so that a flood of bad tokens costs the apiserver
// one review per distinct token and interval.
type Verifier struct {
	c        client.Client
	audience string
	// Positive and Negative bound how long an answer is reused. Defaults 1 min and 10 s.
	Positive, Negative time.Duration
	// MaxEntries bounds the cache. Default 4096.
	MaxEntries int
	now        func() time.Time

	mu    sync.Mutex
	cache map[[32]byte]answer
}

type answer struct {
	user  string
	err   error
	until time.Time
}

// NewVerifier returns a Verifier for audience that asks the apiserver behind c.
func NewVerifier(c client.Client, audience string) (*Verifier, error) {
	if c == nil || audience == "" {
		return nil, errors.New("eventauth: a Kubernetes client and an audience are required")
	}
	return &Verifier{c: c, audience: audience, Positive: time.Minute, Negative: 10 * time.Second,
		MaxEntries: 4096, now: time.Now, cache: map[[32]byte]answer{}}, nil
}

// Audience returns the audience tokens must be issued for.
func (v *Verifier) Audience() string { return v.audience }

// Verify returns the user name the token was issued to, e.g.
// "system:serviceaccount:wasmbed-system:wasmbed-compile", or an error wrapping
// ErrUnauthenticated.
func (v *Verifier) Verify(ctx context.Context, token string) (string, error) {
	if token == "" || len(token) > MaxTokenBytes {
		return "", fmt.Errorf("%w: empty or over %d bytes", ErrUnauthenticated, MaxTokenBytes)
	}
	key := sha256.Sum256([]byte(token))
	now := v.now()
	v.mu.Lock()
	a, ok := v.cache[key]
	v.mu.Unlock()
	if ok && now.Before(a.until) {
		return a.user, a.err
	}
	user, err := v.review(ctx, token)
	if err != nil && !errors.Is(err, ErrUnauthenticated) {
		return "", err // the apiserver did not answer: nothing to remember
	}
	a = answer{user: user, err: err, until: now.Add(v.Negative)}
	if err == nil {
		a.until = now.Add(v.Positive)
		if exp, ok := expiry(token); ok && exp.Before(a.until) {
			a.until = exp
		}
	}
	v.mu.Lock()
	if len(v.cache) >= v.MaxEntries {
		v.evictLocked(now)
	}
	v.cache[key] = a
	v.mu.Unlock()
	return user, err
}

func (v *Verifier) review(ctx context.Context, token string) (string, error) {
	tr := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token, Audiences: []string{v.audience}}}
	if err := v.c.Create(ctx, tr); err != nil {
		return "", fmt.Errorf("token review: %w", err)
	}
	switch {
	case !tr.Status.Authenticated:
		reason := tr.Status.Error
		if reason == "" {
			reason = "not authenticated"
		}
		return "", fmt.Errorf("%w: %s", ErrUnauthenticated, reason)
	case !slices.Contains(tr.Status.Audiences, v.audience):
		return "", fmt.Errorf("%w: not issued for audience %s", ErrUnauthenticated, v.audience)
	case tr.Status.User.Username == "":
		return "", fmt.Errorf("%w: no user name", ErrUnauthenticated)
	}
	return tr.Status.User.Username, nil
}

// evictLocked drops expired answers, and if that frees nothing, every answer.
func (v *Verifier) evictLocked(now time.Time) {
	for k, a := range v.cache {
		if !now.Before(a.until) {
			delete(v.cache, k)
		}
	}
	if len(v.cache) >= v.MaxEntries {
		clear(v.cache)
	}
}
