package gateway_test

import (
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"

	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/api/protocol"
	"github.com/wasmbed/wasmbed/gateway"
	"github.com/wasmbed/wasmbed/internal/devicesim"
	"github.com/wasmbed/wasmbed/internal/eventauth"
	"github.com/wasmbed/wasmbed/internal/pki"
	"github.com/wasmbed/wasmbed/internal/testenv"
	wasmfix "github.com/wasmbed/wasmbed/testdata/wasm"
)

func succeeded(state v1.AppState) func(cloudevents.Event) bool {
	return func(e cloudevents.Event) bool {
		d, err := events.DecodeAs[*events.DeploymentResultData](e, events.DeploymentSucceeded)
		return err == nil && d.State == state
	}
}

func TestDeployToSimDevices(t *testing.T) {
	h := newHarness(t)
	const n = 20
	f := h.fleet("sim-", n)
	eventually(t, 20*time.Second, func() bool { return h.srv.Sessions() == n }, "%d sessions", n)

	digest := h.put(wasmfix.Sensor)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("sim-%d", i)
	}
	app := events.AppRef{Namespace: "default", Name: "sensor", Generation: 1}
	if code := h.deploy(app, digest, len(wasmfix.Sensor), names); code != http.StatusAccepted {
		t.Fatalf("deploy answered %d", code)
	}
	eventually(t, 30*time.Second, func() bool {
		return h.events.count(events.DeploymentSucceeded, succeeded("Running")) == n
	}, "%d deployment.succeeded Running events", n)
	for _, d := range f.Devices() {
		if st, msg := d.AppState("sensor"); st != protocol.StateRunning {
			t.Errorf("%s: sensor is %v (%s)", d.ID(), st, msg)
		}
	}
	// The sensor app publishes every 100 ms: telemetry events arrive with the
	// Application as <namespace>/<name>.
	eventually(t, 10*time.Second, func() bool {
		return h.events.count(events.DeviceTelemetry, func(e cloudevents.Event) bool {
			d, err := events.DecodeAs[*events.DeviceTelemetryData](e, events.DeviceTelemetry)
			return err == nil && d.Application == "default/sensor" && d.Topic == "temp" && len(d.Payload) == 4
		}) >= n
	}, "telemetry from every device")
	if got := h.events.count(events.DeviceConnected, nil); got < n {
		t.Errorf("%d device.connected events, want %d", got, n)
	}
	if got := h.counter(gateway.MetricDeployments, "result=succeeded"); got != n {
		t.Errorf("deployments metric %v, want %d", got, n)
	}
	if h.counter(gateway.MetricTransferBytes, "") < float64(n*len(wasmfix.Sensor)) {
		t.Errorf("transfer bytes %v", h.counter(gateway.MetricTransferBytes, ""))
	}
	// Deploying the same thing again reports the devices as already Running.
	if code := h.deploy(app, digest, len(wasmfix.Sensor), names[:1]); code != http.StatusAccepted {
		t.Fatalf("second deploy answered %d", code)
	}
	eventually(t, 10*time.Second, func() bool {
		return h.events.count(events.DeploymentSucceeded, succeeded("Running")) == n+1
	}, "a success event for an app already running")
}

func TestDeviceLogEndpoint(t *testing.T) {
	h := newHarness(t)
	h.fleet("log-", 1)
	eventually(t, 10*time.Second, func() bool { return h.srv.Sessions() == 1 }, "session")
	digest := h.put(wasmfix.Blink)
	h.deploy(events.AppRef{Namespace: "default", Name: "blink", Generation: 1}, digest, len(wasmfix.Blink), []string{"log-0"})
	eventually(t, 10*time.Second, func() bool {
		return len(h.srv.DeviceLog(id("default", "log-0"))) > 0
	}, "a log line")
	resp, err := http.Get(h.apiURL + "/devices/default/log-0/log")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "blink: started") {
		t.Fatalf("log endpoint: %d %s", resp.StatusCode, body)
	}
}

func TestDeployAPIRejects(t *testing.T) {
	h := newHarness(t)
	digest := h.put(wasmfix.Blink)
	app := events.AppRef{Namespace: "default", Name: "blink", Generation: 1}
	for _, tc := range []struct {
		name   string
		mutate func(*events.DeploymentRequestedData)
		want   int
	}{
		{"other gateway", func(d *events.DeploymentRequestedData) { d.Gateway = v1.Ref{Namespace: "x", Name: "other"} }, http.StatusUnprocessableEntity},
		{"unknown digest", func(d *events.DeploymentRequestedData) {
			d.Digest = "sha256:" + "0000000000000000000000000000000000000000000000000000000000000000"
		}, http.StatusUnprocessableEntity},
		{"wrong size", func(d *events.DeploymentRequestedData) { d.Size = 3 }, http.StatusUnprocessableEntity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code := h.deploy(app, digest, len(wasmfix.Blink), []string{"a"}, tc.mutate); code != tc.want {
				t.Fatalf("status %d, want %d", code, tc.want)
			}
		})
	}
	// Data that breaks the contract is a 400.
	req, _ := http.NewRequest(http.MethodPost, h.apiURL, strings.NewReader(`{"application":{}}`))
	for k, v := range map[string]string{"ce-specversion": "1.0", "ce-type": string(events.DeploymentRequested), "ce-source": "/t", "ce-id": "1", "content-type": "application/json", "authorization": h.auth} {
		req.Header.Set(k, v)
	}
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad data: %v %v", resp, err)
	}
	// Structured mode is accepted too.
	d := &events.DeploymentRequestedData{Application: app, Gateway: gatewayRef, Digest: digest, Size: int64(len(wasmfix.Blink)), Devices: []string{"a"}}
	e, _ := events.New(events.DeploymentRequested, "/test", app.Subject(), d)
	body, _ := e.MarshalJSON()
	req, _ = http.NewRequest(http.MethodPost, h.apiURL, strings.NewReader(string(body)))
	req.Header.Set("content-type", "application/cloudevents+json")
	req.Header.Set("authorization", h.auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("structured mode: %d", resp.StatusCode)
	}
}

var _ = context.Background
var _ devicesim.Config

// TestDeployAPIAuthenticatesItsSender is the attack of issue 12: deploying a module, or
// removing one, by POSTing deployment.requested to the gateway's HTTP port. Only the
// gateway's own Trigger may; nothing it refuses reaches the desired state.
func TestDeployAPIAuthenticatesItsSender(t *testing.T) {
	desired := gateway.NewMemoryDesired()
	h := newHarness(t, func(c gateway.Config) gateway.Config { return c.WithDesired(desired) })
	digest := h.put(wasmfix.Blink)
	app := events.AppRef{Namespace: "default", Name: "intruder", Generation: 1}
	dispatch := env.NewSender(t, "wasmbed-system", "wasmbed-dispatch", events.GatewayAudience(gatewayRef.Namespace, gatewayRef.Name))
	elsewhere := env.NewSender(t, gatewayRef.Namespace, eventauth.TriggerServiceAccount(gatewayRef.Name), events.ReceiverAudience("operator"))
	tok := func(s testenv.Sender) string {
		v, err := s.Tokens.Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + v
	}
	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"no credentials", "", http.StatusUnauthorized},
		{"a forged token", "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", http.StatusUnauthorized},
		{"the trigger's token for another audience", tok(elsewhere), http.StatusUnauthorized},
		{"another component's token", tok(dispatch), http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.auth = tc.auth
			if code := h.deploy(app, digest, len(wasmfix.Blink), []string{"dev-0"}); code != tc.want {
				t.Fatalf("status %d, want %d", code, tc.want)
			}
		})
	}
	if got, err := desired.For(context.Background(), pki.Identity{Namespace: "default", Name: "dev-0"}); err != nil || len(got) != 0 {
		t.Fatalf("desired state after refused requests: %v, %v", got, err)
	}
}
