package sink_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/wasmbed/wasmbed/internal/sink"
)

func TestSend(t *testing.T) {
	var gotType string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotType = r.Header.Get("ce-type")
		if gotType == "refuse" {
			http.Error(w, "no", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	s, err := sink.NewHTTP(srv.URL, 0)
	if err != nil {
		t.Fatal(err)
	}
	ev := func(typ string) cloudevents.Event {
		e := cloudevents.NewEvent()
		e.SetID("1")
		e.SetType(typ)
		e.SetSource("/test")
		return e
	}
	if err := s.Send(context.Background(), ev("ok")); err != nil || gotType != "ok" {
		t.Fatalf("send: %v (got %q)", err, gotType)
	}
	if err := s.Send(context.Background(), ev("refuse")); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("send to a refusing sink: %v", err)
	}
	srv.Close()
	if err := s.Send(context.Background(), ev("down")); err == nil {
		t.Fatal("send to a closed sink succeeded")
	}
}

func TestNewHTTPRefusesBadURLs(t *testing.T) {
	for _, u := range []string{"", "broker", "ftp://x/y", "http://"} {
		if _, err := sink.NewHTTP(u, 0); err == nil {
			t.Errorf("NewHTTP(%q) succeeded", u)
		}
	}
	t.Setenv("K_SINK", "")
	if _, err := sink.FromEnv(); err == nil || !strings.Contains(err.Error(), "K_SINK") {
		t.Errorf("FromEnv without K_SINK: %v", err)
	}
}
