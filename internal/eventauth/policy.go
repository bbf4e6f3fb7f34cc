package eventauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/prometheus/client_golang/prometheus"
)

// Refusal reasons, the label of the refusals metric.
const (
	ReasonNoToken       = "no_token"
	ReasonInvalidToken  = "invalid_token"
	ReasonReviewFailed  = "review_failed"
	ReasonForbiddenType = "forbidden_type"
	// ReasonForbiddenSender: the sender may send the type, but not about this object
	// (Forbid).
	ReasonForbiddenSender = "forbidden_sender"
)

// Refusal is why a request was not admitted, with the HTTP status to answer.
type Refusal struct {
	Code   int
	Reason string
	Err    error
}

func (r *Refusal) Error() string { return r.Reason + ": " + r.Err.Error() }
func (r *Refusal) Unwrap() error { return r.Err }

// Policy is what one receiver admits: tokens for its audience, from the identities
// allowed for each event type.
type Policy struct {
	verifier TokenVerifier
	allow    map[string][]string
	refused  *prometheus.CounterVec
	log      *slog.Logger
}

// NewPolicy returns the policy of a receiver: allow maps each event type it accepts to
// the identities (Kubernetes user names) that may send it. A type that is not in allow
// is refused from everyone.
func NewPolicy(v TokenVerifier, allow map[string][]string) (*Policy, error) {
	if v == nil {
		return nil, errors.New("eventauth: a policy needs a verifier")
	}
	cp := make(map[string][]string, len(allow))
	for t, ids := range allow {
		if t == "" || len(ids) == 0 || slices.Contains(ids, "") {
			return nil, fmt.Errorf("eventauth: event type %q: empty type or identity", t)
		}
		cp[t] = slices.Clone(ids)
	}
	return &Policy{verifier: v, allow: cp, log: slog.New(slog.DiscardHandler)}, nil
}

// NewReceiverPolicy is the policy of a receiver whose tokens the apiserver behind c
// checks: tokens for audience, from the identities allow names per event type.
func NewReceiverPolicy(c client.Client, audience string, allow map[string][]string) (*Policy, error) {
	v, err := NewVerifier(c, audience)
	if err != nil {
		return nil, err
	}
	return NewPolicy(v, allow)
}

// Admit authenticates r's sender under p and returns its identity; when it cannot,
// it has answered r (401 without a policy or a valid token) and returns false.
func Admit(p *Policy, w http.ResponseWriter, r *http.Request) (string, bool) {
	if p == nil {
		http.Error(w, "this receiver has no sender policy: every request is refused", http.StatusUnauthorized)
		return "", false
	}
	id, err := p.Authenticate(r.Context(), r)
	if err != nil {
		Write(w, err)
		return "", false
	}
	return id, true
}

// WithObservability counts refusals on reg (wasmbed_event_auth_refusals_total, by
// receiver and reason) and logs each on log. It returns p.
func (p *Policy) WithObservability(receiver string, reg prometheus.Registerer, log *slog.Logger) *Policy {
	if log != nil {
		p.log = log
	}
	if reg != nil {
		p.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmbed_event_auth_refusals_total", Help: "Requests refused by sender authentication, by reason.",
			ConstLabels: prometheus.Labels{"receiver": receiver},
		}, []string{"reason"})
		if err := reg.Register(p.refused); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				p.refused = are.ExistingCollector.(*prometheus.CounterVec)
			}
		}
	}
	return p
}

// Authenticate returns the identity of the request's bearer token, or a *Refusal (401
// without a valid token, 503 when the apiserver could not be asked).
func (p *Policy) Authenticate(ctx context.Context, r *http.Request) (string, error) {
	token, ok := bearer(r.Header)
	if !ok {
		return "", p.refuse(r, "", &Refusal{Code: http.StatusUnauthorized, Reason: ReasonNoToken, Err: errors.New("no bearer token")})
	}
	id, err := p.verifier.Verify(ctx, token)
	switch {
	case errors.Is(err, ErrUnauthenticated):
		return "", p.refuse(r, "", &Refusal{Code: http.StatusUnauthorized, Reason: ReasonInvalidToken, Err: err})
	case err != nil:
		return "", p.refuse(r, "", &Refusal{Code: http.StatusServiceUnavailable, Reason: ReasonReviewFailed, Err: err})
	}
	return id, nil
}

// Allows reports whether id may send events of type t. An allowed identity ending in
// "*" matches every identity that starts with what precedes it, as in Knative's
// EventPolicy.
func (p *Policy) Allows(id, t string) bool {
	for _, a := range p.allow[t] {
		if a == id || (strings.HasSuffix(a, "*") && strings.HasPrefix(id, a[:len(a)-1])) {
			return true
		}
	}
	return false
}

// Authorize returns nil when id may send events of type t, else a 403 *Refusal.
func (p *Policy) Authorize(r *http.Request, id, t string) error {
	if p.Allows(id, t) {
		return nil
	}
	return p.refuse(r, id, &Refusal{Code: http.StatusForbidden, Reason: ReasonForbiddenType,
		Err: fmt.Errorf("%s may not send %.100s here", id, t)})
}

// Forbid refuses an authenticated sender that may not send this event about what it
// names (a receiver's own rule beyond the type table): 403, counted and logged like
// every refusal.
func (p *Policy) Forbid(r *http.Request, id string, why error) error {
	return p.refuse(r, id, &Refusal{Code: http.StatusForbidden, Reason: ReasonForbiddenSender, Err: why})
}

func (p *Policy) refuse(r *http.Request, id string, ref *Refusal) error {
	if p.refused != nil {
		p.refused.WithLabelValues(ref.Reason).Inc()
	}
	p.log.Warn("event refused", "reason", ref.Reason, "sender", id, "remote", r.RemoteAddr, "err", ref.Err)
	return ref
}

// Write answers a refusal: its status, a WWW-Authenticate challenge on 401, and a
// short reason (never the token).
func Write(w http.ResponseWriter, err error) {
	var ref *Refusal
	if !errors.As(err, &ref) {
		http.Error(w, "refused", http.StatusForbidden)
		return
	}
	if ref.Code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="wasmbed"`)
	}
	msg := ref.Err.Error()
	if ref.Code != http.StatusForbidden {
		msg = strings.ReplaceAll(ref.Reason, "_", " ")
	}
	http.Error(w, msg, ref.Code)
}
