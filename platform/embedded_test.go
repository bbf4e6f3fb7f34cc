package platform_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/wasmbed/wasmbed/internal/eventauth"
	"github.com/wasmbed/wasmbed/internal/pki"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/wasmbed/wasmbed/api/digest"
	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/api/protocol"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/functions/compile"
	"github.com/wasmbed/wasmbed/internal/artifacts"
	"github.com/wasmbed/wasmbed/internal/testenv"
	"github.com/wasmbed/wasmbed/platform"
	wasmfix "github.com/wasmbed/wasmbed/testdata/wasm"
)

// With its artifact store in a registry on loopback, the platform fetches prebuilt
// modules from that registry, named by its exact host:port, and from no other
// service of this machine.
func TestPlatformFetchesFromItsOwnRegistryOnly(t *testing.T) {
	env := testenv.Start(t)
	reg := testenv.StartRegistry(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	var otherRequests atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherRequests.Add(1)
		_, _ = w.Write(wasmfix.Blink)
	}))
	defer other.Close()

	stateDir := t.TempDir()
	p, err := platform.Start(ctx, platform.Config{
		REST: env.Config, Dir: stateDir, Resync: time.Second,
		Artifacts: "oci+http://" + reg.Host + "/wasmbed/modules",
		Logs:      platform.NewLogs(io.Discard, slog.LevelInfo),
	})
	if err != nil {
		t.Fatalf("start platform: %v", err)
	}
	defer p.Stop()
	if got := p.FetchAllow().String(); got != reg.Host {
		t.Fatalf("allow-list %q, want only the platform's registry %s", got, reg.Host)
	}

	// Prebuilt modules another tool pushed to another repository of the same registry.
	plain := artifacts.NewClientConfig().WithPlainHTTP(true)
	prebuilt, err := artifacts.NewOCI(reg.Host+"/prebuilt/app", plain)
	if err != nil {
		t.Fatal(err)
	}
	ref := func(module []byte) string {
		d, err := prebuilt.Put(ctx, module)
		if err != nil {
			t.Fatal(err)
		}
		tag, _ := artifacts.DigestTag(d)
		return "oci+http://" + reg.Host + "/prebuilt/app:" + tag
	}
	store, err := artifacts.NewOCI(reg.Host+"/wasmbed/modules", plain)
	if err != nil {
		t.Fatal(err)
	}
	ce, err := cloudevents.NewClientHTTP()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("compile", func(t *testing.T) {
		app := events.AppRef{Namespace: "default", Name: "prebuilt", Generation: 1}
		build := func(m events.Module) cloudevents.Event {
			t.Helper()
			e, err := events.New(events.BuildRequested, events.SourceOperator, app.Subject(),
				&events.BuildRequestedData{Application: app, Source: events.Source{Module: &m}, Boards: []string{"virtual"}})
			if err != nil {
				t.Fatal(err)
			}
			auth, _ := env.Receiver(t, "compile", events.BuildRequested)
			rctx := cehttp.WithCustomHeader(cloudevents.ContextWithTarget(ctx, "http://"+p.Addr("compile")), http.Header{"Authorization": {auth}})
			reply, res := ce.Request(rctx, e)
			if !cloudevents.IsACK(res) || reply == nil {
				t.Fatalf("compile: %v", res)
			}
			return *reply
		}
		reply := build(events.Module{OCI: ref(wasmfix.Blink)})
		built, err := events.DecodeAs[*events.ModuleBuiltData](reply, events.ModuleBuilt)
		if err != nil {
			t.Fatalf("from the platform's registry: %s %s", reply.Type(), reply.Data())
		}
		if got, err := store.Get(ctx, built.Digest); err != nil || string(got) != string(wasmfix.Blink) {
			t.Fatalf("the platform's store holds %d bytes (%v)", len(got), err)
		}
		for _, src := range []events.Module{{URL: other.URL + "/blink.wasm"}, {OCI: "oci+http://" + strings.TrimPrefix(other.URL, "http://") + "/app:v1"}} {
			reply := build(src)
			failed, err := events.DecodeAs[*events.BuildFailedData](reply, events.BuildFailed)
			if err != nil || failed.Reason != compile.ReasonFetchFailed || !strings.Contains(failed.Message, "not on the fetch allow-list") {
				t.Fatalf("from another loopback service: %s %s", reply.Type(), reply.Data())
			}
		}
	})

	t.Run("gateway moduleURL", func(t *testing.T) {
		app := events.AppRef{Namespace: "default", Name: "sensor", Generation: 1, UID: "uid-sensor"}
		gw, err := v1.ParseRef(platform.GatewayName)
		if err != nil {
			t.Fatal(err)
		}
		// Signed as dispatch signs, with the platform's deployment key: the gateway
		// fetches nothing for a request no manifest vouches for.
		key, err := pki.LoadSigningKey(filepath.Join(stateDir, "pki", "signing.key"))
		if err != nil {
			t.Fatal(err)
		}
		hash, _ := protocol.ConfigHash(nil)
		manifest, err := protocol.EncodeManifest(&protocol.Manifest{Type: protocol.ManifestType, Namespace: app.Namespace,
			App: app.Name, UID: "uid-sensor", Generation: 1, Version: 2, Digest: digest.Of(wasmfix.Sensor).Bytes(), ConfigHash: hash})
		if err != nil {
			t.Fatal(err)
		}
		signature, err := key.Sign(manifest)
		if err != nil {
			t.Fatal(err)
		}
		deploy := func(moduleURL string) int {
			t.Helper()
			e, err := events.New(events.DeploymentRequested, "/test", app.Subject(), &events.DeploymentRequestedData{
				Application: app, Gateway: gw, Digest: digest.Of(wasmfix.Sensor), Size: int64(len(wasmfix.Sensor)),
				ModuleURL: moduleURL, Devices: []string{"sim-0"}, Manifest: manifest, Signature: signature,
			})
			if err != nil {
				t.Fatal(err)
			}
			body, _ := e.MarshalJSON()
			trigger := env.NewSender(t, gw.Namespace, eventauth.TriggerServiceAccount(gw.Name), events.GatewayAudience(gw.Namespace, gw.Name))
			tok, err := trigger.Tokens.Token(ctx)
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest(http.MethodPost, "http://"+p.Addr("gateway-http"), strings.NewReader(string(body)))
			req.Header.Set("content-type", "application/cloudevents+json")
			req.Header.Set("authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if code := deploy(other.URL + "/sensor.wasm"); code != http.StatusUnprocessableEntity {
			t.Fatalf("moduleURL on another loopback service: %d, want 422", code)
		}
		if code := deploy(ref(wasmfix.Sensor)); code != http.StatusAccepted {
			t.Fatalf("moduleURL in the platform's registry: %d, want 202", code)
		}
		if got, err := store.Get(ctx, digest.Of(wasmfix.Sensor)); err != nil || string(got) != string(wasmfix.Sensor) {
			t.Fatalf("the gateway stored %d bytes (%v)", len(got), err)
		}
	})
	if n := otherRequests.Load(); n != 0 {
		t.Fatalf("the other loopback service got %d requests", n)
	}
}
