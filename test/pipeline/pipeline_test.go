// Package pipeline_test runs the whole function chain, build.requested to
// deployment.requested, through the in-process broker with each function behind its
// own HTTP server, as `make run` wires them, against a real apiserver.
package pipeline_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/internal/pki"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wasmbed/wasmbed/api/events"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/functions/compile"
	"github.com/wasmbed/wasmbed/functions/dispatch"
	"github.com/wasmbed/wasmbed/functions/validate"
	"github.com/wasmbed/wasmbed/internal/artifacts"
	"github.com/wasmbed/wasmbed/internal/broker"
	"github.com/wasmbed/wasmbed/internal/eventauth"
	"github.com/wasmbed/wasmbed/internal/eventserver"
	"github.com/wasmbed/wasmbed/internal/sink"
	"github.com/wasmbed/wasmbed/internal/testenv"
)

// recorder is an HTTP subscriber that keeps what it receives.
type recorder struct {
	mu  sync.Mutex
	got []cloudevents.Event
	srv *httptest.Server
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		e, err := cehttp.NewEventFromHTTPRequest(req)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		r.mu.Lock()
		r.got = append(r.got, *e)
		r.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) find(typ events.Type) []cloudevents.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []cloudevents.Event
	for _, e := range r.got {
		if e.Type() == string(typ) {
			out = append(out, e)
		}
	}
	return out
}

// serveFn serves a function behind the sender policy it has in a cluster: the Triggers
// of its subscriptions, with tokens the test apiserver issued.
func serveFn(t *testing.T, env *testenv.Env, name string, h eventserver.Handler) string {
	policy, err := eventauth.NewReceiverPolicy(env.Client, events.ReceiverAudience(name), eventauth.ReceiverAllow(name))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(eventserver.NewHTTPHandler(name, h, eventserver.Options{Auth: policy}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// trigger is the Trigger that delivers t to consumer, with its own identity, as
// config/500-eventing declares it and Knative runs it.
func trigger(t *testing.T, env *testenv.Env, consumer string, typ events.Type, subscriber string, d broker.Delivery) broker.Trigger {
	name := events.TriggerName(consumer, typ)
	s := env.NewSender(t, events.SystemNamespace, eventauth.TriggerServiceAccount(name), events.ReceiverAudience(consumer))
	return broker.Trigger{Name: name, Filter: map[string]string{"type": string(typ)}, Subscriber: subscriber, Delivery: d, Identity: s.User, Tokens: s.Tokens}
}

func eventually(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestChainFromSourceToGateway(t *testing.T) {
	env := testenv.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	store, err := artifacts.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}

	// The broker's ingress address must exist before dispatch (its K_SINK) is built.
	ingress := httptest.NewUnstartedServer(nil)
	t.Cleanup(ingress.Close)
	ingress.Start()
	asDispatch := env.NewSender(t, events.SystemNamespace, events.ServiceAccount("dispatch"), events.BrokerAudience())
	asOperator := env.NewSender(t, events.SystemNamespace, events.ServiceAccount("operator"), events.BrokerAudience())
	toBroker, err := sink.NewHTTP(ingress.URL, 0, asDispatch.Tokens)
	if err != nil {
		t.Fatal(err)
	}
	fromOperator, err := sink.NewHTTP(ingress.URL, 0, asOperator.Tokens)
	if err != nil {
		t.Fatal(err)
	}
	ingressPolicy, err := eventauth.NewReceiverPolicy(env.Client, events.BrokerAudience(), eventauth.BrokerAllow(eventauth.GatewayUser(events.SystemNamespace, "gateway")))
	if err != nil {
		t.Fatal(err)
	}

	cf, _ := compile.New(compile.Config{Store: store})
	validator, err := pki.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	vf, err := validate.New(validate.Config{Store: store, Attester: validator})
	if err != nil {
		t.Fatal(err)
	}
	defer vf.Close(ctx)
	// dispatch deploys only what the validator attested.
	df, err := dispatch.New(dispatch.Config{Reader: env.Client, Sender: toBroker, DefaultGateway: "wasmbed-system/gateway",
		Attestations: store, Validator: validator.Public()})
	if err != nil {
		t.Fatal(err)
	}
	gateway := newRecorder(t)
	operator := newRecorder(t)
	dead := newRecorder(t)

	d := broker.Delivery{Retry: 3, BackoffPolicy: broker.BackoffExponential, BackoffDelay: 20 * time.Millisecond, DeadLetterSink: dead.srv.URL}
	b, err := broker.New(broker.Config{Ingress: ingressPolicy},
		trigger(t, env, "compile", events.BuildRequested, serveFn(t, env, "compile", cf), d),
		trigger(t, env, "validate", events.ModuleBuilt, serveFn(t, env, "validate", vf), d),
		trigger(t, env, "dispatch", events.ModuleValidated, serveFn(t, env, "dispatch", df), d),
		broker.Trigger{Name: "gateway", Filter: map[string]string{"type": string(events.DeploymentRequested), events.ExtGateway: "wasmbed-system.gateway"}, Subscriber: gateway.srv.URL, Delivery: d},
		broker.Trigger{Name: "operator", Subscriber: operator.srv.URL, Delivery: d},
	)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ingress.Config.Handler = b

	// Three devices of the tenant, one of another namespace with the same labels.
	for _, ns := range []string{"tenant-a", "tenant-b"} {
		if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	for i, ns := range []string{"tenant-a", "tenant-a", "tenant-a", "tenant-b"} {
		dev := &v1.Device{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("board-%d", i), Namespace: ns, Labels: map[string]string{"app": "blink"}},
			Spec: v1.DeviceSpec{Board: "virtual"}}
		if err := env.Client.Create(ctx, dev); err != nil {
			t.Fatal(err)
		}
	}
	// The blink example in every language goes the whole way to the gateway.
	for _, lang := range []struct {
		name v1.Language
		file string
	}{
		{v1.LanguageC, "c/blink.c"},
		{v1.LanguageWAT, "wat/blink.wat"},
		{v1.LanguageAssemblyScript, "assemblyscript/blink.ts"},
		{v1.LanguageRust, "rust/blink.rs"},
	} {
		t.Run(string(lang.name), func(t *testing.T) {
			code, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "examples", lang.file))
			if err != nil {
				t.Fatal(err)
			}
			app := &v1.Application{ObjectMeta: metav1.ObjectMeta{Name: "blink-" + string(lang.name), Namespace: "tenant-a"},
				Spec: v1.ApplicationSpec{
					Source:   v1.ApplicationSource{Inline: &v1.InlineSource{Language: lang.name, Code: string(code)}},
					Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "blink"}},
				}}
			if err := env.Client.Create(ctx, app); err != nil {
				t.Fatal(err)
			}
			ref := events.AppRef{Namespace: app.Namespace, Name: app.Name, Generation: app.Generation}
			req, err := events.New(events.BuildRequested, events.SourceOperator, ref.Subject(),
				&events.BuildRequestedData{Application: ref, Source: events.Source{Language: string(lang.name), Code: string(code)}, Boards: []string{"virtual"}})
			if err != nil {
				t.Fatal(err)
			}
			if err := fromOperator.Send(ctx, req); err != nil {
				t.Fatal(err)
			}
			subject := func(es []cloudevents.Event) (out []cloudevents.Event) {
				for _, e := range es {
					if e.Subject() == ref.Subject() {
						out = append(out, e)
					}
				}
				return out
			}
			eventually(t, "deployment.requested at the gateway", time.Minute, func() bool {
				return len(subject(gateway.find(events.DeploymentRequested))) == 1
			})
			dr, err := events.DecodeAs[*events.DeploymentRequestedData](subject(gateway.find(events.DeploymentRequested))[0], events.DeploymentRequested)
			if err != nil {
				t.Fatal(err)
			}
			if len(dr.Devices) != 3 || dr.Gateway.String() != "wasmbed-system/gateway" {
				t.Errorf("deployment request = %+v; want the 3 devices of tenant-a", dr)
			}
			if _, err := store.Get(ctx, dr.Digest); err != nil {
				t.Errorf("the dispatched digest is not in the store: %v", err)
			}
			for _, typ := range []events.Type{events.BuildRequested, events.ModuleBuilt, events.ModuleValidated, events.DeploymentDispatched} {
				eventually(t, string(typ)+" seen by the operator's catch-all trigger", 10*time.Second, func() bool {
					return len(subject(operator.find(typ))) == 1
				})
			}
		})
	}
	if n := len(dead.got); n != 0 {
		t.Errorf("%d events dead-lettered", n)
	}
}

// BenchmarkFunctionStartToReady measures how long a function binary takes from exec to
// answering /readyz, as Knative's scale-from-zero pays it.
func BenchmarkFunctionStartToReady(b *testing.B) {
	dir := b.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	kc := "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://127.0.0.1:1\"}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"
	if err := os.WriteFile(kubeconfig, []byte(kc), 0o600); err != nil {
		b.Fatal(err)
	}
	// What validate and dispatch refuse to start without: the validator's key and a
	// token for the broker.
	validationKey, token := filepath.Join(dir, "validation.key"), filepath.Join(dir, "token")
	if _, err := pki.LoadOrCreateSigningKey(validationKey); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(token, []byte("t"), 0o600); err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"compile", "validate", "dispatch"} {
		bin := filepath.Join(dir, name)
		build := exec.Command("go", "build", "-o", bin, "github.com/wasmbed/wasmbed/cmd/"+name)
		build.Dir = testenv.RepoRoot()
		if out, err := build.CombinedOutput(); err != nil {
			b.Fatalf("build %s: %v\n%s", name, err, out)
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				l, _ := net.Listen("tcp", "127.0.0.1:0")
				port := l.Addr().(*net.TCPAddr).Port
				l.Close()
				cmd := exec.Command(bin)
				cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port), "ARTIFACTS="+dir+"/store", "K_SINK=http://127.0.0.1:1", "KUBECONFIG="+kubeconfig,
					"VALIDATION_KEY_FILE="+validationKey, "K_SINK_TOKEN_FILE="+token)
				start := time.Now()
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				url := fmt.Sprintf("http://127.0.0.1:%d/readyz", port)
				for {
					resp, err := http.Get(url)
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode == 200 {
							break
						}
					}
					if time.Since(start) > 10*time.Second {
						_ = cmd.Process.Kill()
						b.Fatalf("%s not ready after 10 s", name)
					}
					time.Sleep(time.Millisecond)
				}
				b.ReportMetric(float64(time.Since(start).Microseconds())/1000, "ms-to-ready")
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
		})
	}
}
