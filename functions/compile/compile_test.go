package compile_test

import (
	"github.com/wasmbed/wasmbed/api/digest"

	"context"
	"net/http"
	"net/http/httptest"
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
	f, err := compile.New(compile.Config{Store: store, Reader: env.Client})
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
