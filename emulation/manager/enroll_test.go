package manager

import (
	"bytes"
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/pki"
	"github.com/wasmbed/wasmbed/internal/testenv"
	devicectl "github.com/wasmbed/wasmbed/operator/device"
)

// startOperator runs the operator's CertificateSigningRequest approver and signer
// (operator/device) against env with the test CA, until the test ends.
func startOperator(t *testing.T, env *testenv.Env) {
	t.Helper()
	skip := true
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme: env.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Cache:      cache.Options{ByObject: devicectl.CacheByObject()},
		Controller: ctrlconfig.Controller{SkipNameValidation: &skip},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := devicectl.SetupWithManager(mgr, devicectl.Options{CA: testCA(t)}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("operator: %v", err)
		}
	})
}

// applyRBAC creates the objects of config/200-rbac files as an administrator applies
// them, so that the board manager runs with exactly what config/ grants it.
func applyRBAC(t *testing.T, env *testenv.Env, files ...string) {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "wasmbed-system"}}
	if err := env.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "200-rbac", f))
		if err != nil {
			t.Fatal(err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if len(u.Object) == 0 {
				continue
			}
			if err := env.Client.Create(ctx, u); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatalf("%s: %s %s: %v", f, u.GetKind(), u.GetName(), err)
			}
		}
	}
}

// actAs returns a rest config for user, authenticated by the test apiserver.
func actAs(t *testing.T, env *testenv.Env, user string) *rest.Config {
	t.Helper()
	u, err := env.Environment.ControlPlane.AddUser(envtest.User{Name: user, Groups: []string{"system:authenticated"}}, env.Config)
	if err != nil {
		t.Fatal(err)
	}
	return u.Config()
}

// boardManagerUser is the user name of the ServiceAccount of
// config/200-rbac/400-board-manager.yaml: RBAC binds ServiceAccount subjects by it.
const boardManagerUser = "system:serviceaccount:wasmbed-system:wasmbed-board-manager"

// TestBoardEnrollsThroughAnApprovedCSR: a board's certificate comes from a
// CertificateSigningRequest the board manager sends under its own ServiceAccount, with
// only what config/200-rbac grants it, and the operator approves and signs; the
// Device's status records the key the board manager generated, and the board reaches
// the gateway as its Device. A request for the same key is approved as a renewal, and a
// board restarted with new firmware keeps its key.
func TestBoardEnrollsThroughAnApprovedCSR(t *testing.T) {
	env := testenv.Start(t)
	startOperator(t, env)
	applyRBAC(t, env, "300-device-enroller.yaml", "400-board-manager.yaml")
	gw := newTestGateway(t)
	ctx := context.Background()
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "lab"}}); err != nil {
		t.Fatal(err)
	}
	fw := filepath.Join(t.TempDir(), "firmware.elf")
	if err := os.WriteFile(fw, []byte("\x7fELF stand-in"), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	m, err := New(Options{
		Config: actAs(t, env, boardManagerUser), RootCAs: testCA(t).Pool(), Gateway: gw.addr, ServerName: "localhost",
		Runner: NewRunner().WithCommand(fakeCommand()), Retry: 200 * time.Millisecond,
		RestartMin: 50 * time.Millisecond, GracePeriod: 2 * time.Second,
		BridgeMinBackoff: 20 * time.Millisecond, BridgeMaxBackoff: 200 * time.Millisecond,
		EnrollMinBackoff: 100 * time.Millisecond, EnrollMaxBackoff: time.Second,
		Registerer: reg, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		SkipNameValidation: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	runManager(t, m, func() { t.Logf("manager logs:\n%s\ngateway logs:\n%s", logs, gw.logs) })
	id := pki.Identity{Namespace: "lab", Name: "enrolled"}
	d := &v1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: id.Namespace, Name: id.Name},
		Spec: v1.DeviceSpec{Board: "stm32f4-discovery", Emulation: &v1.DeviceEmulation{Enabled: true, Firmware: fw}}}
	if err := env.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() bool { return gw.connected(id) }, "board never connected: %+v", m.Boards())
	if st := m.Boards(); len(st) != 1 || !st[0].Enrolled || !st[0].Connected {
		t.Errorf("boards = %+v, want one enrolled and connected", st)
	}

	// The certificate came from an approved request of the board manager's account.
	var csrs certificatesv1.CertificateSigningRequestList
	if err := env.Client.List(ctx, &csrs); err != nil {
		t.Fatal(err)
	}
	issued := 0
	for _, c := range csrs.Items {
		if c.Spec.SignerName != pki.SignerName || !strings.HasPrefix(c.Name, "wasmbed-board-lab-enrolled-") {
			continue
		}
		if c.Spec.Username != boardManagerUser {
			t.Errorf("csr %s requested by %q, want %q", c.Name, c.Spec.Username, boardManagerUser)
		}
		if len(c.Status.Certificate) > 0 && condition(&c, certificatesv1.CertificateApproved).Reason == devicectl.ReasonDeviceExists {
			issued++
		}
	}
	if issued != 1 {
		t.Errorf("%d issued requests for %s, want 1: %+v", issued, id, csrs.Items)
	}
	if got := testutil.ToFloat64(m.metrics.enrollments.WithLabelValues("issued")); got != 1 {
		t.Errorf("%s{result=issued} = %v, want 1", MetricEnrollments, got)
	}
	// The operator pinned the board manager's key.
	m.mu.Lock()
	creds := m.creds[client.ObjectKeyFromObject(d)]
	m.mu.Unlock()
	want, err := creds.KeyHash()
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool {
		var got v1.Device
		return env.Client.Get(ctx, client.ObjectKeyFromObject(d), &got) == nil && got.Status.PublicKeyHash == want
	}, "the Device's status does not record the board's key %s", want)

	// A renewal: a new request for the same key, while the Device holds a valid
	// certificate for it, is approved as a renewal and signed for that key.
	before := creds.Certificate().Leaf
	leaf, err := requestCertificate(ctx, EnrollConfig{Client: m.direct, RootCAs: testCA(t).Pool(),
		Validity: DefaultCertValidity, Timeout: 20 * time.Second}, creds)
	if err != nil {
		t.Fatalf("renewal: %v", err)
	}
	if leaf.SerialNumber.Cmp(before.SerialNumber) == 0 || creds.Certificate().Leaf != leaf {
		t.Errorf("renewal did not replace the certificate (serial %v, before %v)", leaf.SerialNumber, before.SerialNumber)
	}
	if err := env.Client.List(ctx, &csrs); err != nil {
		t.Fatal(err)
	}
	renewals := 0
	for _, c := range csrs.Items {
		if a := condition(&c, certificatesv1.CertificateApproved); a != nil && a.Reason == devicectl.ReasonRenewal && len(c.Status.Certificate) > 0 {
			renewals++
		}
	}
	if renewals != 1 {
		t.Errorf("%d requests approved as %s, want 1", renewals, devicectl.ReasonRenewal)
	}

	// A new firmware restarts the board with the same key and certificate.
	other := filepath.Join(t.TempDir(), "other.elf")
	if err := os.WriteFile(other, []byte("\x7fELF other"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
		t.Fatal(err)
	}
	d.Spec.Emulation.Firmware = other
	if err := env.Client.Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() bool {
		st := m.Boards()
		return len(st) == 1 && st[0].Firmware == other && st[0].Connected && gw.connected(id)
	}, "the board did not come back with the new firmware: %+v", m.Boards())
	if got := testutil.ToFloat64(m.metrics.enrollments.WithLabelValues("denied")); got != 0 {
		t.Errorf("%v requests denied, want none", got)
	}
}

// TestBoardWithoutEnrollPermissionStaysOffline: a board manager whose account may send
// requests but not enroll the Device gets its request denied (WasmbedEnrollForbidden);
// the board holds no certificate and never reaches the gateway, the denial is logged
// with its reason and counted, and the request is sent again after a backoff.
func TestBoardWithoutEnrollPermissionStaysOffline(t *testing.T) {
	env := testenv.Start(t)
	startOperator(t, env)
	applyRBAC(t, env, "300-device-enroller.yaml", "400-board-manager.yaml")
	gw := newTestGateway(t)
	ctx := context.Background()
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "lab"}}); err != nil {
		t.Fatal(err)
	}
	// Reads Devices and sends requests, as the board manager's account does, but is
	// not an enroller.
	const user = "no-enroll"
	for _, role := range []string{"wasmbed-board-manager", "wasmbed-device-csr-requester"} {
		if err := env.Client.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user + "-" + role},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}}}); err != nil {
			t.Fatal(err)
		}
	}
	fw := filepath.Join(t.TempDir(), "firmware.elf")
	if err := os.WriteFile(fw, []byte("\x7fELF stand-in"), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	m, err := New(Options{
		Config: actAs(t, env, user), RootCAs: testCA(t).Pool(), Gateway: gw.addr, ServerName: "localhost",
		Runner: NewRunner().WithCommand(fakeCommand()), Retry: 200 * time.Millisecond,
		RestartMin: 50 * time.Millisecond, GracePeriod: 2 * time.Second,
		EnrollMinBackoff: 200 * time.Millisecond, EnrollMaxBackoff: 400 * time.Millisecond,
		Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(logs, nil)),
		SkipNameValidation: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	runManager(t, m, func() { t.Logf("manager logs:\n%s", logs) })
	id := pki.Identity{Namespace: "lab", Name: "refused"}
	d := &v1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: id.Namespace, Name: id.Name},
		Spec: v1.DeviceSpec{Board: "stm32f4-discovery", Emulation: &v1.DeviceEmulation{Enabled: true, Firmware: fw}}}
	if err := env.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	denied := func() float64 { return testutil.ToFloat64(m.metrics.enrollments.WithLabelValues("denied")) }
	eventually(t, 30*time.Second, func() bool { return denied() >= 2 },
		"the denied request was not counted and sent again (denied=%v)", denied())
	line := ""
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "device certificate not obtained") {
			line = l
			break
		}
	}
	for _, want := range []string{"result=denied", "reason=" + devicectl.ReasonEnrollForbidden, `may not enroll Device lab/refused`, "device=lab/refused"} {
		if !strings.Contains(line, want) {
			t.Errorf("refusal log line %q lacks %q", line, want)
		}
	}
	st := m.Boards()
	if len(st) != 1 || st[0].Enrolled || st[0].Connected || gw.connected(id) {
		t.Errorf("boards = %+v (gateway connected %v), want one running, neither enrolled nor connected", st, gw.connected(id))
	}
	if got := testutil.ToFloat64(m.metrics.enrollments.WithLabelValues("issued")); got != 0 {
		t.Errorf("%v certificates issued, want none", got)
	}
	var got v1.Device
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(d), &got); err != nil {
		t.Fatal(err)
	}
	if got.Status.PublicKeyHash != "" || got.Status.CertificateNotAfter != nil {
		t.Errorf("a refused board's Device records key %q until %v", got.Status.PublicKeyHash, got.Status.CertificateNotAfter)
	}
}

// TestManagerHoldsNoCAKey reads the package's code (not its tests): nothing in it may
// use the platform CA type or its constructors, or issue a certificate, so the board
// manager cannot sign anything whatever it is given.
func TestManagerHoldsNoCAKey(t *testing.T) {
	forbidden := map[string]bool{"CA": true, "NewCA": true, "LoadCA": true, "ParseCA": true, "NewSigner": true, "Signer": true}
	methods := map[string]bool{"IssueDevice": true, "IssueServer": true}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		ast.Inspect(file, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == "pki" && forbidden[sel.Sel.Name] {
				t.Errorf("%s: uses pki.%s: the board manager holds no CA", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			if methods[sel.Sel.Name] {
				t.Errorf("%s: calls %s: the board manager issues no certificate", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
	if checked < 10 {
		t.Fatalf("checked %d files; the package has more", checked)
	}
}
