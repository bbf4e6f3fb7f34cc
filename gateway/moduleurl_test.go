package gateway_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/wasmbed/wasmbed/api/digest"
	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/gateway"
	"github.com/wasmbed/wasmbed/internal/artifacts"
	"github.com/wasmbed/wasmbed/internal/testenv"
	wasmfix "github.com/wasmbed/wasmbed/testdata/wasm"
)

// deployWith posts a deployment request of module (by digest) with moduleURL, in
// structured mode, and returns the status and body of the answer.
func (h *harness) deployWith(moduleURL string, module []byte) (int, string) {
	h.t.Helper()
	app := events.AppRef{Namespace: "default", Name: "fetched", Generation: 1}
	d := &events.DeploymentRequestedData{Application: app, Gateway: gatewayRef, Digest: digest.Of(module),
		Size: int64(len(module)), ModuleURL: moduleURL, Devices: []string{"a"}}
	e, err := events.New(events.DeploymentRequested, "/test", app.Subject(), d)
	if err != nil {
		h.t.Fatal(err)
	}
	body, err := e.MarshalJSON()
	if err != nil {
		h.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, h.apiURL, strings.NewReader(string(body)))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("content-type", "application/cloudevents+json")
	req.Header.Set("authorization", h.auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The gateway fetches a moduleURL only from its allow-list, through the same guard as
// the compile function, and its answer quotes nothing the server sent.
func TestModuleURLIsGuarded(t *testing.T) {
	const secret = "SECRET-internal-answer"
	origins := testenv.StartOrigins(t, wasmfix.Blink, secret)
	listed, unlisted, unlistedRequests := origins.Listed, origins.Unlisted, origins.Reached
	lu, _ := url.Parse(listed.URL)
	uu, _ := url.Parse(unlisted.URL)
	allow, err := artifacts.NewAllowList(lu.Host)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c gateway.Config) gateway.Config {
		return c.WithFetch(artifacts.NewClientConfig().WithAllowList(allow))
	})
	byDefault := newHarness(t)
	redirect := func(to string) string { return listed.URL + "/redirect?to=" + url.QueryEscape(to) }

	// Refusals first: once fetched, the module is in the store and nothing is fetched.
	for _, tc := range []struct {
		name      string
		h         *harness
		moduleURL string
		status    int
		body      []string
	}{
		{"no allow-list", byDefault, listed.URL + "/blink.wasm", http.StatusUnprocessableEntity, []string{lu.Host, "not on the fetch allow-list"}},
		{"unlisted loopback server", h, unlisted.URL + "/blink.wasm", http.StatusUnprocessableEntity, []string{uu.Host, "not on the fetch allow-list"}},
		{"unlisted registry", h, "oci+http://" + uu.Host + "/app:v1", http.StatusUnprocessableEntity, []string{uu.Host, "not on the fetch allow-list"}},
		{"cloud metadata", h, "http://169.254.169.254/latest/meta-data/", http.StatusUnprocessableEntity, []string{"169.254.169.254", "not on the fetch allow-list"}},
		{"redirect to an unlisted loopback server", h, redirect(unlisted.URL + "/blink.wasm"), http.StatusUnprocessableEntity, []string{uu.Host, "loopback"}},
		{"redirect to cloud metadata", h, redirect("http://169.254.169.254/latest/meta-data/"), http.StatusUnprocessableEntity, []string{"169.254.169.254", "link-local"}},
		{"not found", h, listed.URL + "/missing.wasm", http.StatusUnprocessableEntity, []string{"not found"}},
		// Perhaps transient: a 5xx, so the broker retries it.
		{"server error", h, listed.URL + "/fail", http.StatusInternalServerError, []string{"HTTP 500 Internal Server Error"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := tc.h.deployWith(tc.moduleURL, wasmfix.Blink)
			if status != tc.status {
				t.Fatalf("status %d (%s), want %d", status, body, tc.status)
			}
			for _, want := range tc.body {
				if !strings.Contains(body, want) {
					t.Errorf("answer %q does not name %q", body, want)
				}
			}
			if strings.Contains(body, "SECRET") {
				t.Errorf("the answer quotes the server: %q", body)
			}
		})
	}
	if n := unlistedRequests.Load(); n != 0 {
		t.Fatalf("the unlisted server got %d requests", n)
	}
	// From a listed host the module is fetched, checked and stored.
	if status, body := h.deployWith(listed.URL+"/blink.wasm", wasmfix.Blink); status != http.StatusAccepted {
		t.Fatalf("listed: status %d (%s)", status, body)
	}
	if got, err := h.store.Get(context.Background(), digest.Of(wasmfix.Blink)); err != nil || string(got) != string(wasmfix.Blink) {
		t.Fatalf("store after the fetch: %d bytes, %v", len(got), err)
	}
}
