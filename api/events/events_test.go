package events_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/api/protocol"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite docs/events/*.schema.json")

const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

var app = events.AppRef{Namespace: "default", Name: "blink", Generation: 2}

func TestSchemasAreCurrent(t *testing.T) {
	dir := filepath.Join("..", "..", "docs", "events")
	for _, typ := range events.Types() {
		got, err := events.Schema(typ)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, '\n')
		path := filepath.Join(dir, string(typ)+".schema.json")
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is stale or missing: run make generate", path)
		}
	}
}

func TestNewAndDecodeRoundTrip(t *testing.T) {
	in := &events.ModuleBuiltData{Application: app, Digest: digest, Size: 812, Toolchain: "clang 14", Boards: []string{"virtual"}}
	e, err := events.New(events.ModuleBuilt, events.SourceCompile, app.Subject(), in)
	if err != nil {
		t.Fatal(err)
	}
	if e.Subject() != "default/blink" || e.Extensions()[events.ExtNamespace] != "default" || e.ID() == "" {
		t.Errorf("attributes: subject %q ext %v id %q", e.Subject(), e.Extensions(), e.ID())
	}
	if err := e.Validate(); err != nil {
		t.Fatalf("not a valid CloudEvent: %v", err)
	}
	if e.DataSchema() != events.SchemaID(events.ModuleBuilt) {
		t.Errorf("dataschema %q, want %q", e.DataSchema(), events.SchemaID(events.ModuleBuilt))
	}
	out, err := events.DecodeAs[*events.ModuleBuiltData](e, events.ModuleBuilt)
	if err != nil {
		t.Fatal(err)
	}
	if out.Digest != digest || out.Size != 812 || out.Application != app {
		t.Errorf("decoded %+v", out)
	}
}

func TestNewRefusesInvalidData(t *testing.T) {
	_, err := events.New(events.ModuleBuilt, events.SourceCompile, "default/blink", &events.ModuleBuiltData{Application: app, Digest: "abc", Size: 1, Boards: []string{"virtual"}})
	if err == nil || !strings.Contains(err.Error(), "digest") {
		t.Fatalf("err = %v, want one naming digest", err)
	}
}

func raw(typ, data string) cloudevents.Event {
	e := cloudevents.NewEvent()
	e.SetID("1")
	e.SetSource("/test")
	e.SetType(typ)
	if data != "" {
		_ = e.SetData(cloudevents.ApplicationJSON, []byte(data))
	}
	return e
}

func withSchema(e cloudevents.Event, s string) cloudevents.Event {
	e.SetDataSchema(s)
	return e
}

func TestDecodeRefusals(t *testing.T) {
	okApp := `"application":{"namespace":"default","name":"blink","generation":1}`
	cases := []struct {
		name string
		ev   cloudevents.Event
		want []events.Type
		msg  string
	}{
		{"wrong type for endpoint", raw(string(events.ModuleBuilt), `{}`), []events.Type{events.BuildRequested}, "accepts dev.wasmbed.build.requested"},
		{"unknown type", raw("com.example.other", `{}`), nil, "unknown event type"},
		{"no data", raw(string(events.BuildRequested), ""), nil, "no data"},
		{"not json", raw(string(events.BuildRequested), `{`), nil, "data:"},
		{"wrong field type", raw(string(events.BuildRequested), `{"application":{"namespace":"default","name":"x","generation":"two"}}`), nil, `"application.generation" must be int64`},
		{"missing source", raw(string(events.BuildRequested), `{`+okApp+`,"boards":["virtual"]}`), nil, "source.code is required"},
		{"bad language", raw(string(events.BuildRequested), `{`+okApp+`,"source":{"language":"cobol","code":"x"},"boards":["virtual"]}`), nil, `source.language "cobol"`},
		{"no boards", raw(string(events.BuildRequested), `{`+okApp+`,"source":{"language":"c","code":"x"}}`), nil, "boards must name"},
		{"bad namespace", raw(string(events.BuildRequested), `{"application":{"namespace":"Default","name":"x","generation":1},"source":{"language":"c","code":"x"},"boards":["virtual"]}`), nil, "application.namespace"},
		{"bad digest", raw(string(events.ModuleBuilt), `{`+okApp+`,"digest":"sha256:xyz","size":3,"boards":["virtual"]}`), nil, "digest"},
		{"rejected without reasons", raw(string(events.ModuleRejected), `{`+okApp+`,"digest":"`+digest+`","report":{"digest":"`+digest+`","size":1}}`), nil, "report.reasons"},
		{"deployment without devices", raw(string(events.DeploymentRequested), `{`+okApp+`,"gateway":"wasmbed-system/gw","digest":"`+digest+`","size":10,"devices":[]}`), nil, "devices must name"},
		{"deployment bad gateway", raw(string(events.DeploymentRequested), `{`+okApp+`,"gateway":"gw","digest":"`+digest+`","size":10,"devices":["d1"]}`), nil, "<namespace>/<name>"},
		{"lower-case state", raw(string(events.DeploymentSucceeded), `{`+okApp+`,"device":"d1","gateway":"ns/gw","digest":"`+digest+`","state":"running"}`), nil, `state: application state "running" is not one of`},
		{"unknown state", raw(string(events.DeploymentFailed), `{`+okApp+`,"device":"d1","gateway":"ns/gw","digest":"`+digest+`","state":"Exploded"}`), nil, `state: application state "Exploded"`},
		{"no state", raw(string(events.DeploymentFailed), `{`+okApp+`,"device":"d1","gateway":"ns/gw","digest":"`+digest+`"}`), nil, "state: application state is empty"},
		{"hello with an unknown state", raw(string(events.DeviceConnected), `{"namespace":"default","device":"d1","gateway":"ns/gw","applications":[{"name":"blink","state":"Receiving"}]}`), nil, `applications[0].state: application state "Receiving"`},
		{"hello with a bad digest", raw(string(events.DeviceConnected), `{"namespace":"default","device":"d1","gateway":"ns/gw","applications":[{"name":"blink","state":"Running","digest":"sha256:00"}]}`), nil, "applications[0].digest"},
		{"another type's schema", withSchema(raw(string(events.ModuleBuilt), `{`+okApp+`,"digest":"`+digest+`","size":3,"boards":["virtual"]}`), events.SchemaID(events.BuildRequested)), nil, `dataschema "https://wasmbed.dev/schemas/events/dev.wasmbed.build.requested.json" is not this type's schema`},
		{"foreign schema", withSchema(raw(string(events.ModuleBuilt), `{`+okApp+`,"digest":"`+digest+`","size":3,"boards":["virtual"]}`), "https://example.com/evil.json"), nil, "dataschema"},
		{"summary counts over devices", raw(string(events.DeploymentSummarized), `{`+okApp+`,"gateway":"ns/gw","digest":"`+digest+`","epoch":"2026-12-08T00:00:00Z","seq":1,"devices":2,"succeeded":2,"failed":1}`), nil, "add up to more than devices"},
		{"summary without epoch", raw(string(events.DeploymentSummarized), `{`+okApp+`,"gateway":"ns/gw","digest":"`+digest+`","seq":1,"devices":2}`), nil, "epoch is required"},
		{"summary negative count", raw(string(events.DeploymentSummarized), `{`+okApp+`,"gateway":"ns/gw","digest":"`+digest+`","epoch":"2026-12-08T00:00:00Z","seq":1,"devices":2,"succeeded":-1}`), nil, "succeeded must not be negative"},
		{"summary unknown failure type", raw(string(events.DeploymentSummarized), `{`+okApp+`,"gateway":"ns/gw","digest":"`+digest+`","epoch":"2026-12-08T00:00:00Z","seq":1,"devices":2,"failed":1,"failuresByType":{"cosmic":1}}`), nil, `failure "cosmic"`},
		{"summary failures over failed", raw(string(events.DeploymentSummarized), `{`+okApp+`,"gateway":"ns/gw","digest":"`+digest+`","epoch":"2026-12-08T00:00:00Z","seq":1,"devices":2,"failed":1,"failuresByType":{"trap":2}}`), nil, "more than failed"},
		{"summary lists more failures than failed", raw(string(events.DeploymentSummarized), `{`+okApp+`,"gateway":"ns/gw","digest":"`+digest+`","epoch":"2026-12-08T00:00:00Z","seq":1,"devices":2,"failed":0,"firstFailures":[{"device":"d1","failure":"trap"}]}`), nil, "firstFailures has 1 entries"},
		{"summary bad failed device", raw(string(events.DeploymentSummarized), `{`+okApp+`,"gateway":"ns/gw","digest":"`+digest+`","epoch":"2026-12-08T00:00:00Z","seq":1,"devices":2,"failed":1,"firstFailures":[{"device":"../x","failure":"trap"}]}`), nil, "firstFailures[0].device"},
		{"short signature", raw(string(events.DeploymentRequested), `{`+okApp+`,"gateway":"ns/gw","digest":"`+digest+`","size":10,"devices":["d1"],"signature":"AAAA"}`), nil, "ed25519"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := events.Decode(tc.ev, tc.want...)
			var bad *events.BadEventError
			if !errors.As(err, &bad) {
				t.Fatalf("err = %v, want a *BadEventError", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %q, want it to contain %q", err, tc.msg)
			}
		})
	}
}

func TestEveryTypeHasAPayloadAndSchema(t *testing.T) {
	if n := len(events.Types()); n != 15 {
		t.Errorf("%d event types; update this test and docs/events.md when the contract changes", n)
	}
	for _, typ := range events.Types() {
		if !strings.HasPrefix(string(typ), "dev.wasmbed.") {
			t.Errorf("%s is not in the dev.wasmbed namespace", typ)
		}
		if _, err := events.Schema(typ); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
}

// TestDeviceAppState checks the one mapping from the wire's states to the platform's:
// every state the protocol defines has a platform state, and every other byte is an
// error rather than Failed.
func TestDeviceAppState(t *testing.T) {
	want := map[protocol.AppState]v1.AppState{
		protocol.StateReceiving: v1.AppTransferring,
		protocol.StateReceived:  v1.AppReceived,
		protocol.StateRunning:   v1.AppRunning,
		protocol.StateStopped:   v1.AppStopped,
		protocol.StateExited:    v1.AppExited,
		protocol.StateFailed:    v1.AppFailed,
		protocol.StateRemoved:   v1.AppRemoved,
	}
	for b := 0; b < 256; b++ {
		s := protocol.AppState(b)
		got, err := events.DeviceAppState(s)
		w, defined := want[s]
		switch {
		case defined != s.Valid():
			t.Errorf("state %d: the protocol says valid=%v, this table says %v", b, s.Valid(), defined)
		case defined && (err != nil || got != w):
			t.Errorf("DeviceAppState(%s) = %q, %v; want %q", s, got, err, w)
		case defined && got.Validate() != nil:
			t.Errorf("DeviceAppState(%s) = %q, which the platform does not accept", s, got)
		case !defined && (err == nil || got != ""):
			t.Errorf("DeviceAppState(%d) = %q, %v; want an error", b, got, err)
		}
	}
}
