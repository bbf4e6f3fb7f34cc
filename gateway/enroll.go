package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/wasmbed/wasmbed/internal/pki"
)

// Tokens is a set of one-time bootstrap tokens, each bound to one device identity. It
// is the pki.Approver of local enrollment: a request is approved when it carries a
// token bound to the identity it asks for, and the token is then spent.
type Tokens struct {
	mu     sync.Mutex
	tokens map[string]pki.Identity
}

// NewTokens returns a token set.
func NewTokens(tokens map[string]pki.Identity) *Tokens {
	t := &Tokens{tokens: map[string]pki.Identity{}}
	for k, v := range tokens {
		t.tokens[k] = v
	}
	return t
}

// LoadTokens reads a file of "<token> <namespace>/<name>" lines ("#" comments).
func LoadTokens(path string) (*Tokens, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read tokens: %w", err)
	}
	t := NewTokens(nil)
	for n, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("tokens line %d: want <token> <namespace>/<name>", n+1)
		}
		ns, name, _ := strings.Cut(f[1], "/")
		id, err := pki.NewIdentity(ns, name)
		if err != nil {
			return nil, fmt.Errorf("tokens line %d: %w", n+1, err)
		}
		t.tokens[f[0]] = id
	}
	return t, nil
}

type tokenKey struct{}

// identity returns the identity a token is bound to.
func (t *Tokens) identity(token string) (pki.Identity, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	id, ok := t.tokens[token]
	return id, ok
}

// Approve spends the request's token if it is bound to the requested identity.
func (t *Tokens) Approve(ctx context.Context, req pki.SignRequest) error {
	token, _ := ctx.Value(tokenKey{}).(string)
	t.mu.Lock()
	defer t.mu.Unlock()
	id, ok := t.tokens[token]
	if !ok || token == "" {
		return errors.New("unknown or spent bootstrap token")
	}
	if id != req.Identity {
		return fmt.Errorf("token is for %s, not %s", id, req.Identity)
	}
	delete(t.tokens, token)
	return nil
}

// Enroller serves POST /enroll: a device sends {"token", "csr"} (PEM) and gets back
// {"certificate", "ca"} (PEM) for the identity its bootstrap token is bound to.
type Enroller struct {
	signer *pki.Signer
	tokens *Tokens
	caPEM  []byte
	log    *slog.Logger
	count  func(result string)
}

// NewEnroller returns an enrollment handler signing with signer (whose Approver should
// be tokens) and returning caPEM as the CA devices must trust.
func NewEnroller(signer *pki.Signer, tokens *Tokens, caPEM []byte, log *slog.Logger) *Enroller {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Enroller{signer: signer, tokens: tokens, caPEM: caPEM, log: log, count: func(string) {}}
}

// SetEnroller enables POST /enroll on the HTTP handler.
func (s *Server) SetEnroller(e *Enroller) {
	e.count = func(result string) { s.m.enrollments.WithLabelValues(result).Inc() }
	e.log = s.log
	s.mu.Lock()
	s.enroll = e
	s.mu.Unlock()
}

func (s *Server) enroller() *Enroller {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.enroll
}

type enrollRequest struct {
	Token string `json:"token"`
	CSR   string `json:"csr"`
}

type enrollResponse struct {
	Certificate string `json:"certificate"`
	CA          string `json:"ca"`
}

// ServeHTTP handles one enrollment.
func (e *Enroller) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req enrollRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil || req.Token == "" || req.CSR == "" {
		e.count("bad-request")
		http.Error(w, "want JSON {\"token\", \"csr\"}", http.StatusBadRequest)
		return
	}
	id, ok := e.tokens.identity(req.Token)
	if !ok {
		e.count("denied")
		e.log.Warn("enrollment denied", "reason", "unknown token", "remote", r.RemoteAddr)
		http.Error(w, "unknown or spent bootstrap token", http.StatusForbidden)
		return
	}
	ctx := context.WithValue(r.Context(), tokenKey{}, req.Token)
	certPEM, err := e.signer.Sign(ctx, []byte(req.CSR), id)
	switch {
	case errors.Is(err, pki.ErrDenied):
		e.count("denied")
		e.log.Warn("enrollment denied", "device", id.String(), "err", err)
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	case err != nil:
		e.count("bad-request")
		e.log.Warn("enrollment refused", "device", id.String(), "err", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	e.count("signed")
	e.log.Info("device enrolled", "device", id.String())
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(enrollResponse{Certificate: string(certPEM), CA: string(e.caPEM)})
}
