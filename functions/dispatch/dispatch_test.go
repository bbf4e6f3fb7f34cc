package dispatch_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/api/abi"
	"github.com/wasmbed/wasmbed/api/attestation"
	dg "github.com/wasmbed/wasmbed/api/digest"
	"github.com/wasmbed/wasmbed/internal/artifacts"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/api/protocol"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/functions/dispatch"
	"github.com/wasmbed/wasmbed/internal/eventserver"
	"github.com/wasmbed/wasmbed/internal/pki"
	"github.com/wasmbed/wasmbed/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// sink records the events the function sends to the broker.
type sink struct {
	mu  sync.Mutex
	got []cloudevents.Event
}

func (s *sink) Send(_ context.Context, e cloudevents.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, e)
	return nil
}

const digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// fleet creates a namespace with n Devices labelled fleet=a, and an Application.
func fleet(t *testing.T, ns string, n int, rollout v1.RolloutSpec, gateway func(i int) (spec, status string)) *v1.Application {
	t.Helper()
	c := env.Client
	if err := c.Create(ctx(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		d := &v1.Device{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("dev-%02d", i), Namespace: ns, Labels: map[string]string{"fleet": "a"}},
			Spec: v1.DeviceSpec{Board: "virtual"}}
		var st string
		if gateway != nil {
			d.Spec.Gateway, st = gateway(i)
		}
		if err := c.Create(ctx(t), d); err != nil {
			t.Fatal(err)
		}
		if st != "" {
			d.Status.Gateway = st
			if err := c.Status().Update(ctx(t), d); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A device outside the selector, and one in another namespace, must never be targeted.
	other := &v1.Device{ObjectMeta: metav1.ObjectMeta{Name: "outsider", Namespace: ns, Labels: map[string]string{"fleet": "b"}}, Spec: v1.DeviceSpec{Board: "virtual"}}
	if err := c.Create(ctx(t), other); err != nil {
		t.Fatal(err)
	}
	app := &v1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: "blink", Namespace: ns},
		Spec: v1.ApplicationSpec{
			Source:   v1.ApplicationSource{Inline: &v1.InlineSource{Language: v1.LanguageC, Code: "x"}},
			Selector: metav1.LabelSelector{MatchLabels: map[string]string{"fleet": "a"}},
			Config:   map[string]string{"period_ms": "250"},
			Rollout:  rollout,
		},
	}
	if err := c.Create(ctx(t), app); err != nil {
		t.Fatal(err)
	}
	return app
}

func validated(t *testing.T, app *v1.Application) cloudevents.Event {
	ref := events.AppRef{Namespace: app.Namespace, Name: app.Name, Generation: app.Generation}
	e, err := events.New(events.ModuleValidated, events.SourceValidate, ref.Subject(),
		&events.ModuleValidatedData{Application: ref, Digest: digest, Size: 100})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func rolloutReq(t *testing.T, app *v1.Application, step int32, devices ...string) cloudevents.Event {
	ref := events.AppRef{Namespace: app.Namespace, Name: app.Name, Generation: app.Generation}
	e, err := events.New(events.RolloutRequested, events.SourceOperator, ref.Subject(),
		&events.RolloutRequestedData{Application: ref, Digest: digest, Size: 100, Step: step, Devices: devices})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func run(t *testing.T, f *dispatch.Function, s *sink, e cloudevents.Event) (*events.DeploymentDispatchedData, map[string][]string) {
	t.Helper()
	s.mu.Lock()
	s.got = nil
	s.mu.Unlock()
	reply, err := f.Handle(ctx(t), e)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	out, err := events.DecodeAs[*events.DeploymentDispatchedData](*reply, events.DeploymentDispatched)
	if err != nil {
		t.Fatal(err)
	}
	byGw := map[string][]string{}
	for _, de := range s.got {
		d, err := events.DecodeAs[*events.DeploymentRequestedData](de, events.DeploymentRequested)
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.Replace(d.Gateway.String(), "/", ".", 1); de.Extensions()[events.ExtGateway] != want {
			t.Errorf("wasmbedgateway = %v, want %s", de.Extensions()[events.ExtGateway], want)
		}
		if d.Config["period_ms"] != "250" || d.Digest != digest {
			t.Errorf("deployment request = %+v", d)
		}
		byGw[d.Gateway.String()] = append(byGw[d.Gateway.String()], d.Devices...)
	}
	return out, byGw
}

func count(m map[string][]string) (n int) {
	for _, v := range m {
		n += len(v)
	}
	return n
}

func TestAllAtOnceGroupsByGateway(t *testing.T) {
	app := fleet(t, "all-at-once", 10, v1.RolloutSpec{}, func(i int) (string, string) {
		switch {
		case i < 3:
			return "", "wasmbed-system/gw-a" // connected to gw-a
		case i < 6:
			return "gw-b", "" // asks for gw-b in its namespace
		default:
			return "", "" // nothing known: default gateway
		}
	})
	s := &sink{}
	f, err := dispatch.New(dispatch.Config{Reader: env.Client, Sender: s, DefaultGateway: "wasmbed-system/gateway"})
	if err != nil {
		t.Fatal(err)
	}
	out, byGw := run(t, f, s, validated(t, app))
	if out.Targeted != 10 || len(out.Unassigned) != 0 || count(byGw) != 10 {
		t.Fatalf("dispatched %+v, by gateway %v", out, byGw)
	}
	want := map[string]int{"wasmbed-system/gw-a": 3, "all-at-once/gw-b": 3, "wasmbed-system/gateway": 4}
	for gw, n := range want {
		if len(byGw[gw]) != n {
			t.Errorf("gateway %s got %d devices, want %d (%v)", gw, len(byGw[gw]), n, byGw)
		}
	}
	for _, devs := range byGw {
		for _, d := range devs {
			if d == "outsider" {
				t.Error("dispatched to a device outside the selector")
			}
		}
	}
}

func TestCanaryStepsAreCumulativeAndStable(t *testing.T) {
	app := fleet(t, "canary", 20, v1.RolloutSpec{Strategy: v1.RolloutCanary, Steps: []v1.CanaryStep{{Percent: 10}, {Percent: 50}, {Percent: 100}}}, nil)
	s := &sink{}
	f, err := dispatch.New(dispatch.Config{Reader: env.Client, Sender: s, DefaultGateway: "wasmbed-system/gateway"})
	if err != nil {
		t.Fatal(err)
	}
	var prev []string
	for step, want := range []int{2, 10, 20} {
		var e cloudevents.Event
		if step == 0 {
			e = validated(t, app)
		} else {
			e = rolloutReq(t, app, int32(step))
		}
		out, byGw := run(t, f, s, e)
		devs := byGw["wasmbed-system/gateway"]
		if len(devs) != want || out.Step != int32(step) {
			t.Fatalf("step %d: %d devices (%+v), want %d", step, len(devs), out, want)
		}
		sort.Strings(devs)
		for _, p := range prev {
			if i := sort.SearchStrings(devs, p); i == len(devs) || devs[i] != p {
				t.Errorf("step %d dropped %s from the earlier step", step, p)
			}
		}
		prev = devs
	}
	// A step past the last is the caller's fault.
	_, err = f.Handle(ctx(t), rolloutReq(t, app, 3))
	if err == nil || eventserver.StatusOf(err) != 422 || !strings.Contains(err.Error(), "has 3 steps") {
		t.Errorf("step 3: err = %v", err)
	}
}

func TestRollbackToExplicitDevices(t *testing.T) {
	app := fleet(t, "rollback", 5, v1.RolloutSpec{}, nil)
	s := &sink{}
	f, _ := dispatch.New(dispatch.Config{Reader: env.Client, Sender: s, DefaultGateway: "wasmbed-system/gateway"})
	_, byGw := run(t, f, s, rolloutReq(t, app, 0, "dev-01", "dev-03", "outsider", "not-there"))
	got := byGw["wasmbed-system/gateway"]
	sort.Strings(got)
	if strings.Join(got, ",") != "dev-01,dev-03" {
		t.Errorf("rollback went to %v, want only selected devices dev-01 and dev-03", got)
	}
	// The gateway ranks a rollback above the step requests of its generation, and tells
	// objects of one name apart by uid.
	for i, e := range []cloudevents.Event{rolloutReq(t, app, 0, "dev-01"), rolloutReq(t, app, 0)} {
		run(t, f, s, e)
		d, err := events.DecodeAs[*events.DeploymentRequestedData](s.got[0], events.DeploymentRequested)
		if err != nil {
			t.Fatal(err)
		}
		if d.Rollback != (i == 0) || d.Application.UID != string(app.UID) {
			t.Errorf("request %d: rollback %v, uid %q; want %v, %q", i, d.Rollback, d.Application.UID, i == 0, app.UID)
		}
	}
}

// TestPacedRolloutStartsOnlyNamedDevices: with a rollout policy, module.validated starts
// nothing (the operator's policy decides when each device starts), and a paced request
// reaches exactly its devices as a step request, not a rollback.
func TestPacedRolloutStartsOnlyNamedDevices(t *testing.T) {
	app := fleet(t, "paced", 5, v1.RolloutSpec{Strategy: v1.RolloutAllAtOnce, Rate: &v1.RolloutRate{DevicesPerMinute: 2}}, nil)
	s := &sink{}
	f, _ := dispatch.New(dispatch.Config{Reader: env.Client, Sender: s, DefaultGateway: "wasmbed-system/gateway"})
	reply, err := f.Handle(ctx(t), validated(t, app))
	if err != nil || reply != nil || len(s.got) != 0 {
		t.Fatalf("module.validated of a paced rollout: reply %v, err %v, %d deployment requests; want nothing", reply, err, len(s.got))
	}
	ref := events.AppRef{Namespace: app.Namespace, Name: app.Name, Generation: app.Generation}
	e, err := events.New(events.RolloutRequested, events.SourceOperator, ref.Subject(),
		&events.RolloutRequestedData{Application: ref, Digest: digest, Size: 100, Devices: []string{"dev-02", "outsider"}, Paced: true})
	if err != nil {
		t.Fatal(err)
	}
	out, byGw := run(t, f, s, e)
	if got := byGw["wasmbed-system/gateway"]; len(got) != 1 || got[0] != "dev-02" || out.Targeted != 5 {
		t.Fatalf("paced request went to %v (targeted %d), want dev-02 of 5", byGw, out.Targeted)
	}
	d, err := events.DecodeAs[*events.DeploymentRequestedData](s.got[0], events.DeploymentRequested)
	if err != nil || d.Rollback {
		t.Errorf("paced request dispatched as rollback=%v (%v)", d.Rollback, err)
	}
}

// TestEventOfDeletedObject: an event about an Application that was deleted and created
// again under the same name (another uid) is acknowledged and does nothing, removals
// included.
func TestEventOfDeletedObject(t *testing.T) {
	app := fleet(t, "recreated", 3, v1.RolloutSpec{}, nil)
	s := &sink{}
	f, _ := dispatch.New(dispatch.Config{Reader: env.Client, Sender: s, DefaultGateway: "wasmbed-system/gateway"})
	ref := events.AppRef{Namespace: app.Namespace, Name: app.Name, Generation: app.Generation, UID: "0b1e7e5c-0000-4000-8000-000000000000"}
	for _, data := range []*events.RolloutRequestedData{
		{Application: ref, Digest: digest, Step: 0},
		{Application: ref, Digest: digest, Remove: true},
	} {
		e, err := events.New(events.RolloutRequested, events.SourceOperator, ref.Subject(), data)
		if err != nil {
			t.Fatal(err)
		}
		if reply, err := f.Handle(ctx(t), e); err != nil || reply != nil || len(s.got) != 0 {
			t.Errorf("remove=%v: reply %v, err %v, sent %d", data.Remove, reply, err, len(s.got))
		}
	}
	ref.UID = string(app.UID)
	e, err := events.New(events.RolloutRequested, events.SourceOperator, ref.Subject(), &events.RolloutRequestedData{Application: ref, Digest: digest, Step: 0})
	if err != nil {
		t.Fatal(err)
	}
	if _, byGw := run(t, f, s, e); count(byGw) != 3 {
		t.Errorf("the object's own uid: dispatched %v", byGw)
	}
}

func TestStaleAndMissing(t *testing.T) {
	app := fleet(t, "stale", 2, v1.RolloutSpec{}, nil)
	s := &sink{}
	f, _ := dispatch.New(dispatch.Config{Reader: env.Client, Sender: s})
	// Change the spec: the event for the previous generation is now stale.
	old := *app
	app.Spec.Config = map[string]string{"period_ms": "500"}
	if err := env.Client.Update(ctx(t), app); err != nil {
		t.Fatal(err)
	}
	if app.Generation == old.Generation {
		t.Fatalf("generation did not change")
	}
	reply, err := f.Handle(ctx(t), validated(t, &old))
	if err != nil || reply != nil || len(s.got) != 0 {
		t.Errorf("stale generation: reply %v err %v sent %d", reply, err, len(s.got))
	}
	gone := *app
	gone.Name = "missing"
	_, err = f.Handle(ctx(t), validated(t, &gone))
	if err == nil || eventserver.StatusOf(err) != 422 {
		t.Errorf("missing application: err = %v", err)
	}
	// Without a default gateway, devices with no gateway are reported unassigned.
	out, byGw := run(t, f, s, validated(t, app))
	if len(out.Unassigned) != 2 || count(byGw) != 0 {
		t.Errorf("unassigned = %v, sent %v", out.Unassigned, byGw)
	}
}

// TestStepsGateDispatch: for an Application with spec.steps, only the module.validated
// that came back through the steps (wasmbedsteps=done) is dispatched.
func TestStepsGateDispatch(t *testing.T) {
	app := fleet(t, "with-steps", 2, v1.RolloutSpec{}, nil)
	app.Spec.Steps = []v1.PipelineStep{{URI: "http://scanner.example"}}
	if err := env.Client.Update(ctx(t), app); err != nil {
		t.Fatal(err)
	}
	s := &sink{}
	f, _ := dispatch.New(dispatch.Config{Reader: env.Client, Sender: s, DefaultGateway: "wasmbed-system/gateway"})
	e := validated(t, app)
	if reply, err := f.Handle(ctx(t), e); err != nil || reply != nil || len(s.got) != 0 {
		t.Fatalf("before the steps: reply %v, err %v, sent %d", reply, err, len(s.got))
	}
	e.SetExtension(events.ExtSteps, events.StepsDone)
	out, byGw := run(t, f, s, e)
	if out.Targeted != 2 || count(byGw) != 2 {
		t.Errorf("after the steps: %+v %v", out, byGw)
	}
}

// attested returns a store holding the validator's attestation that the module digest
// passed for boards, signed by validator.
func attested(t *testing.T, validator *pki.SigningKey, d dg.Digest, boards []string, passed bool) *artifacts.Dir {
	t.Helper()
	store, err := artifacts.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	stmt, err := attestation.NewStatement(d, attestation.Validation{Boards: boards, ABIVersion: abi.Version, Passed: passed})
	if err != nil {
		t.Fatal(err)
	}
	env, err := attestation.Sign(stmt, validator, validator.KeyID())
	if err != nil {
		t.Fatal(err)
	}
	if err := store.PutAttestation(context.Background(), d, env); err != nil {
		t.Fatal(err)
	}
	return store
}

// TestDispatchSignsOnlyAttestedModules is the attack of issue 12: an event that names
// a digest validation never passed must not get a signature, nor reach a gateway.
func TestDispatchSignsOnlyAttestedModules(t *testing.T) {
	key, err := pki.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	validator, err := pki.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	impostor, err := pki.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	empty, err := artifacts.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		store artifacts.Attestations
		want  string // "" dispatches and signs; else the refusal
	}{
		{"attested by the validator", attested(t, validator, digest, []string{"virtual"}, true), ""},
		{"never validated", empty, "has no validation attestation"},
		{"attested by another key", attested(t, impostor, digest, []string{"virtual"}, true), "not signed by the validator's key"},
		{"validation failed", attested(t, validator, digest, []string{"virtual"}, false), "did not pass validation"},
		{"validated for other boards", attested(t, validator, digest, []string{"stm32f4-discovery"}, true), "not for [virtual]"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := fleet(t, fmt.Sprintf("signing-%d", i), 2, v1.RolloutSpec{}, nil)
			s := &sink{}
			f, err := dispatch.New(dispatch.Config{Reader: env.Client, Sender: s, DefaultGateway: "wasmbed-system/gateway",
				Signer: key, Attestations: tt.store, Validator: validator.Public()})
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != "" {
				_, err := f.Handle(ctx(t), validated(t, app))
				if err == nil || !strings.Contains(err.Error(), tt.want) || eventserver.StatusOf(err) != 422 {
					t.Fatalf("err = %v (status %d), want a 422 saying %q", err, eventserver.StatusOf(err), tt.want)
				}
				if len(s.got) != 0 {
					t.Fatalf("%d deployment requests sent for an unattested module", len(s.got))
				}
				return
			}
			run(t, f, s, validated(t, app))
			d, err := events.DecodeAs[*events.DeploymentRequestedData](s.got[0], events.DeploymentRequested)
			if err != nil {
				t.Fatal(err)
			}
			m, err := protocol.VerifyManifest(key.Public(), d.Manifest, d.Signature)
			if err != nil {
				t.Fatalf("the deployment request's manifest: %v", err)
			}
			if err := m.Matches(app.Namespace, app.Name, d.Digest.Bytes(), app.Spec.Config); err != nil {
				t.Error(err)
			}
			want, _ := dispatch.ManifestVersion(app.CreationTimestamp.Time, app.Generation, false)
			if m.UID != string(app.UID) || m.Generation != uint64(app.Generation) || m.Version != want {
				t.Errorf("manifest names uid %s generation %d version %d, want %s %d %d", m.UID, m.Generation, m.Version, app.UID, app.Generation, want)
			}
		})
	}
	if _, err := dispatch.New(dispatch.Config{Reader: env.Client, Sender: &sink{}, Signer: key}); err == nil {
		t.Error("a signer without the validator's attestations was accepted")
	}
}

// TestManifestVersionOnlyGrows: the version orders every deployment of one Application
// name, including a rollback within a generation and an object created again.
func TestManifestVersionOnlyGrows(t *testing.T) {
	created := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	v := func(at time.Time, gen int64, rollback bool) uint64 {
		t.Helper()
		n, err := dispatch.ManifestVersion(at, gen, rollback)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	ordered := []struct {
		name         string
		lower, upper uint64
	}{
		{"next generation", v(created, 1, false), v(created, 2, false)},
		{"rollback outranks its generation's rollout", v(created, 7, false), v(created, 7, true)},
		{"next generation outranks a rollback", v(created, 7, true), v(created, 8, false)},
		{"created again a second later", v(created, 1<<30-1, true), v(created.Add(time.Second), 1, false)},
	}
	for _, tt := range ordered {
		t.Run(tt.name, func(t *testing.T) {
			if tt.lower >= tt.upper {
				t.Fatalf("%d is not below %d", tt.lower, tt.upper)
			}
		})
	}
	refused := []struct {
		name string
		at   time.Time
		gen  int64
	}{
		{"generation 0", created, 0},
		{"generation 2^30", created, 1 << 30},
		{"before 1970", time.Unix(-5, 0), 1},
		{"zero time", time.Time{}, 1},
	}
	for _, tt := range refused {
		t.Run("refused/"+tt.name, func(t *testing.T) {
			if n, err := dispatch.ManifestVersion(tt.at, tt.gen, false); err == nil {
				t.Fatalf("version %d, want an error", n)
			}
		})
	}
}
