package broker_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/wasmbed/wasmbed/internal/broker"
	"github.com/wasmbed/wasmbed/internal/eventauth"
	"github.com/wasmbed/wasmbed/internal/testenv"
)

// sub is a real HTTP subscriber that records events and answers as told.
type sub struct {
	mu     sync.Mutex
	got    []cloudevents.Event
	answer func(n int, e cloudevents.Event) (int, *cloudevents.Event)
	onAuth func(authorization string)
	srv    *httptest.Server
}

func newSub(t *testing.T, answer func(n int, e cloudevents.Event) (int, *cloudevents.Event)) *sub {
	s := &sub{answer: answer}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.onAuth != nil {
			s.onAuth(r.Header.Get("Authorization"))
		}
		e, err := cehttp.NewEventFromHTTPRequest(r)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		s.mu.Lock()
		s.got = append(s.got, *e)
		n := len(s.got)
		s.mu.Unlock()
		code, reply := http.StatusAccepted, (*cloudevents.Event)(nil)
		if s.answer != nil {
			code, reply = s.answer(n, *e)
		}
		if reply != nil {
			if err := cehttp.WriteResponseWriter(context.Background(), binding.ToMessage(reply), code, w); err != nil {
				t.Errorf("write reply: %v", err)
			}
			return
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sub) events() []cloudevents.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]cloudevents.Event(nil), s.got...)
}

func ev(typ, subject, id string) cloudevents.Event {
	e := cloudevents.NewEvent()
	e.SetID(id)
	e.SetType(typ)
	e.SetSource("/test")
	e.SetSubject(subject)
	_ = e.SetData(cloudevents.ApplicationJSON, map[string]string{"id": id})
	return e
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

const ingressAudience = "wasmbed.dev/test/broker"

// auth returns a Header of the sender's token.
func token(t *testing.T, ts eventauth.TokenSource) string {
	t.Helper()
	tok, err := ts.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + tok
}

var fast = broker.Delivery{Retry: 3, BackoffPolicy: broker.BackoffExponential, BackoffDelay: 5 * time.Millisecond}

func TestFilterIsExactAttributeMatch(t *testing.T) {
	built := newSub(t, nil)
	gw1 := newSub(t, nil)
	all := newSub(t, nil)
	b, err := broker.New(broker.Config{},
		broker.Trigger{Name: "built", Filter: map[string]string{"type": "dev.wasmbed.module.built"}, Subscriber: built.srv.URL, Delivery: fast},
		broker.Trigger{Name: "gw1", Filter: map[string]string{"type": "dev.wasmbed.deployment.requested", "wasmbedgateway": "ns.gw1"}, Subscriber: gw1.srv.URL, Delivery: fast},
		broker.Trigger{Name: "all", Subscriber: all.srv.URL, Delivery: fast},
	)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	e1 := ev("dev.wasmbed.module.built", "default/a", "1")
	e2 := ev("dev.wasmbed.deployment.requested", "default/a", "2")
	e2.SetExtension("wasmbedgateway", "ns.gw1")
	e3 := ev("dev.wasmbed.deployment.requested", "default/a", "3")
	e3.SetExtension("wasmbedgateway", "ns.gw2")
	e4 := ev("dev.wasmbed.module.built.v2", "default/a", "4") // prefix is not a match
	for _, e := range []cloudevents.Event{e1, e2, e3, e4} {
		if err := b.Publish(e); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "all four on the catch-all trigger", func() bool { return len(all.events()) == 4 })
	eventually(t, "one on each filtered trigger", func() bool { return len(built.events()) == 1 && len(gw1.events()) == 1 })
	time.Sleep(50 * time.Millisecond)
	if got := built.events(); len(got) != 1 || got[0].ID() != "1" {
		t.Errorf("built trigger got %d events", len(got))
	}
	if got := gw1.events(); len(got) != 1 || got[0].ID() != "2" {
		t.Errorf("gw1 trigger got %d events", len(got))
	}
}

// TestReplyIsPublishedBack checks that a subscriber's reply goes back into the broker as
// the Trigger's own event, only when the Trigger's identity may send that type, and
// that each delivery carries a token of the Trigger's identity for the subscriber.
func TestReplyIsPublishedBack(t *testing.T) {
	compile := env.NewSender(t, "wasmbed-system", "compile-trigger", "wasmbed.dev/test/compile")
	validate := env.NewSender(t, "wasmbed-system", "validate-trigger", "wasmbed.dev/test/validate")
	ingress := env.Policy(t, ingressAudience, map[string][]testenv.Sender{"dev.wasmbed.module.built": {compile}})
	receiver := env.Policy(t, "wasmbed.dev/test/compile", nil)
	next := newSub(t, nil)
	var gotAuth []string
	var mu sync.Mutex
	first := newSub(t, func(_ int, e cloudevents.Event) (int, *cloudevents.Event) {
		typ := "dev.wasmbed.module.built"
		if e.ID() == "8" {
			typ = "dev.wasmbed.deployment.requested" // a compromised function's reply
		}
		r := ev(typ, e.Subject(), "reply-"+e.ID())
		return http.StatusOK, &r
	})
	first.onAuth = func(h string) { mu.Lock(); gotAuth = append(gotAuth, h); mu.Unlock() }
	b, err := broker.New(broker.Config{Ingress: ingress},
		broker.Trigger{Name: "compile", Filter: map[string]string{"type": "dev.wasmbed.build.requested"}, Subscriber: first.srv.URL, Delivery: fast,
			Identity: compile.User, Tokens: compile.Tokens},
		broker.Trigger{Name: "validate", Filter: map[string]string{"type": "dev.wasmbed.module.built"}, Subscriber: next.srv.URL, Delivery: fast,
			Identity: validate.User, Tokens: validate.Tokens},
		broker.Trigger{Name: "gateway", Filter: map[string]string{"type": "dev.wasmbed.deployment.requested"}, Subscriber: next.srv.URL, Delivery: fast},
	)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, id := range []string{"7", "8"} {
		if err := b.Publish(ev("dev.wasmbed.build.requested", "default/a", id)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the reply at the next trigger", func() bool { return len(next.events()) == 1 })
	eventually(t, "both requests at the first trigger", func() bool { return len(first.events()) == 2 })
	time.Sleep(50 * time.Millisecond) // a forbidden reply, were it published, would arrive now
	if got := next.events(); len(got) != 1 || got[0].ID() != "reply-7" {
		t.Fatalf("next got %d events (%v): the forbidden reply was published", len(got), got)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, h := range gotAuth {
		req, _ := http.NewRequest(http.MethodPost, "/", nil)
		req.Header.Set("Authorization", h)
		if id, err := receiver.Authenticate(context.Background(), req); err != nil || id != compile.User {
			t.Fatalf("delivery carried %q: %v", id, err)
		}
	}
}

func TestRetriesAndDeadLetter(t *testing.T) {
	cases := []struct {
		name         string
		answer       func(n int) int
		wantAttempts int
		wantDead     bool
		wantCode     string
	}{
		{"5xx then success", func(n int) int {
			if n < 3 {
				return 503
			}
			return 202
		}, 3, false, ""},
		{"429 is retried", func(n int) int {
			if n < 2 {
				return 429
			}
			return 200
		}, 2, false, ""},
		{"400 is not retried", func(int) int { return 400 }, 1, true, "400"},
		{"retries exhausted", func(int) int { return 500 }, 4, true, "500"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			target := newSub(t, func(n int, _ cloudevents.Event) (int, *cloudevents.Event) { return tc.answer(n), nil })
			dead := newSub(t, nil)
			d := fast
			d.DeadLetterSink = dead.srv.URL
			b, err := broker.New(broker.Config{}, broker.Trigger{Name: "t", Subscriber: target.srv.URL, Delivery: d})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if err := b.Publish(ev("x.y", "s", "1")); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the attempts", func() bool { return len(target.events()) >= tc.wantAttempts })
			if tc.wantDead {
				eventually(t, "the dead letter", func() bool { return len(dead.events()) == 1 })
				dl := dead.events()[0]
				if got := fmt.Sprint(dl.Extensions()["knativeerrorcode"]); got != tc.wantCode {
					t.Errorf("knativeerrorcode = %q, want %q", got, tc.wantCode)
				}
				if fmt.Sprint(dl.Extensions()["knativeerrordest"]) != target.srv.URL {
					t.Errorf("knativeerrordest = %v", dl.Extensions()["knativeerrordest"])
				}
				data, _ := base64.StdEncoding.DecodeString(fmt.Sprint(dl.Extensions()["knativeerrordata"]))
				if !strings.Contains(string(data), tc.wantCode) {
					t.Errorf("knativeerrordata = %q", data)
				}
			}
			time.Sleep(100 * time.Millisecond)
			if got := len(target.events()); got != tc.wantAttempts {
				t.Errorf("%d attempts, want %d", got, tc.wantAttempts)
			}
			if !tc.wantDead && len(dead.events()) != 0 {
				t.Errorf("dead-lettered an event that was delivered")
			}
		})
	}
}

func TestOrderedPerSubject(t *testing.T) { testOrdered(t, false) }

// TestOrderedPerPartitionKey: events of one subject with different partition keys (a
// gateway's deployment results for one Application, from many devices) keep the order
// of each key.
func TestOrderedPerPartitionKey(t *testing.T) { testOrdered(t, true) }

func testOrdered(t *testing.T, byKey bool) {
	// The first event of subject A fails twice: the rest of A must wait for it, while
	// subject B flows.
	var mu sync.Mutex
	failures := map[string]int{}
	target := newSub(t, func(_ int, e cloudevents.Event) (int, *cloudevents.Event) {
		mu.Lock()
		defer mu.Unlock()
		if e.ID() == "A0" && failures["A0"] < 2 {
			failures["A0"]++
			return 503, nil
		}
		return 202, nil
	})
	b, err := broker.New(broker.Config{Workers: 8}, broker.Trigger{Name: "t", Subscriber: target.srv.URL, Delivery: fast})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i := 0; i < 20; i++ {
		for _, s := range []string{"A", "B"} {
			e := ev("x", s, fmt.Sprintf("%s%d", s, i))
			if byKey {
				e.SetSubject("one-app")
				e.SetExtension("partitionkey", s)
			}
			if err := b.Publish(e); err != nil {
				t.Fatal(err)
			}
		}
	}
	eventually(t, "all events", func() bool { return len(target.events()) == 42 })
	next := map[string]int{}
	for _, e := range target.events() {
		s := e.Subject()
		if byKey {
			s = fmt.Sprint(e.Extensions()["partitionkey"])
		}
		want := fmt.Sprintf("%s%d", s, next[s])
		if e.ID() == want {
			next[s]++
		} else if e.ID() != "A0" { // A0's failed attempts repeat A0
			t.Fatalf("subject %s: got %s, want %s (out of order)", s, e.ID(), want)
		}
	}
}

func TestIngress(t *testing.T) {
	target := newSub(t, nil)
	allowed := env.NewSender(t, "wasmbed-system", "ingress-sender", ingressAudience)
	other := env.NewSender(t, "wasmbed-system", "ingress-other", ingressAudience)
	ingress := env.Policy(t, ingressAudience, map[string][]testenv.Sender{"x": {allowed}})
	b, err := broker.New(broker.Config{Ingress: ingress}, broker.Trigger{Name: "t", Subscriber: target.srv.URL, Delivery: fast})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	srv := httptest.NewServer(b)
	defer srv.Close()

	good, bad := token(t, allowed.Tokens), token(t, other.Tokens)
	binary := func() *http.Request {
		r, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(`{"a":1}`))
		r.Header.Set("Authorization", good)
		r.Header.Set("ce-specversion", "1.0")
		r.Header.Set("ce-id", "b1")
		r.Header.Set("ce-type", "x")
		r.Header.Set("ce-source", "/curl")
		r.Header.Set("content-type", "application/json")
		return r
	}
	structured := func() *http.Request {
		r, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(`{"specversion":"1.0","id":"s1","type":"x","source":"/curl","data":{"a":1}}`))
		r.Header.Set("content-type", "application/cloudevents+json")
		r.Header.Set("Authorization", good)
		return r
	}
	notEvent := func() *http.Request {
		r, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(`hello`))
		r.Header.Set("Authorization", good)
		return r
	}
	anonymous := func() *http.Request { r := binary(); r.Header.Del("Authorization"); return r }
	otherSender := func() *http.Request { r := binary(); r.Header.Set("Authorization", bad); return r }
	otherType := func() *http.Request {
		r := binary()
		r.Header.Set("ce-type", "dev.wasmbed.deployment.requested")
		return r
	}
	get := func() *http.Request { r, _ := http.NewRequest(http.MethodGet, srv.URL, nil); return r }
	cases := []struct {
		name string
		req  func() *http.Request
		code int
	}{
		{"binary", binary, 202},
		{"structured", structured, 202},
		{"not an event", notEvent, 400},
		{"no token", anonymous, 401},
		{"a sender not allowed that type", otherSender, 403},
		{"a type nobody may send", otherType, 403},
		{"GET", get, 405},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.DefaultClient.Do(tc.req())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.code)
			}
		})
	}
	eventually(t, "both accepted events delivered", func() bool { return len(target.events()) == 2 })
}

func TestNewRefusesBadTriggers(t *testing.T) {
	for _, trs := range [][]broker.Trigger{
		{{Name: "", Subscriber: "http://x"}},
		{{Name: "a", Subscriber: "http://x"}, {Name: "a", Subscriber: "http://y"}},
		{{Name: "a"}},
	} {
		if b, err := broker.New(broker.Config{}, trs...); err == nil {
			b.Close()
			t.Errorf("New(%+v) succeeded", trs)
		}
	}
}
