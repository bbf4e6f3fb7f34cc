package e2e_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/internal/eventauth"
)

// TestEveryReceiverAuthenticatesItsSender is the attack of issue 12 on `make run`: with
// no credentials, or with a real token of the wrong identity, nobody on this machine
// can put an event into the broker or any component. Each attempt names a type the
// receiver does take from its rightful sender, so only the identity is wrong.
func TestEveryReceiverAuthenticatesItsSender(t *testing.T) {
	// A real ServiceAccount of the platform's apiserver that no policy names.
	stranger := env.NewSender(t, "default", "stranger", events.BrokerAudience())
	// The compile Trigger's identity, but a token for the broker, not for dispatch.
	misdirected := env.NewSender(t, events.SystemNamespace, eventauth.TriggerServiceAccount(events.TriggerName("compile", events.BuildRequested)), events.BrokerAudience())
	tok := func(ts eventauth.TokenSource) string {
		v, err := ts.Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + v
	}
	receivers := []struct {
		component, path string
		typ             events.Type
	}{
		{"broker", "/", events.DeploymentRequested},
		{"compile", "/", events.BuildRequested},
		{"validate", "/", events.ModuleBuilt},
		{"dispatch", "/", events.ModuleValidated},
		{"operator", "/", events.DeviceConnected},
		{"operator", "/steps-done", events.ModuleValidated},
		{"operator", "/dead-letters", events.DeploymentRequested},
		{"gateway-http", "/", events.DeploymentRequested},
		{"console", "/", events.DeviceTelemetry},
	}
	for _, r := range receivers {
		for _, c := range []struct {
			name, auth string
			want       []int
		}{
			{"no credentials", "", []int{http.StatusUnauthorized}},
			{"a made-up token", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln", []int{http.StatusUnauthorized}},
			{"a stranger's token", tok(stranger.Tokens), []int{http.StatusUnauthorized, http.StatusForbidden}},
			{"a Trigger's token for another audience", tok(misdirected.Tokens), []int{http.StatusUnauthorized, http.StatusForbidden}},
		} {
			t.Run(r.component+r.path+"/"+c.name, func(t *testing.T) {
				req, err := http.NewRequest(http.MethodPost, "http://"+plat.Addr(r.component)+r.path, strings.NewReader(`{}`))
				if err != nil {
					t.Fatal(err)
				}
				for k, v := range map[string]string{"ce-specversion": "1.0", "ce-id": "attack", "ce-source": "/attacker",
					"ce-type": string(r.typ), "ce-subject": "default/blink", "content-type": "application/json"} {
					req.Header.Set(k, v)
				}
				if c.auth != "" {
					req.Header.Set("Authorization", c.auth)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				ok := false
				for _, w := range c.want {
					ok = ok || resp.StatusCode == w
				}
				if !ok {
					t.Fatalf("%s answered %d %q, want one of %v", r.component, resp.StatusCode, body, c.want)
				}
			})
		}
	}
}
