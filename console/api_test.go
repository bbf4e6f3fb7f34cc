package console_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wasmbed/wasmbed/api/events"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/console"
	"github.com/wasmbed/wasmbed/internal/eventauth"
	"github.com/wasmbed/wasmbed/internal/testenv"
)

var (
	env         *testenv.Env
	adminToken  string // a ServiceAccount bound to cluster-admin
	viewerToken string // may only get, list and watch Devices in "default"
	gwHits      atomic.Int32
	srv         *httptest.Server
)

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "console tests:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

// fakeGateway answers the gateway's device log endpoint.
func fakeGateway() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gwHits.Add(1)
		if r.URL.Path != "/devices/default/dev-a/log" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, `{"device":"default/dev-a","connected":true,"lines":[{"time":"2026-01-02T03:04:05Z","level":"info","app":"blink","message":"blink: started"}]}`)
	}))
}

func setup(m *testing.M) (int, error) {
	var err error
	if env, err = testenv.StartEnv(); err != nil {
		return 0, err
	}
	defer env.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if adminToken, err = serviceAccountToken(ctx, "console-admin", &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "console-admin"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
	}); err != nil {
		return 0, err
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "device-viewer", Namespace: "default"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{v1.GroupName}, Resources: []string{"devices"}, Verbs: []string{"get", "list", "watch"}}}}
	if err := env.Client.Create(ctx, role); err != nil {
		return 0, err
	}
	if viewerToken, err = serviceAccountToken(ctx, "viewer", &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "viewer", Namespace: "default"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "device-viewer"},
	}); err != nil {
		return 0, err
	}
	gw := fakeGateway()
	defer gw.Close()
	policy, err := eventauth.NewReceiverPolicy(env.Client, events.ReceiverAudience("console"), eventauth.ReceiverAllow("console"))
	if err != nil {
		return 0, err
	}
	s, err := console.New(console.Config{REST: env.Config, ClientBuffer: 64, EventAuth: policy,
		GatewayURL: func(g v1.Ref) string {
			if g.String() == "wasmbed-system/gateway" {
				return gw.URL
			}
			return ""
		}})
	if err != nil {
		return 0, err
	}
	srv = httptest.NewServer(s)
	defer srv.Close()
	defer s.Close()
	return m.Run(), nil
}

// serviceAccountToken creates a ServiceAccount in "default", binds it with binding
// (its subject is filled in) and returns a token for it.
func serviceAccountToken(ctx context.Context, name string, binding client.Object) (string, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
	if err := env.Client.Create(ctx, sa); err != nil {
		return "", fmt.Errorf("create service account: %w", err)
	}
	subj := []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: "default"}}
	switch b := binding.(type) {
	case *rbacv1.ClusterRoleBinding:
		b.Subjects = subj
	case *rbacv1.RoleBinding:
		b.Subjects = subj
	}
	if err := env.Client.Create(ctx, binding); err != nil {
		return "", fmt.Errorf("create binding: %w", err)
	}
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		return "", err
	}
	tr, err := cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, name, &authnv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token request: %w", err)
	}
	return tr.Status.Token, nil
}

// call makes an API call and decodes the JSON answer into out (when not nil).
func call(t *testing.T, token, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

func TestWithoutTokenTheAPIAnswers401(t *testing.T) {
	var e console.Error
	if code := call(t, "", "GET", "/api/v1/devices", nil, &e); code != http.StatusUnauthorized || e.Error == "" || !strings.Contains(e.Detail, "token") {
		t.Fatalf("got %d %+v, want 401 saying to send a token", code, e)
	}
	if code := call(t, "not-a-token", "GET", "/api/v1/devices", nil, &e); code != http.StatusUnauthorized {
		t.Fatalf("bad token: got %d %+v, want the apiserver's 401", code, e)
	}
}

func TestWhoAmINamesTheTokensUser(t *testing.T) {
	var who console.WhoAmI
	if code := call(t, viewerToken, "GET", "/api/v1/whoami", nil, &who); code != 200 || who.Username != "system:serviceaccount:default:viewer" {
		t.Fatalf("got %d %+v", code, who)
	}
}

func TestListAndGetDevicesAndGateways(t *testing.T) {
	ctx := context.Background()
	for _, ns := range []string{"list-a", "list-b"} {
		if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
		d := &v1.Device{ObjectMeta: metav1.ObjectMeta{Name: "d1", Namespace: ns}, Spec: v1.DeviceSpec{Board: "virtual"}}
		if err := env.Client.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	gw := &v1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "list-a"}}
	if err := env.Client.Create(ctx, gw); err != nil {
		t.Fatal(err)
	}
	var all v1.DeviceList
	if code := call(t, adminToken, "GET", "/api/v1/devices", nil, &all); code != 200 || len(all.Items) < 2 {
		t.Fatalf("all devices: %d, %d items", code, len(all.Items))
	}
	var one v1.DeviceList
	if code := call(t, adminToken, "GET", "/api/v1/namespaces/list-b/devices", nil, &one); code != 200 || len(one.Items) != 1 || one.Items[0].Namespace != "list-b" {
		t.Fatalf("list-b devices: %d %+v", code, one.Items)
	}
	var d v1.Device
	if code := call(t, adminToken, "GET", "/api/v1/namespaces/list-a/devices/d1", nil, &d); code != 200 || d.Spec.Board != "virtual" || d.ManagedFields != nil {
		t.Fatalf("get device: %d %+v", code, d)
	}
	var gws v1.GatewayList
	var raw json.RawMessage
	if code := call(t, adminToken, "GET", "/api/v1/gateways?namespace=list-a", nil, &raw); code != 200 || json.Unmarshal(raw, &gws) != nil || len(gws.Items) != 1 {
		t.Fatalf("gateways: %d %s", code, raw)
	}
	var e console.Error
	if code := call(t, adminToken, "GET", "/api/v1/namespaces/list-a/devices/nope", nil, &e); code != 404 || !strings.Contains(e.Detail, "nope") {
		t.Fatalf("missing device: %d %+v", code, e)
	}
}

const blink = `#include "wasmbed.h"
WASMBED_EXPORT(loop) int32_t loop(void) { return 500; }
`

func TestCreateUpdateAndDeleteAnApplicationFromSource(t *testing.T) {
	var app v1.Application
	req := console.ApplicationRequest{Name: "src-app", Source: &v1.InlineSource{Language: v1.LanguageC, Code: blink},
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "canary"}}, Config: map[string]string{"k": "v"}}
	if code := call(t, adminToken, "POST", "/api/v1/namespaces/default/applications", req, &app); code != http.StatusCreated {
		t.Fatalf("create: %d %+v", code, app)
	}
	var got v1.Application
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "src-app"}, &got); err != nil {
		t.Fatal(err)
	}
	if got.Spec.Source.Inline == nil || got.Spec.Source.Inline.Code != blink || got.Spec.Selector.MatchLabels["tier"] != "canary" || got.Spec.Config["k"] != "v" {
		t.Fatalf("stored spec: %+v", got.Spec)
	}
	req.Source.Language = v1.LanguageWAT
	req.Source.Code = "(module)"
	req.Selector = nil
	var updated v1.Application
	if code := call(t, adminToken, "PUT", "/api/v1/namespaces/default/applications/src-app", req, &updated); code != 200 {
		t.Fatalf("update: %d", code)
	}
	if app := updated; app.Spec.Source.Inline.Language != v1.LanguageWAT || len(app.Spec.Selector.MatchLabels) != 0 || app.Generation != 2 {
		t.Fatalf("updated: %+v gen %d", app.Spec, app.Generation)
	}
	var e console.Error
	if code := call(t, adminToken, "POST", "/api/v1/namespaces/default/applications", req, &e); code != http.StatusConflict {
		t.Fatalf("create twice: %d %+v", code, e)
	}
	if code := call(t, adminToken, "DELETE", "/api/v1/namespaces/default/applications/src-app", nil, nil); code != 200 {
		t.Fatalf("delete: %d", code)
	}
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "src-app"}, &got)
	if !apierrors.IsNotFound(err) {
		t.Fatalf("after delete: %v", err)
	}
}

func TestInvalidApplicationsAreRefusedWithTheApiserversMessage(t *testing.T) {
	var e console.Error
	req := console.ApplicationRequest{Name: "bad-lang", Source: &v1.InlineSource{Language: "cobol", Code: "x"}}
	if code := call(t, adminToken, "POST", "/api/v1/namespaces/default/applications", req, &e); code != http.StatusUnprocessableEntity ||
		!strings.Contains(e.Detail, "spec.source.inline.language") || len(e.Causes) == 0 || e.Causes[0].Field != "spec.source.inline.language" {
		t.Fatalf("got %d %+v, want 422 naming spec.source.inline.language", code, e)
	}
	if code := call(t, adminToken, "POST", "/api/v1/namespaces/default/applications", console.ApplicationRequest{Name: "nothing"}, &e); code != 400 || !strings.Contains(e.Detail, "exactly one") {
		t.Fatalf("no source: %d %+v", code, e)
	}
	req = console.ApplicationRequest{Name: "Bad_Name", Source: &v1.InlineSource{Language: "c", Code: blink}}
	if code := call(t, adminToken, "POST", "/api/v1/namespaces/default/applications", req, &e); code != 400 || !strings.Contains(e.Detail, "Bad_Name") {
		t.Fatalf("bad name: %d %+v", code, e)
	}
	req = console.ApplicationRequest{Name: "not-wasm", Module: &console.ModuleUpload{Wasm: []byte("hello")}}
	if code := call(t, adminToken, "POST", "/api/v1/namespaces/default/applications", req, &e); code != 400 || !strings.Contains(e.Error, "webassembly") {
		t.Fatalf("not wasm: %d %+v", code, e)
	}
}

// emptyModule is the smallest valid module: magic and version.
var emptyModule = []byte{0, 'a', 's', 'm', 1, 0, 0, 0}

func TestUploadedModuleIsStoredInAConfigMap(t *testing.T) {
	var app v1.Application
	req := console.ApplicationRequest{Name: "uploaded", Module: &console.ModuleUpload{Wasm: emptyModule}}
	if code := call(t, adminToken, "POST", "/api/v1/namespaces/default/applications", req, &app); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	m := app.Spec.Source.Module
	if m == nil || m.ConfigMap == nil || m.ConfigMap.Name != "uploaded-module" || m.ConfigMap.Key != "module.wasm" ||
		m.Digest != "sha256:93a44bbb96c751218e4c00d479e4c14358122a389acca16205b1e4d0dc5f9476" {
		t.Fatalf("module source: %+v", m)
	}
	var cm corev1.ConfigMap
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "uploaded-module"}, &cm); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cm.BinaryData["module.wasm"], emptyModule) || len(cm.OwnerReferences) != 1 || cm.OwnerReferences[0].UID != app.UID {
		t.Fatalf("configmap: %+v", cm)
	}
	if code := call(t, adminToken, "DELETE", "/api/v1/namespaces/default/applications/uploaded", nil, nil); code != 200 {
		t.Fatalf("delete: %d", code)
	}
	err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(&cm), &cm)
	if !apierrors.IsNotFound(err) {
		t.Fatalf("module configmap after delete: %v", err)
	}
}

func TestRolloutActionsSetTheSpec(t *testing.T) {
	req := console.ApplicationRequest{Name: "roll", Source: &v1.InlineSource{Language: v1.LanguageC, Code: blink}}
	if code := call(t, adminToken, "POST", "/api/v1/namespaces/default/applications", req, nil); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	for _, tc := range []struct {
		action              string
		paused, abort, auto bool
	}{
		{"pause", true, false, true},
		{"resume", false, false, true},
		{"abort", false, true, false},
		{"rollback", false, true, true},
		{"resume", false, false, true},
	} {
		var app v1.Application
		if code := call(t, adminToken, "POST", "/api/v1/namespaces/default/applications/roll/rollout/"+tc.action, nil, &app); code != 200 {
			t.Fatalf("%s: %d", tc.action, code)
		}
		r := app.Spec.Rollout
		auto := r.AutoRollback == nil || *r.AutoRollback
		if r.Paused != tc.paused || r.Abort != tc.abort || auto != tc.auto {
			t.Fatalf("after %s: %+v", tc.action, r)
		}
	}
	var e console.Error
	if code := call(t, adminToken, "POST", "/api/v1/namespaces/default/applications/roll/rollout/explode", nil, &e); code != 404 || !strings.Contains(e.Detail, "pause") {
		t.Fatalf("unknown action: %d %+v", code, e)
	}
	// The edit form sends the rollout policy; the apiserver's CEL refusals come back
	// naming the field, and a valid policy is stored.
	three := int32(3)
	bad := console.ApplicationRequest{Name: "roll", Source: &v1.InlineSource{Language: v1.LanguageC, Code: blink},
		Rollout: &v1.RolloutSpec{Rate: &v1.RolloutRate{DevicesPerMinute: 5, Growth: &v1.RateGrowth{Factor: "20", AfterStarted: &three}}}}
	if code := call(t, adminToken, "PUT", "/api/v1/namespaces/default/applications/roll", bad, &e); code != 422 ||
		len(e.Causes) == 0 || e.Causes[0].Field != "spec.rollout.rate.growth.factor" || !strings.Contains(e.Causes[0].Message, "between 1.1 and 10") {
		t.Fatalf("bad policy: %d %+v", code, e)
	}
	good := bad
	good.Rollout = &v1.RolloutSpec{Rate: &v1.RolloutRate{DevicesPerMinute: 5}, DeviceTimeout: &metav1.Duration{Duration: time.Minute}}
	var stored v1.Application
	if code := call(t, adminToken, "PUT", "/api/v1/namespaces/default/applications/roll", good, &stored); code != 200 ||
		stored.Spec.Rollout.Rate == nil || stored.Spec.Rollout.DeviceTimeout.Duration != time.Minute {
		t.Fatalf("policy: %d %+v", code, stored.Spec.Rollout)
	}
	// Approve sets the annotation the operator records and removes (kubectl annotate).
	var app v1.Application
	if code := call(t, adminToken, "POST", "/api/v1/namespaces/default/applications/roll/rollout/approve?step=2", nil, &app); code != 200 ||
		app.Annotations["wasmbed.dev/approve-step"] != "2" {
		t.Fatalf("approve: %d, annotations %v", code, app.Annotations)
	}
	for _, step := range []string{"", "0", "11", "two", "2%22,%22x"} {
		if code := call(t, adminToken, "POST", "/api/v1/namespaces/default/applications/roll/rollout/approve?step="+step, nil, &e); code != 400 || !strings.Contains(e.Detail, "?step=N") {
			t.Fatalf("approve step %q: %d %+v", step, code, e)
		}
	}
	if code := call(t, viewerToken, "POST", "/api/v1/namespaces/default/applications/roll/rollout/approve?step=1", nil, &e); code != 403 {
		t.Fatalf("a viewer approves a step: %d %+v", code, e)
	}
}

func TestEventsOfAnObject(t *testing.T) {
	ctx := context.Background()
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "ev1", Namespace: "default"},
		InvolvedObject: corev1.ObjectReference{APIVersion: v1.SchemeGroupVersion.String(), Kind: "Application", Name: "evapp", Namespace: "default"},
		Reason:         "BuildFailed", Message: "blink.c:3: error", Type: corev1.EventTypeWarning,
		LastTimestamp: metav1.Now(), Source: corev1.EventSource{Component: "wasmbed-application"}}
	other := ev.DeepCopy()
	other.Name, other.InvolvedObject.Name = "ev2", "someone-else"
	for _, e := range []*corev1.Event{ev, other} {
		if err := env.Client.Create(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	var list console.EventList
	if code := call(t, adminToken, "GET", "/api/v1/namespaces/default/applications/evapp/events", nil, &list); code != 200 || len(list.Items) != 1 || list.Items[0].Reason != "BuildFailed" {
		t.Fatalf("events: %d %+v", code, list.Items)
	}
	if code := call(t, adminToken, "GET", "/api/v1/events?namespace=default", nil, &list); code != 200 || len(list.Items) < 2 {
		t.Fatalf("recent events: %d %d", code, len(list.Items))
	}
}

// TestRBACIsTheApiserversDecision: the console passes the user's token through; the
// apiserver's 403 comes back with its message, and nothing is done on the user's
// behalf with other rights.
func TestRBACIsTheApiserversDecision(t *testing.T) {
	var devs v1.DeviceList
	if code := call(t, viewerToken, "GET", "/api/v1/namespaces/default/devices", nil, &devs); code != 200 {
		t.Fatalf("viewer lists devices in default: %d", code)
	}
	var e console.Error
	if code := call(t, viewerToken, "GET", "/api/v1/devices", nil, &e); code != 403 || !strings.Contains(e.Detail, "system:serviceaccount:default:viewer") {
		t.Fatalf("viewer lists devices everywhere: %d %+v", code, e)
	}
	if code := call(t, viewerToken, "GET", "/api/v1/namespaces/default/applications", nil, &e); code != 403 || e.Error != "forbidden" {
		t.Fatalf("viewer lists applications: %d %+v", code, e)
	}
	req := console.ApplicationRequest{Name: "sneaky", Module: &console.ModuleUpload{Wasm: emptyModule}}
	if code := call(t, viewerToken, "POST", "/api/v1/namespaces/default/applications", req, &e); code != 403 {
		t.Fatalf("viewer creates an application: %d %+v", code, e)
	}
	var cm corev1.ConfigMap
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "sneaky-module"}, &cm); !apierrors.IsNotFound(err) {
		t.Fatalf("a refused upload left a ConfigMap: %v", err)
	}
	if code := call(t, viewerToken, "POST", "/api/v1/namespaces/default/applications/roll/rollout/pause", nil, &e); code != 403 {
		t.Fatalf("viewer pauses a rollout: %d %+v", code, e)
	}
	if code := call(t, viewerToken, "GET", "/api/v1/namespaces/list-a/devices/d1/log", nil, &e); code != 403 && code != 404 {
		t.Fatalf("viewer reads a log in another namespace: %d %+v", code, e)
	}
}

func TestDeviceLogComesFromTheDevicesGateway(t *testing.T) {
	ctx := context.Background()
	d := &v1.Device{ObjectMeta: metav1.ObjectMeta{Name: "dev-a", Namespace: "default"}, Spec: v1.DeviceSpec{Board: "virtual"}}
	if err := env.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	var log console.DeviceLog
	before := gwHits.Load()
	if code := call(t, viewerToken, "GET", "/api/v1/namespaces/default/devices/dev-a/log", nil, &log); code != 200 || log.Note == "" || gwHits.Load() != before {
		t.Fatalf("never connected: %d %+v", code, log)
	}
	d.Status.Gateway = "wasmbed-system/gateway"
	d.Status.Phase = v1.DeviceConnected
	if err := env.Client.Status().Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	if code := call(t, viewerToken, "GET", "/api/v1/namespaces/default/devices/dev-a/log", nil, &log); code != 200 ||
		!log.Connected || len(log.Lines) != 1 || log.Lines[0].Message != "blink: started" || log.Gateway != "wasmbed-system/gateway" {
		t.Fatalf("log: %d %+v", code, log)
	}
}

// sse reads server-sent events.
type sse struct {
	body io.Closer
	sc   *bufio.Scanner
}

func openStream(t *testing.T, token, query string) *sse {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/stream"+query, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("stream: %d %s", resp.StatusCode, b)
	}
	t.Cleanup(func() { resp.Body.Close() })
	s := &sse{body: resp.Body, sc: bufio.NewScanner(resp.Body)}
	s.sc.Buffer(make([]byte, 1<<20), 1<<20)
	return s
}

// next returns the next event's name and data, skipping comments; it fails after 20 s.
func (s *sse) next(t *testing.T) (string, string) {
	t.Helper()
	type ev struct{ name, data string }
	ch := make(chan ev, 1)
	go func() {
		var e ev
		for s.sc.Scan() {
			line := s.sc.Text()
			switch {
			case line == "" && e.name != "":
				ch <- e
				return
			case strings.HasPrefix(line, "event: "):
				e.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				e.data = strings.TrimPrefix(line, "data: ")
			}
		}
		ch <- ev{"eof", ""}
	}()
	select {
	case e := <-ch:
		return e.name, e.data
	case <-time.After(20 * time.Second):
		s.body.Close()
		t.Fatal("no stream event in 20 s")
		return "", ""
	}
}

// triggerAuth is the Authorization header of the Trigger that delivers typ to the
// console, with a token the test apiserver issued.
func triggerAuth(t *testing.T, typ string) string {
	t.Helper()
	s := env.NewSender(t, events.SystemNamespace, eventauth.TriggerServiceAccount(events.TriggerName("console", events.Type(typ))), events.ReceiverAudience("console"))
	tok, err := s.Tokens.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + tok
}

func postEvent(t *testing.T, typ, subject, data string) {
	t.Helper()
	req, _ := http.NewRequest("POST", srv.URL+"/", strings.NewReader(data))
	req.Header.Set("Authorization", triggerAuth(t, typ))
	req.Header.Set("ce-specversion", "1.0")
	req.Header.Set("ce-type", typ)
	req.Header.Set("ce-source", "/wasmbed/gateways/wasmbed-system/gateway")
	req.Header.Set("ce-id", fmt.Sprint(time.Now().UnixNano()))
	req.Header.Set("ce-subject", subject)
	req.Header.Set("content-type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("post %s: %d %s", typ, resp.StatusCode, b)
	}
}

func TestStreamCarriesChangesAndCloudEventsTheUserMaySee(t *testing.T) {
	s := openStream(t, viewerToken, "?namespace=default")
	if name, _ := s.next(t); name != "ready" {
		t.Fatalf("first event %q, want ready", name)
	}
	d := &v1.Device{ObjectMeta: metav1.ObjectMeta{Name: "streamed", Namespace: "default"}, Spec: v1.DeviceSpec{Board: "virtual"}}
	if err := env.Client.Create(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	name, data := s.next(t)
	var ch struct {
		Type   string    `json:"type"`
		Kind   string    `json:"kind"`
		Object v1.Device `json:"object"`
	}
	if err := json.Unmarshal([]byte(data), &ch); err != nil || name != "change" || ch.Type != "ADDED" || ch.Kind != "Device" || ch.Object.Name != "streamed" {
		t.Fatalf("got %s %s (%v)", name, data, err)
	}
	// A telemetry event of another namespace is not shown to this user; one of
	// default is.
	tel := `{"namespace":"%s","device":"sim-0","application":"blink","topic":"t","payload":"AQI="}`
	postEvent(t, "dev.wasmbed.device.telemetry", "list-a/sim-0", fmt.Sprintf(tel, "list-a"))
	postEvent(t, "dev.wasmbed.device.telemetry", "default/sim-0", fmt.Sprintf(tel, "default"))
	name, data = s.next(t)
	var ce console.CloudEvent
	if err := json.Unmarshal([]byte(data), &ce); err != nil || name != "cloudevent" || ce.Namespace != "default" || ce.Type != "dev.wasmbed.device.telemetry" {
		t.Fatalf("got %s %s (%v)", name, data, err)
	}
}

func TestStreamIsRefusedWithoutRights(t *testing.T) {
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/stream", nil)
	req.Header.Set("Authorization", "Bearer "+viewerToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e console.Error
	_ = json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode != 403 || e.Error != "forbidden" {
		t.Fatalf("all-namespace stream for a namespaced viewer: %d %+v", resp.StatusCode, e)
	}
}

func TestReceiverRefusesWhatIsNotAWasmbedEvent(t *testing.T) {
	req, _ := http.NewRequest("POST", srv.URL+"/", strings.NewReader(`{}`))
	req.Header.Set("Authorization", triggerAuth(t, "dev.wasmbed.device.telemetry"))
	req.Header.Set("ce-specversion", "1.0")
	req.Header.Set("ce-type", "dev.wasmbed.device.telemetry")
	req.Header.Set("ce-source", "/x")
	req.Header.Set("ce-id", "1")
	req.Header.Set("content-type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("empty telemetry: %d, want 400", resp.StatusCode)
	}
}

func TestHealthMetricsAndUI(t *testing.T) {
	for path, want := range map[string]string{
		"/healthz": "ok", "/readyz": "ok", "/metrics": "wasmbed_console_requests_total",
		"/api/v1/openapi.yaml": "openapi: 3", "/": "<div id=\"root\">", "/devices/default/sim-0": "<div id=\"root\">",
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d, body lacks %q", path, resp.StatusCode, want)
		}
	}
	var e console.Error
	if code := call(t, adminToken, "GET", "/api/v1/nothing-here", nil, &e); code != 404 || e.Error == "" {
		t.Errorf("unknown api path: %d %+v", code, e)
	}
}

// TestReceiverAuthenticatesItsSender: nobody but the console's own Triggers can put an
// event in front of its users.
func TestReceiverAuthenticatesItsSender(t *testing.T) {
	data := `{"namespace":"default","device":"sim-0","application":"blink","topic":"t","payload":"AQI="}`
	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"no credentials", "", http.StatusUnauthorized},
		{"the trigger of another type", triggerAuth(t, "dev.wasmbed.device.connected"), http.StatusForbidden},
	} {
		req, _ := http.NewRequest("POST", srv.URL+"/", strings.NewReader(data))
		for k, v := range map[string]string{"ce-specversion": "1.0", "ce-type": "dev.wasmbed.device.telemetry", "ce-source": "/x",
			"ce-id": "1", "ce-subject": "default/sim-0", "content-type": "application/json"} {
			req.Header.Set(k, v)
		}
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
}
