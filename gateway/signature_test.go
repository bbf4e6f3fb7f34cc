package gateway_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/wasmbed/wasmbed/api/digest"
	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/api/protocol"
	"github.com/wasmbed/wasmbed/gateway"
	"github.com/wasmbed/wasmbed/internal/devicesim"
	"github.com/wasmbed/wasmbed/internal/pki"
	wasmfix "github.com/wasmbed/wasmbed/testdata/wasm"
)

// signedFor returns a mutation that makes a deployment request carry a manifest for
// app, signed by key, at version, for module d and config; edit changes the manifest
// before it is signed (to forge one for something else).
func signedFor(t *testing.T, key *pki.SigningKey, app events.AppRef, d digest.Digest, config map[string]string, version uint64, edit ...func(*protocol.Manifest)) func(*events.DeploymentRequestedData) {
	t.Helper()
	hash, err := protocol.ConfigHash(config)
	if err != nil {
		t.Fatal(err)
	}
	m := &protocol.Manifest{
		Type: protocol.ManifestType, Namespace: app.Namespace, App: app.Name, UID: app.UID,
		Generation: uint64(app.Generation), Version: version, Digest: d.Bytes(), ConfigHash: hash,
	}
	for _, e := range edit {
		e(m)
	}
	raw, err := protocol.EncodeManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := key.Sign(raw)
	if err != nil {
		t.Fatal(err)
	}
	return func(r *events.DeploymentRequestedData) { r.Config, r.Manifest, r.Signature = config, raw, sig }
}

// twoKeys returns the platform's deployment key and a stranger's.
func twoKeys(t *testing.T) (key, other *pki.SigningKey) {
	t.Helper()
	var err error
	if key, err = pki.NewSigningKey(); err != nil {
		t.Fatal(err)
	}
	if other, err = pki.NewSigningKey(); err != nil {
		t.Fatal(err)
	}
	return key, other
}

func resultFor(h *harness, typ events.Type, device, want string) func() bool {
	return func() bool {
		return h.events.count(typ, func(e cloudevents.Event) bool {
			d, err := events.DecodeAs[*events.DeploymentResultData](e, typ)
			return err == nil && d.Device == device && (typ != events.DeploymentFailed || strings.Contains(d.Message, want)) &&
				(typ != events.DeploymentSucceeded || (d.State == "Running" && d.Digest.String() == want))
		}) >= 1
	}
}

// TestDevicesVerifyManifests: devices holding the deployment key run a module only
// under a manifest signed for it, for their namespace, that app, that module and that
// configuration, and never go back to a lower version. The gateway here holds no key,
// so every forgery reaches the devices, as it would through a compromised gateway.
func TestDevicesVerifyManifests(t *testing.T) {
	key, other := twoKeys(t)
	h := newHarness(t)
	h.fleet("m-", 8, func(c *devicesim.Config) { c.DeploymentKey = key.Public() })
	eventually(t, 10*time.Second, func() bool { return h.srv.Sessions() == 8 }, "8 sessions")
	blink, sensor := h.put(wasmfix.Blink), h.put(wasmfix.Sensor)
	cfg := map[string]string{"period_ms": "100"}
	app := func(i int) events.AppRef {
		return events.AppRef{Namespace: "default", Name: fmt.Sprintf("app-%d", i), Generation: 2, UID: fmt.Sprintf("uid-%d", i)}
	}
	cases := []struct {
		name   string
		mutate func(*events.DeploymentRequestedData)
		why    string // "" runs
	}{
		{"signed for it", signedFor(t, key, app(0), blink, cfg, 10), ""},
		{"signed by another key", signedFor(t, other, app(1), blink, cfg, 10), "does not verify"},
		{"unsigned", func(r *events.DeploymentRequestedData) { r.Config = cfg }, "not signed"},
		{"for another namespace", signedFor(t, key, app(3), blink, cfg, 10, func(m *protocol.Manifest) { m.Namespace = "lab" }), `namespace "lab"`},
		{"another app's manifest", signedFor(t, key, app(4), blink, cfg, 10, func(m *protocol.Manifest) { m.App = "app-0" }), `app "app-0"`},
		{"for another module", signedFor(t, key, app(5), blink, cfg, 10, func(m *protocol.Manifest) { m.Digest = sensor.Bytes() }), "module digest"},
		{"for another configuration", func(r *events.DeploymentRequestedData) {
			signedFor(t, key, app(6), blink, map[string]string{"period_ms": "1"}, 10)(r)
			r.Config = cfg
		}, "configuration"},
	}
	for i, tc := range cases {
		if code := h.deploy(app(i), blink, len(wasmfix.Blink), []string{fmt.Sprintf("m-%d", i)}, tc.mutate); code != 202 {
			t.Fatalf("%s: deploy answered %d", tc.name, code)
		}
	}
	for i, tc := range cases {
		dev := fmt.Sprintf("m-%d", i)
		if tc.why == "" {
			eventually(t, 10*time.Second, resultFor(h, events.DeploymentSucceeded, dev, blink.String()), "%s: %s Running", tc.name, dev)
			continue
		}
		eventually(t, 10*time.Second, resultFor(h, events.DeploymentFailed, dev, tc.why), "%s: %s refused with %q", tc.name, dev, tc.why)
	}

	// Versions: m-7 runs sensor at version 20. The blink manifest of version 10 (an old,
	// validly signed deployment replayed) is refused; a rollback to blink is a new
	// manifest with a higher version naming the old module, and runs.
	a := app(7)
	steps := []struct {
		name    string
		d       digest.Digest
		module  []byte
		version uint64
		why     string
	}{
		{"current", sensor, wasmfix.Sensor, 20, ""},
		{"old manifest replayed", blink, wasmfix.Blink, 10, "below the held 20"},
		{"rollback, newly signed", blink, wasmfix.Blink, 21, ""},
	}
	for _, s := range steps {
		a.Generation++ // each request is a newer generation: the gateway's ordering stays out of the way
		if code := h.deploy(a, s.d, len(s.module), []string{"m-7"}, signedFor(t, key, a, s.d, nil, s.version)); code != 202 {
			t.Fatalf("%s: deploy answered %d", s.name, code)
		}
		if s.why == "" {
			eventually(t, 10*time.Second, resultFor(h, events.DeploymentSucceeded, "m-7", s.d.String()), "%s: m-7 runs %s", s.name, s.d)
		} else {
			eventually(t, 10*time.Second, resultFor(h, events.DeploymentFailed, "m-7", s.why), "%s: refused with %q", s.name, s.why)
		}
	}
}

// TestGatewayVerifiesManifests: a gateway holding the deployment key records nothing
// a valid manifest does not vouch for; the request is refused with 422.
func TestGatewayVerifiesManifests(t *testing.T) {
	key, other := twoKeys(t)
	h := newHarness(t, func(c gateway.Config) gateway.Config { return c.WithDeploymentKey(key.Public()) })
	h.fleet("g-", 1, func(c *devicesim.Config) { c.DeploymentKey = key.Public() })
	eventually(t, 10*time.Second, func() bool { return h.srv.Sessions() == 1 }, "1 session")
	blink, sensor := h.put(wasmfix.Blink), h.put(wasmfix.Sensor)
	app := events.AppRef{Namespace: "default", Name: "gated", Generation: 4, UID: "uid-gated"}
	cases := []struct {
		name   string
		d      digest.Digest
		mutate func(*events.DeploymentRequestedData)
		code   int
	}{
		{"unsigned", blink, func(*events.DeploymentRequestedData) {}, 422},
		{"signed by another key", blink, signedFor(t, other, app, blink, nil, 8), 422},
		{"for another module", sensor, signedFor(t, key, app, blink, nil, 8), 422},
		{"for another generation", blink, signedFor(t, key, app, blink, nil, 8, func(m *protocol.Manifest) { m.Generation = 3 }), 422},
		{"for another object", blink, signedFor(t, key, app, blink, nil, 8, func(m *protocol.Manifest) { m.UID = "uid-old" }), 422},
		{"for another configuration", blink, func(r *events.DeploymentRequestedData) {
			signedFor(t, key, app, blink, nil, 8)(r)
			r.Config = map[string]string{"period_ms": "1"}
		}, 422},
		{"signed for it", blink, signedFor(t, key, app, blink, nil, 8), 202},
	}
	for _, tc := range cases {
		if code := h.deploy(app, tc.d, 0, []string{"g-0"}, tc.mutate); code != tc.code {
			t.Fatalf("%s: deploy answered %d, want %d", tc.name, code, tc.code)
		}
	}
	eventually(t, 10*time.Second, resultFor(h, events.DeploymentSucceeded, "g-0", blink.String()), "g-0 runs blink")
	if n := h.events.count(events.DeploymentFailed, func(cloudevents.Event) bool { return true }); n != 0 {
		t.Fatalf("%d deployments failed on the device: a refused request reached it", n)
	}
}
