package eventauth_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/prometheus/client_golang/prometheus"
	authnv1 "k8s.io/api/authentication/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wasmbed/wasmbed/internal/eventauth"
	"github.com/wasmbed/wasmbed/internal/eventserver"
	"github.com/wasmbed/wasmbed/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

const audience = "wasmbed.dev/test/receiver"

// TestReceiverRefusesWhoItShould runs a real event server behind a policy checked by a
// real apiserver's TokenReview, and sends it events as several ServiceAccounts.
func TestReceiverRefusesWhoItShould(t *testing.T) {
	compile := env.NewSender(t, "wasmbed-system", "wasmbed-compile", audience)
	gateway := env.NewSender(t, "wasmbed-system", "wasmbed-gateway", audience)
	otherAud := env.NewSender(t, "wasmbed-system", "wasmbed-compile", "wasmbed.dev/test/elsewhere")
	reg := prometheus.NewRegistry()
	policy := env.Policy(t, audience, map[string][]testenv.Sender{"dev.wasmbed.module.built": {compile}}).
		WithObservability("test", reg, nil)
	handled := 0
	h := eventserver.HandlerFunc(func(context.Context, cloudevents.Event) (*cloudevents.Event, error) {
		handled++
		return nil, nil
	})
	srv := httptest.NewServer(eventserver.NewHTTPHandler("test", h, eventserver.Options{Auth: policy}))
	defer srv.Close()
	open := httptest.NewServer(eventserver.NewHTTPHandler("open", h, eventserver.Options{}))
	defer open.Close()

	token := func(ts eventauth.TokenSource) string {
		tok, err := ts.Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tests := []struct {
		name     string
		url      string
		auth     string
		typ      string
		wantCode int
		wantBody string
	}{
		{name: "allowed sender and type", url: srv.URL, auth: "Bearer " + token(compile.Tokens), typ: "dev.wasmbed.module.built", wantCode: 202},
		{name: "no token", url: srv.URL, typ: "dev.wasmbed.module.built", wantCode: 401, wantBody: "no token"},
		{name: "not a bearer token", url: srv.URL, auth: "Basic YWRtaW46YWRtaW4=", typ: "dev.wasmbed.module.built", wantCode: 401, wantBody: "no token"},
		{name: "garbage token", url: srv.URL, auth: "Bearer not-a-jwt", typ: "dev.wasmbed.module.built", wantCode: 401, wantBody: "invalid token"},
		{name: "token for another audience", url: srv.URL, auth: "Bearer " + token(otherAud.Tokens), typ: "dev.wasmbed.module.built", wantCode: 401, wantBody: "invalid token"},
		{name: "sender not allowed that type", url: srv.URL, auth: "Bearer " + token(gateway.Tokens), typ: "dev.wasmbed.module.built", wantCode: 403, wantBody: "may not send dev.wasmbed.module.built"},
		{name: "type nobody may send", url: srv.URL, auth: "Bearer " + token(compile.Tokens), typ: "dev.wasmbed.deployment.requested", wantCode: 403, wantBody: "may not send"},
		{name: "a receiver without a policy refuses all", url: open.URL, auth: "Bearer " + token(compile.Tokens), typ: "dev.wasmbed.module.built", wantCode: 401, wantBody: "no sender policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := handled
			req, _ := http.NewRequest(http.MethodPost, tt.url, strings.NewReader(`{}`))
			for k, v := range map[string]string{"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/t", "ce-type": tt.typ, "content-type": "application/json"} {
				req.Header.Set(k, v)
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantCode || !strings.Contains(string(body), tt.wantBody) {
				t.Fatalf("got %d %q, want %d containing %q", resp.StatusCode, body, tt.wantCode, tt.wantBody)
			}
			if got := handled - before; (tt.wantCode == 202) != (got == 1) {
				t.Fatalf("handler ran %d times", got)
			}
			if tt.wantCode == 401 && tt.url == srv.URL && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without a WWW-Authenticate challenge")
			}
			if strings.Contains(string(body), "eyJ") {
				t.Error("the answer echoes a token")
			}
		})
	}
	for reason, want := range map[string]float64{eventauth.ReasonNoToken: 2, eventauth.ReasonInvalidToken: 2, eventauth.ReasonForbiddenType: 2} {
		if got := refusals(t, reg, reason); got != want {
			t.Errorf("refusals{reason=%s} = %v, want %v", reason, got, want)
		}
	}
}

// refusals reads the refusal counter of one reason from reg.
func refusals(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "wasmbed_event_auth_refusals_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestVerifierRemembersAnswers checks that a refused token is not reviewed again at
// once, so a flood of one bad token costs the apiserver one review.
func TestVerifierRemembersAnswers(t *testing.T) {
	reviews := 0
	v, err := eventauth.NewVerifier(countingClient{env.Client, &reviews}, audience)
	if err != nil {
		t.Fatal(err)
	}
	s := env.NewSender(t, "wasmbed-system", "wasmbed-validate", audience)
	good, err := s.Tokens.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if id, err := v.Verify(context.Background(), good); err != nil || id != s.User {
			t.Fatalf("Verify(good) = %q, %v; want %q", id, err, s.User)
		}
		if _, err := v.Verify(context.Background(), "bad"); !errors.Is(err, eventauth.ErrUnauthenticated) {
			t.Fatalf("Verify(bad) = %v, want ErrUnauthenticated", err)
		}
	}
	if reviews != 2 {
		t.Fatalf("%d token reviews for 2 distinct tokens", reviews)
	}
	if _, err := v.Verify(context.Background(), strings.Repeat("x", eventauth.MaxTokenBytes+1)); !errors.Is(err, eventauth.ErrUnauthenticated) || reviews != 2 {
		t.Fatalf("an oversized token was reviewed or accepted: %v (%d reviews)", err, reviews)
	}
}

func TestTransportAndFile(t *testing.T) {
	s := env.NewSender(t, "wasmbed-system", "wasmbed-dispatch", audience)
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Get("Authorization") }))
	defer srv.Close()
	c := &http.Client{Transport: eventauth.Transport(nil, s.Tokens)}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.HasPrefix(got, "Bearer ey") {
		t.Fatalf("Authorization = %.20q", got)
	}
	path := t.TempDir() + "/token"
	if _, err := eventauth.File(path).Token(context.Background()); err == nil {
		t.Fatal("a missing token file gives a token")
	}
}

// countingClient counts the TokenReviews it creates.
type countingClient struct {
	client.Client
	n *int
}

func (c countingClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	if _, ok := obj.(*authnv1.TokenReview); ok {
		*c.n++
	}
	return c.Client.Create(ctx, obj, opts...)
}
