package eventserver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/internal/eventauth"
	"github.com/wasmbed/wasmbed/internal/eventserver"
	"github.com/wasmbed/wasmbed/internal/testenv"
)

// echo replies with an event of type "<type>.reply", fails as the subject asks, or
// replies with nothing.
var echo = eventserver.HandlerFunc(func(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	switch e.Subject() {
	case "permanent":
		return nil, eventserver.Permanent(errors.New("bad request"))
	case "bad-event":
		return nil, &events.BadEventError{Type: "test.event", Reason: "payload is wrong"}
	case "transient":
		return nil, errors.New("try again")
	case "none":
		return nil, nil
	case "slow":
		<-ctx.Done()
		return nil, ctx.Err()
	}
	r := cloudevents.NewEvent()
	r.SetID("r-" + e.ID())
	r.SetSource("/echo")
	r.SetType(e.Type() + ".reply")
	return &r, nil
})

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

const audience = "wasmbed.dev/test/eventserver"

// sender returns the Authorization header of a ServiceAccount the policy admits, and
// the policy.
func sender(t *testing.T) (string, *eventauth.Policy) {
	t.Helper()
	s := env.NewSender(t, "wasmbed-system", "eventserver-test", audience)
	tok, err := s.Tokens.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + tok, env.Policy(t, audience, map[string][]testenv.Sender{"test.event": {s}})
}

func post(t *testing.T, url string, header map[string]string, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func binary(subject string) map[string]string {
	return map[string]string{"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/test", "ce-type": "test.event",
		"ce-subject": subject, "content-type": "application/json"}
}

func TestHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	auth, policy := sender(t)
	srv := httptest.NewServer(eventserver.NewHTTPHandler("echo", echo, eventserver.Options{Registerer: reg, Gatherer: reg, Timeout: 100 * time.Millisecond, Auth: policy}))
	defer srv.Close()

	tests := []struct {
		name      string
		header    map[string]string
		body      string
		wantCode  int
		wantType  string // ce-type of the reply
		wantInErr string
	}{
		{name: "binary mode, reply", header: binary("ok"), body: `{}`, wantCode: 200, wantType: "test.event.reply"},
		{name: "structured mode, reply", header: map[string]string{"content-type": "application/cloudevents+json"},
			body: `{"specversion":"1.0","id":"2","source":"/test","type":"test.event","subject":"ok"}`, wantCode: 200, wantType: "test.event.reply"},
		{name: "no reply", header: binary("none"), body: `{}`, wantCode: 202},
		{name: "permanent failure", header: binary("permanent"), body: `{}`, wantCode: 422, wantInErr: "bad request"},
		{name: "bad event", header: binary("bad-event"), body: `{}`, wantCode: 400, wantInErr: "payload is wrong"},
		{name: "transient failure is retried", header: binary("transient"), body: `{}`, wantCode: 500, wantInErr: "try again"},
		{name: "timeout", header: binary("slow"), body: `{}`, wantCode: 500, wantInErr: "deadline"},
		{name: "not a cloudevent", header: map[string]string{"content-type": "application/json"}, body: `{}`, wantCode: 400, wantInErr: "not a CloudEvent"},
		{name: "invalid cloudevent", header: map[string]string{"ce-specversion": "1.0", "ce-id": "1", "ce-type": "t"}, body: `{}`, wantCode: 400, wantInErr: "CloudEvent"},
		{name: "oversized event", header: binary("ok"), body: `"` + strings.Repeat("x", eventserver.MaxEventBytes+1) + `"`, wantCode: 400, wantInErr: "not a CloudEvent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{"authorization": auth}
			for k, v := range tt.header {
				h[k] = v
			}
			resp, body := post(t, srv.URL+"/", h, tt.body)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantCode, body)
			}
			if got := resp.Header.Get("ce-type"); got != tt.wantType {
				t.Errorf("reply type %q, want %q", got, tt.wantType)
			}
			if !strings.Contains(body, tt.wantInErr) {
				t.Errorf("body %q does not say %q", body, tt.wantInErr)
			}
		})
	}

	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200, "/other": 405} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
		if path == "/metrics" && !bytes.Contains(body, []byte(`wasmbed_function_requests_total{code="422",function="echo",type="test.event"} 1`)) {
			t.Errorf("metrics do not count the 422:\n%s", body)
		}
	}
}

func TestStatusOf(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{eventserver.Permanent(errors.New("x")), 422},
		{fmt.Errorf("wrapped: %w", eventserver.Permanent(errors.New("x"))), 422},
		{&eventserver.StatusError{Code: 409, Err: errors.New("not yet")}, 409},
		{fmt.Errorf("decode: %w", &events.BadEventError{Type: "t", Reason: "x"}), 400},
		{errors.New("anything else"), 500},
	}
	for _, tt := range tests {
		if got := eventserver.StatusOf(tt.err); got != tt.want {
			t.Errorf("StatusOf(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestListenAndServeStopsWithItsContext(t *testing.T) {
	auth, policy := sender(t)
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- eventserver.ListenAndServe(ctx, "127.0.0.1:0", eventserver.NewHTTPHandler("echo", echo, eventserver.Options{Auth: policy}), func(a net.Addr) { addrc <- a })
	}()
	addr := <-addrc
	h := binary("ok")
	h["authorization"] = auth
	resp, _ := post(t, "http://"+addr.String()+"/", h, `{}`)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ListenAndServe = %v, want nil after a clean stop", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("ListenAndServe did not return after its context was cancelled")
	}
	if err := eventserver.ListenAndServe(context.Background(), addr.String()+"x", nil, nil); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("bad address: %v", err)
	}
}
