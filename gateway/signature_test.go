package gateway_test

import (
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/internal/devicesim"
	"github.com/wasmbed/wasmbed/internal/pki"
	wasmfix "github.com/wasmbed/wasmbed/testdata/wasm"
)

// TestSignedModules delivers signed and unsigned modules to devices that hold the
// platform's verification key and require signatures.
func TestSignedModules(t *testing.T) {
	key, err := pki.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	f := h.fleet("signed-", 3, func(c *devicesim.Config) {
		c.SigningKey, c.RequireSignatures = key.Public(), true
	})
	eventually(t, 10*time.Second, func() bool { return h.srv.Sessions() == 3 }, "3 sessions")
	digest := h.put(wasmfix.Blink)
	good, _ := key.SignDigest(digest)
	forged, _ := other.SignDigest(digest)

	failedWith := func(dev, why string) func(cloudevents.Event) bool {
		return func(e cloudevents.Event) bool {
			d, err := events.DecodeAs[*events.DeploymentResultData](e, events.DeploymentFailed)
			return err == nil && d.Device == dev && strings.Contains(d.Message, why)
		}
	}
	cases := []struct {
		device string
		sig    []byte
		ok     bool
		why    string
	}{
		{"signed-0", good, true, ""},
		{"signed-1", forged, false, "does not verify"},
		{"signed-2", nil, false, "not signed"},
	}
	for _, tc := range cases {
		app := events.AppRef{Namespace: "default", Name: "blink-" + tc.device, Generation: 1}
		if code := h.deploy(app, digest, len(wasmfix.Blink), []string{tc.device}, func(d *events.DeploymentRequestedData) { d.Signature = tc.sig }); code != 202 {
			t.Fatalf("%s: deploy answered %d", tc.device, code)
		}
	}
	for _, tc := range cases {
		if tc.ok {
			eventually(t, 10*time.Second, func() bool {
				return h.events.count(events.DeploymentSucceeded, func(e cloudevents.Event) bool {
					d, err := events.DecodeAs[*events.DeploymentResultData](e, events.DeploymentSucceeded)
					return err == nil && d.Device == tc.device && d.State == "Running"
				}) == 1
			}, "%s Running", tc.device)
			continue
		}
		eventually(t, 10*time.Second, func() bool { return h.events.count(events.DeploymentFailed, failedWith(tc.device, tc.why)) >= 1 },
			"%s failed with %q", tc.device, tc.why)
	}
	_ = f
}
