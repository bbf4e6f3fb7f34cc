package compile_test

import (
	"github.com/wasmbed/wasmbed/api/digest"

	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/functions/compile"
	"github.com/wasmbed/wasmbed/internal/artifacts"
	"github.com/wasmbed/wasmbed/internal/eventserver"
	"github.com/wasmbed/wasmbed/internal/testenv"
	fixtures "github.com/wasmbed/wasmbed/testdata/wasm"
)

var app = events.AppRef{Namespace: "default", Name: "blink", Generation: 1}

func example(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "examples", path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func request(t *testing.T, src events.Source) cloudevents.Event {
	t.Helper()
	e, err := events.New(events.BuildRequested, events.SourceOperator, app.Subject(),
		&events.BuildRequestedData{Application: app, Source: src, Boards: []string{"virtual"}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func newFunction(t *testing.T) (*compile.Function, artifacts.Store) {
	t.Helper()
	store, err := artifacts.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, err := compile.New(compile.Config{Store: store, Optimize: true})
	if err != nil {
		t.Fatal(err)
	}
	return f, store
}

func TestBuilds(t *testing.T) {
	f, store := newFunction(t)
	stored, err := store.Put(context.Background(), fixtures.Blink)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		src     events.Source
		built   bool
		reason  string
		message string // substring of the build.failed message
	}{
		{"C blink", events.Source{Language: "c", Code: example(t, "c/blink.c")}, true, "", ""},
		{"WAT blink", events.Source{Language: "wat", Code: example(t, "wat/blink.wat")}, true, "", ""},
		{"C compile error", events.Source{Language: "c", Code: "#include \"wasmbed.h\"\nWASMBED_EXPORT(loop) int loop(void) {\n  return undefined_thing;\n}\n"},
			false, compile.ReasonCompileError, "main.c:3:"},
		{"WAT syntax error", events.Source{Language: "wat", Code: "(module\n  (func (export \"loop\") (result i32)\n    i32.cnst 1))\n"},
			false, compile.ReasonCompileError, "main.wat:3:"},
		{"module without loop", events.Source{Language: "wat", Code: "(module (func (export \"setup\")))"},
			false, compile.ReasonCompileError, "loop"},
		{"prebuilt by digest", events.Source{Module: &events.Module{Digest: stored}}, true, "", ""},
		{"prebuilt digest not stored", events.Source{Module: &events.Module{Digest: digest.Of([]byte("nope"))}},
			false, compile.ReasonSourceNotFound, "not in the artifact store"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reply, err := f.Handle(context.Background(), request(t, tc.src))
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if tc.built {
				d, err := events.DecodeAs[*events.ModuleBuiltData](*reply, events.ModuleBuilt)
				if err != nil {
					t.Fatalf("want module.built, got %s: %s", reply.Type(), reply.Data())
				}
				m, err := store.Get(context.Background(), d.Digest)
				if err != nil || int64(len(m)) != d.Size || d.Toolchain == "" {
					t.Errorf("stored module %d bytes (%v), event %+v", len(m), err, d)
				}
				return
			}
			d, err := events.DecodeAs[*events.BuildFailedData](*reply, events.BuildFailed)
			if err != nil {
				t.Fatalf("want build.failed, got %s: %s", reply.Type(), reply.Data())
			}
			if d.Reason != tc.reason || !strings.Contains(d.Message, tc.message) {
				t.Errorf("build.failed reason %q message %q; want %q containing %q", d.Reason, d.Message, tc.reason, tc.message)
			}
			if strings.Contains(d.Message, "goroutine") || strings.Contains(d.Message, ".go:") {
				t.Errorf("message looks like a stack trace: %q", d.Message)
			}
		})
	}
}

func TestPrebuiltFromURLAndConfigMap(t *testing.T) {
	env := testenv.Start(t)
	store, err := artifacts.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "modules", Namespace: "default"},
		BinaryData: map[string][]byte{"blink.wasm": fixtures.Blink}}
	if err := env.Client.Create(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/blink.wasm" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(fixtures.Blink)
	}))
	defer srv.Close()
	f, err := compile.New(compile.Config{Store: store, Reader: env.Client,
		Fetch: artifacts.NewClientConfig().WithAllowList(allowList(t, hostOf(t, srv.URL)))})
	if err != nil {
		t.Fatal(err)
	}

	blink := digest.Of(fixtures.Blink)
	cases := []struct {
		name   string
		module events.Module
		reason string // empty: built
	}{
		{"url", events.Module{URL: srv.URL + "/blink.wasm"}, ""},
		{"url with the right digest", events.Module{URL: srv.URL + "/blink.wasm", Digest: blink}, ""},
		{"url with a wrong digest", events.Module{URL: srv.URL + "/blink.wasm", Digest: digest.Of([]byte("x"))}, compile.ReasonDigestMismatch},
		{"url not found", events.Module{URL: srv.URL + "/missing.wasm"}, compile.ReasonSourceNotFound},
		{"configMap", events.Module{ConfigMap: &events.ConfigMapKey{Name: "modules", Key: "blink.wasm"}}, ""},
		{"configMap wrong digest", events.Module{ConfigMap: &events.ConfigMapKey{Name: "modules", Key: "blink.wasm"}, Digest: digest.Of([]byte("x"))}, compile.ReasonDigestMismatch},
		{"configMap missing key", events.Module{ConfigMap: &events.ConfigMapKey{Name: "modules", Key: "other.wasm"}}, compile.ReasonSourceNotFound},
		{"configMap missing", events.Module{ConfigMap: &events.ConfigMapKey{Name: "nope", Key: "blink.wasm"}}, compile.ReasonSourceNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.module
			reply, err := f.Handle(context.Background(), request(t, events.Source{Module: &m}))
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if tc.reason == "" {
				d, err := events.DecodeAs[*events.ModuleBuiltData](*reply, events.ModuleBuilt)
				if err != nil || d.Digest != blink {
					t.Fatalf("want module.built of %s, got %s: %s", blink, reply.Type(), reply.Data())
				}
				return
			}
			d, err := events.DecodeAs[*events.BuildFailedData](*reply, events.BuildFailed)
			if err != nil || d.Reason != tc.reason {
				t.Fatalf("want build.failed %s, got %s: %s", tc.reason, reply.Type(), reply.Data())
			}
		})
	}
}

// A ConfigMap source is read from the Application's namespace and no other: a build
// request cannot name another namespace's ConfigMap.
func TestConfigMapOnlyFromTheApplicationsNamespace(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	store, err := artifacts.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, err := compile.New(compile.Config{Store: store, Reader: env.Client})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "other"}}); err != nil {
		t.Fatal(err)
	}
	theirs := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "theirs", Namespace: "other"},
		BinaryData: map[string][]byte{"blink.wasm": fixtures.Blink}}
	if err := env.Client.Create(ctx, theirs); err != nil {
		t.Fatal(err)
	}
	// data is a build.requested payload for <ns>/app whose source.module is module.
	data := func(ns, module string) string {
		return `{"application":{"namespace":"` + ns + `","name":"app","generation":1},` +
			`"source":{"module":` + module + `},"boards":["virtual"]}`
	}
	for _, tc := range []struct {
		name, data string
		want       string // reply type, or "bad event" for a refused request
		message    string
	}{
		{"by name from another namespace's Application", data("default", `{"configMap":{"name":"theirs","key":"blink.wasm"}}`),
			string(events.BuildFailed), "ConfigMap default/theirs not found"},
		{"with a namespace field", data("default", `{"configMap":{"name":"theirs","namespace":"other","key":"blink.wasm"}}`),
			string(events.BuildFailed), "ConfigMap default/theirs not found"},
		{"as namespace/name", data("default", `{"configMap":{"name":"other/theirs","key":"blink.wasm"}}`),
			"bad event", "configMap.name"},
		{"by the namespace's own Application", data("other", `{"configMap":{"name":"theirs","key":"blink.wasm"}}`),
			string(events.ModuleBuilt), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := cloudevents.NewEvent()
			e.SetID("1")
			e.SetType(string(events.BuildRequested))
			e.SetSource(events.SourceOperator)
			if err := e.SetData(cloudevents.ApplicationJSON, []byte(tc.data)); err != nil {
				t.Fatal(err)
			}
			reply, err := f.Handle(ctx, e)
			if tc.want == "bad event" {
				if err == nil || !strings.Contains(err.Error(), tc.message) {
					t.Fatalf("Handle = %v, %v; want the request refused naming %q", reply, err, tc.message)
				}
				return
			}
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if reply.Type() != tc.want {
				t.Fatalf("reply %s: %s; want %s", reply.Type(), reply.Data(), tc.want)
			}
			if tc.want == string(events.BuildFailed) {
				d, err := events.DecodeAs[*events.BuildFailedData](*reply, events.BuildFailed)
				if err != nil || d.Reason != compile.ReasonSourceNotFound || !strings.Contains(d.Message, tc.message) {
					t.Fatalf("build.failed %+v (%v), want %s %q", d, err, compile.ReasonSourceNotFound, tc.message)
				}
			}
		})
	}
}

func TestBadEvent(t *testing.T) {
	f, _ := newFunction(t)
	env := testenv.Start(t)
	auth, policy := env.Receiver(t, "compile", events.BuildRequested)
	srv := httptest.NewServer(eventserver.NewHTTPHandler("compile", f, eventserver.Options{Auth: policy}))
	defer srv.Close()
	r, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(`{"application":{"namespace":"default","name":"x","generation":1},"source":{"language":"cobol","code":"x"},"boards":["virtual"]}`))
	for k, v := range map[string]string{"ce-specversion": "1.0", "ce-id": "1", "ce-type": string(events.BuildRequested), "ce-source": "/curl", "content-type": "application/json", "authorization": auth} {
		r.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
}

func allowList(t *testing.T, patterns ...string) artifacts.AllowList {
	t.Helper()
	a, err := artifacts.NewAllowList(patterns...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func hostOf(t *testing.T, rawurl string) string {
	t.Helper()
	u, err := url.Parse(rawurl)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// Prebuilt modules come from allow-listed hosts only, never from special addresses
// of other hosts, redirects included, and the build.failed message quotes nothing a
// server answered.
func TestPrebuiltSourcesAreGuarded(t *testing.T) {
	const secret = "SECRET-internal-answer"
	origins := testenv.StartOrigins(t, fixtures.Blink, secret)
	listed, unlisted, unlistedRequests := origins.Listed, origins.Unlisted, origins.Reached
	store, err := artifacts.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	newFn := func(cfg artifacts.ClientConfig) *compile.Function {
		f, err := compile.New(compile.Config{Store: store, Fetch: cfg})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	onlyListed := newFn(artifacts.NewClientConfig().WithAllowList(allowList(t, hostOf(t, listed.URL))))
	anyHost := newFn(artifacts.NewClientConfig().WithAllowList(allowList(t, "*")))
	byDefault := newFn(artifacts.ClientConfig{})
	redirect := func(to string) string { return listed.URL + "/redirect?to=" + url.QueryEscape(to) }

	for _, tc := range []struct {
		name    string
		f       *compile.Function
		module  events.Module
		message []string // substrings of the build.failed message; none: built
	}{
		{"listed host", onlyListed, events.Module{URL: listed.URL + "/blink.wasm"}, nil},
		{"unlisted loopback server", onlyListed, events.Module{URL: unlisted.URL + "/blink.wasm"},
			[]string{hostOf(t, unlisted.URL), "not on the fetch allow-list"}},
		{"no allow-list", byDefault, events.Module{URL: listed.URL + "/blink.wasm"},
			[]string{hostOf(t, listed.URL), "not on the fetch allow-list"}},
		{"unlisted registry", onlyListed, events.Module{OCI: "oci+http://" + hostOf(t, unlisted.URL) + "/app:v1"},
			[]string{hostOf(t, unlisted.URL), "not on the fetch allow-list"}},
		{"redirect to an unlisted loopback server", onlyListed, events.Module{URL: redirect(unlisted.URL + "/blink.wasm")},
			[]string{hostOf(t, unlisted.URL), "loopback"}},
		{"redirect to cloud metadata", onlyListed, events.Module{URL: redirect("http://169.254.169.254/latest/meta-data/")},
			[]string{"169.254.169.254", "link-local"}},
		{"cloud metadata, any host allowed", anyHost, events.Module{URL: "http://169.254.169.254/latest/meta-data/"},
			[]string{"169.254.169.254", "link-local"}},
		{"loopback, any host allowed", anyHost, events.Module{URL: unlisted.URL + "/blink.wasm"},
			[]string{"127.0.0.1", "loopback"}},
		{"localhost, any host allowed", anyHost, events.Module{URL: "http://localhost:" + strings.Split(hostOf(t, unlisted.URL), ":")[1] + "/blink.wasm"},
			[]string{"localhost", "127.0.0.1", "loopback"}},
		{"server error", onlyListed, events.Module{URL: listed.URL + "/fail"}, []string{"HTTP 500 Internal Server Error"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.module
			reply, err := tc.f.Handle(context.Background(), request(t, events.Source{Module: &m}))
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if len(tc.message) == 0 {
				if reply.Type() != string(events.ModuleBuilt) {
					t.Fatalf("want module.built, got %s: %s", reply.Type(), reply.Data())
				}
				return
			}
			d, err := events.DecodeAs[*events.BuildFailedData](*reply, events.BuildFailed)
			if err != nil || d.Reason != compile.ReasonFetchFailed {
				t.Fatalf("want build.failed %s, got %s: %s", compile.ReasonFetchFailed, reply.Type(), reply.Data())
			}
			for _, want := range tc.message {
				if !strings.Contains(d.Message, want) {
					t.Errorf("message %q does not name %q", d.Message, want)
				}
			}
			if strings.Contains(string(reply.Data()), "SECRET") {
				t.Errorf("the reply quotes the server: %s", reply.Data())
			}
		})
	}
	if n := unlistedRequests.Load(); n != 0 {
		t.Fatalf("the unlisted server got %d requests", n)
	}
}
