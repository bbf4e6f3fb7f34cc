package sink_test

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/wasmbed/wasmbed/internal/pki"
	"github.com/wasmbed/wasmbed/internal/sink"
)

func ev(typ string) cloudevents.Event {
	e := cloudevents.NewEvent()
	e.SetID("1")
	e.SetType(typ)
	e.SetSource("/test")
	return e
}

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
	s, err := sink.NewHTTP(srv.URL, 0, nil)
	if err != nil {
		t.Fatal(err)
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
		if _, err := sink.NewHTTP(u, 0, nil); err == nil {
			t.Errorf("NewHTTP(%q) succeeded", u)
		}
	}
	t.Setenv("K_SINK", "")
	if _, err := sink.FromEnv(); err == nil || !strings.Contains(err.Error(), "K_SINK") {
		t.Errorf("FromEnv without K_SINK: %v", err)
	}
	t.Setenv("K_SINK", "http://broker.example")
	t.Setenv("K_SINK_TOKEN_FILE", "")
	if _, err := sink.FromEnv(); err == nil || !strings.Contains(err.Error(), "K_SINK_TOKEN_FILE") {
		t.Errorf("FromEnv without a token: %v", err)
	}
}

// TestSendsItsToken checks that every event carries the sender's current token, read
// from the projected token file each time (the kubelet renews it).
func TestSendsItsToken(t *testing.T) {
	got := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Authorization")
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("K_SINK", srv.URL)
	t.Setenv("K_SINK_TOKEN_FILE", file)
	s, err := sink.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"first", "second"} {
		if err := os.WriteFile(file, []byte(want), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := s.Send(context.Background(), ev(want)); err != nil {
			t.Fatal(err)
		}
		if h := <-got; h != "Bearer "+want {
			t.Fatalf("Authorization = %q, want Bearer %s", h, want)
		}
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), ev("gone")); err == nil {
		t.Fatal("sent without a token")
	}
}

// TestTrustsTheSinkBindingsCA: under transport encryption the broker's address is https
// with a CA of its own (K_CA_CERTS); the sender trusts exactly what it is given.
func TestTrustsTheSinkBindingsCA(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	other, err := pki.NewCA("another CA", 0)
	if err != nil {
		t.Fatal(err)
	}
	otherCA := string(other.CertPEM())

	cases := []struct {
		name string
		ca   string
		ok   bool
	}{
		{"the broker's CA", ca, true},
		{"no CA given", "", false},
		{"another CA", otherCA, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sink.NewHTTP(srv.URL, 0, nil, sink.WithCACerts(tc.ca))
			if err != nil {
				t.Fatal(err)
			}
			err = s.Send(context.Background(), ev("ok"))
			if (err == nil) != tc.ok {
				t.Fatalf("send: %v, want ok=%v", err, tc.ok)
			}
		})
	}
	if _, err := sink.NewHTTP(srv.URL, 0, nil, sink.WithCACerts("not a certificate")); err == nil || !strings.Contains(err.Error(), "K_CA_CERTS") {
		t.Fatalf("a CA bundle without a certificate: %v, want an error naming K_CA_CERTS", err)
	}
	t.Setenv("K_SINK", srv.URL)
	t.Setenv("K_SINK_TOKEN_FILE", filepath.Join(t.TempDir(), "token"))
	t.Setenv("K_CA_CERTS", ca)
	if _, err := sink.FromEnv(); err != nil {
		t.Fatalf("FromEnv with K_CA_CERTS: %v", err)
	}
}
