package steps_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wasmbed/wasmbed/api/digest"
	"github.com/wasmbed/wasmbed/api/events"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/eventauth"
	"github.com/wasmbed/wasmbed/internal/testenv"
	"github.com/wasmbed/wasmbed/operator/steps"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	if env, err = testenv.StartEnv(); err != nil {
		fmt.Fprintln(os.Stderr, "start test apiserver:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

type sink struct {
	mu  sync.Mutex
	got []cloudevents.Event
}

func (s *sink) Send(_ context.Context, e cloudevents.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, e)
	return nil
}

// TestOnlyTheSequenceAnswersForItsApplication: the steps-done endpoint takes an
// Application's steps result only from that Application's Sequence (the Subscription of
// its last step); any other authenticated sender, a step of its own included, is refused
// and nothing reaches the broker. This is what stops a sender from skipping a user's
// steps (a scanner, an approval) by answering for them.
func TestOnlyTheSequenceAnswersForItsApplication(t *testing.T) {
	ctx := context.Background()
	ns := "steps-done"
	aud := events.ReceiverAudience("operator")
	stranger := env.NewSender(t, ns, "stranger", aud) // creates the namespace too
	app := &v1.Application{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "scanned"},
		Spec: v1.ApplicationSpec{
			Source: v1.ApplicationSource{Module: &v1.ModuleSource{URL: "https://example.com/a.wasm"}},
			Steps:  []v1.PipelineStep{{URI: "http://scanner.example/"}, {URI: "http://approver.example/"}},
		},
	}
	if err := env.Client.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	seq, _ := steps.Names(app)
	saOf := func(user string) string { return user[strings.LastIndex(user, ":")+1:] }
	last := env.NewSender(t, ns, saOf(steps.ReplyUser(app)), aud)
	first := env.NewSender(t, ns, saOf(eventauth.SubscriptionUser(ns, seq+"-kn-sequence-0")), aud)
	if last.User == first.User {
		t.Fatalf("the first and last steps share %s", last.User)
	}
	policy := env.Policy(t, aud, nil)

	event := func(subject string) []byte {
		e, err := events.New(events.ModuleValidated, events.SourceValidate, subject, &events.ModuleValidatedData{
			Application: events.AppRef{Namespace: ns, Name: "scanned", Generation: 1},
			Digest:      digest.Of([]byte("module")), Size: 6,
		})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := e.MarshalJSON()
		return b
	}
	cases := []struct {
		name    string
		sender  *testenv.Sender
		subject string
		want    int
	}{
		{"no token", nil, ns + "/scanned", http.StatusUnauthorized},
		{"a stranger", &stranger, ns + "/scanned", http.StatusForbidden},
		{"the first step's subscription", &first, ns + "/scanned", http.StatusForbidden},
		{"the Sequence, about another Application", &last, ns + "/other", http.StatusUnprocessableEntity},
		{"the Sequence's reply", &last, ns + "/scanned", http.StatusAccepted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &sink{}
			h := steps.DoneHandler(s, env.Client, policy)
			req := httptest.NewRequest(http.MethodPost, "/steps-done", strings.NewReader(string(event(tc.subject))))
			req.Header.Set("content-type", "application/cloudevents+json")
			if tc.sender != nil {
				tok, err := tc.sender.Tokens.Token(ctx)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("authorization", "Bearer "+tok)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status %d (%s), want %d", rec.Code, strings.TrimSpace(rec.Body.String()), tc.want)
			}
			sent := 0
			if tc.want == http.StatusAccepted {
				sent = 1
			}
			if len(s.got) != sent {
				t.Fatalf("%d events sent to the broker, want %d", len(s.got), sent)
			}
			if sent == 1 && s.got[0].Extensions()[events.ExtSteps] != events.StepsDone {
				t.Fatalf("the event sent on is not marked done: %v", s.got[0].Extensions())
			}
		})
	}
}
