package device

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/pki"
	"github.com/wasmbed/wasmbed/internal/testenv"
	"github.com/wasmbed/wasmbed/operator/internal/rbactest"
)

var (
	env *testenv.Env
	ca  *pki.CA
)

// TestMain starts one apiserver and one manager running this package's controllers,
// as a user holding only the ClusterRole generated from the package's RBAC markers,
// with the CA read from a Secret as in a cluster.
func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	logger := logr.Discard()
	if testing.Verbose() {
		logger = funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, prefix, args) }, funcr.Options{})
	}
	ctrl.SetLogger(logger)

	var err error
	if env, err = testenv.StartEnv(); err != nil {
		fmt.Fprintln(os.Stderr, "start test apiserver:", err)
		return 1
	}
	defer env.Stop()
	if ca, err = pki.NewCA("test CA", 0); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := setupCASecret(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// The controllers run with only the permissions their RBAC markers grant.
	cfg, err := rbactest.Config(ctx, env, "wasmbed-device-controller", "./operator/device")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{ByObject: CacheByObject()},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		return 1
	}
	if err := SetupWithManager(mgr, Options{CASecret: types.NamespacedName{Namespace: "wasmbed-system", Name: "wasmbed-ca"}}); err != nil {
		fmt.Fprintln(os.Stderr, "setup:", err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	code := m.Run()
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		return 1
	}
	return code
}

// setupCASecret stores the test CA the way cert-manager stores a CA: tls.crt, tls.key.
func setupCASecret(ctx context.Context) error {
	keyPEM, err := pki.EncodeKeyPEM(ca.Key)
	if err != nil {
		return err
	}
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "wasmbed-system"}},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: "wasmbed-system", Name: "wasmbed-ca"},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{corev1.TLSCertKey: ca.CertPEM(), corev1.TLSPrivateKeyKey: keyPEM},
		},
	} {
		if err := env.Client.Create(ctx, o); err != nil {
			return err
		}
	}
	return nil
}

var nsCounter atomic.Int32

// namespace creates a fresh namespace for one test.
func namespace(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("dev-%d", nsCounter.Add(1))
	if err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	return name
}

// eventually polls check until it returns nil, failing the test with its last error
// after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %v: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func createDevice(t *testing.T, ns, name string, mutate func(*v1.Device)) *v1.Device {
	t.Helper()
	dev := &v1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1.DeviceSpec{Board: "virtual"}}
	if mutate != nil {
		mutate(dev)
	}
	if err := env.Client.Create(context.Background(), dev); err != nil {
		t.Fatalf("create device: %v", err)
	}
	return dev
}

// request describes a CertificateSigningRequest a test sends.
type request struct {
	as         client.Client // who sends it; the test apiserver's administrator when nil
	key        crypto.Signer
	uris       []string
	signer     string
	usages     []certificatesv1.KeyUsage
	expiration *int32
}

func p256(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func createCSR(t *testing.T, r request) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	if r.key == nil {
		r.key = p256(t)
	}
	if r.signer == "" {
		r.signer = pki.SignerName
	}
	if r.usages == nil {
		r.usages = []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: "device"}}
	for _, s := range r.uris {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, r.key)
	if err != nil {
		t.Fatal(err)
	}
	csr := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "device-"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:           pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName:        r.signer,
			Usages:            r.usages,
			ExpirationSeconds: r.expiration,
		},
	}
	as := r.as
	if as == nil {
		as = env.Client
	}
	if err := as.Create(context.Background(), csr); err != nil {
		t.Fatalf("create csr: %v", err)
	}
	return csr
}

func getCSR(name string) (*certificatesv1.CertificateSigningRequest, error) {
	var csr certificatesv1.CertificateSigningRequest
	err := env.Client.Get(context.Background(), types.NamespacedName{Name: name}, &csr)
	return &csr, err
}

func condition(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) *certificatesv1.CertificateSigningRequestCondition {
	for i, c := range csr.Status.Conditions {
		if c.Type == t {
			return &csr.Status.Conditions[i]
		}
	}
	return nil
}

// waitIssued waits for the request to be approved and to have its certificate.
func waitIssued(t *testing.T, name string) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	var csr *certificatesv1.CertificateSigningRequest
	eventually(t, 20*time.Second, "csr "+name+" issued", func() (err error) {
		if csr, err = getCSR(name); err != nil {
			return err
		}
		if len(csr.Status.Certificate) == 0 {
			return fmt.Errorf("no certificate yet; conditions %+v", csr.Status.Conditions)
		}
		return nil
	})
	return csr
}

// waitDevice waits until check accepts the Device.
func waitDevice(t *testing.T, ns, name, what string, check func(*v1.Device) error) *v1.Device {
	t.Helper()
	var dev v1.Device
	eventually(t, 20*time.Second, what, func() error {
		if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &dev); err != nil {
			return err
		}
		return check(&dev)
	})
	return &dev
}

func hasPhase(p v1.DevicePhase) func(*v1.Device) error {
	return func(d *v1.Device) error {
		if d.Status.Phase != p {
			return fmt.Errorf("phase %q, want %q; conditions %+v", d.Status.Phase, p, d.Status.Conditions)
		}
		return nil
	}
}

func TestEnrollExistingDevice(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	createDevice(t, ns, "board-1", nil)
	dev := waitDevice(t, ns, "board-1", "new device is Pending", hasPhase(v1.DevicePending))
	if c := meta.FindStatusCondition(dev.Status.Conditions, v1.ConditionEnrolled); c == nil || c.Reason != v1.ReasonAwaitingCSR {
		t.Fatalf("Enrolled condition of a new device = %+v, want reason %s", c, v1.ReasonAwaitingCSR)
	}
	if dev.Status.ObservedGeneration != dev.Generation {
		t.Errorf("observedGeneration %d, want %d", dev.Status.ObservedGeneration, dev.Generation)
	}

	// A session reported by the receiver meanwhile: these fields are not ours to touch.
	base := dev.DeepCopy()
	seen := metav1.NewTime(time.Now().Truncate(time.Second))
	dev.Status.MarkConnected(dev.Generation, ns+"/gw", seen)
	dev.Status.FirmwareVersion = "1.2.3"
	dev.Status.Applications = []v1.DeviceApplication{{Name: "blink", State: v1.AppRunning}}
	if err := env.Client.Status().Patch(ctx, dev, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}

	key := p256(t)
	csr := createCSR(t, request{key: key, uris: []string{"wasmbed://" + ns + "/board-1"}, expiration: ptr.To[int32](3600)})
	csr = waitIssued(t, csr.Name)
	approved := condition(csr, certificatesv1.CertificateApproved)
	if approved == nil || approved.Reason != ReasonDeviceExists || approved.Status != corev1.ConditionTrue {
		t.Fatalf("Approved condition = %+v, want reason %s", approved, ReasonDeviceExists)
	}

	cert, err := pki.ParseCertificatePEM(csr.Status.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("certificate does not verify against the CA: %v", err)
	}
	if len(cert.URIs) != 1 || cert.URIs[0].String() != "wasmbed://"+ns+"/board-1" {
		t.Fatalf("certificate URI SANs = %v", cert.URIs)
	}
	if !cert.PublicKey.(*ecdsa.PublicKey).Equal(key.Public()) {
		t.Fatal("certificate is not for the request's key")
	}
	if life := time.Until(cert.NotAfter); life > time.Hour || life < 55*time.Minute {
		t.Errorf("certificate lives %v, want the hour asked by expirationSeconds", life)
	}

	var sec corev1.Secret
	eventually(t, 20*time.Second, "identity secret written", func() error {
		return env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "board-1-identity"}, &sec)
	})
	if string(sec.Data[SecretCertKey]) != string(csr.Status.Certificate) || string(sec.Data[SecretCAKey]) != string(ca.CertPEM()) {
		t.Errorf("secret data keys %v do not hold the certificate and the CA", keys(sec.Data))
	}
	if _, ok := sec.Data[corev1.TLSPrivateKeyKey]; ok || sec.Type != corev1.SecretTypeOpaque {
		t.Errorf("secret type %s with keys %v, want Opaque without a key", sec.Type, keys(sec.Data))
	}
	if sec.Labels[DeviceLabel] != "board-1" {
		t.Errorf("secret labels %v", sec.Labels)
	}
	if ref := metav1.GetControllerOf(&sec); ref == nil || ref.Kind != "Device" || ref.Name != "board-1" {
		t.Errorf("secret controller %+v, want the Device", ref)
	}

	dev = waitDevice(t, ns, "board-1", "device enrolled", func(d *v1.Device) error {
		if !meta.IsStatusConditionTrue(d.Status.Conditions, v1.ConditionEnrolled) {
			return fmt.Errorf("conditions %+v", d.Status.Conditions)
		}
		return nil
	})
	if dev.Status.CertificateNotAfter == nil || !dev.Status.CertificateNotAfter.Time.Equal(cert.NotAfter) {
		t.Errorf("certificateNotAfter %v, want %v", dev.Status.CertificateNotAfter, cert.NotAfter)
	}
	if dev.Status.Phase != v1.DeviceConnected || dev.Status.Gateway != ns+"/gw" || dev.Status.FirmwareVersion != "1.2.3" ||
		len(dev.Status.Applications) != 1 || !dev.Status.LastSeen.Equal(&seen) {
		t.Errorf("the receiver's status fields were changed: %+v", dev.Status)
	}

	// Idempotence: reconciling again signs nothing and writes nothing.
	csrs, devices := directReconcilers()
	if _, err := csrs.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Name: csr.Name}}); err != nil {
		t.Fatal(err)
	}
	if _, err := devices.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "board-1"}}); err != nil {
		t.Fatal(err)
	}
	after, err := getCSR(csr.Name)
	if err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != csr.ResourceVersion || len(after.Status.Conditions) != 1 {
		t.Errorf("re-reconciling changed the request: %+v", after.Status.Conditions)
	}
	var sec2 corev1.Secret
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(&sec), &sec2); err != nil {
		t.Fatal(err)
	}
	if sec2.ResourceVersion != sec.ResourceVersion {
		t.Error("re-reconciling rewrote the identity secret")
	}
	var dev2 v1.Device
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(dev), &dev2); err != nil {
		t.Fatal(err)
	}
	if dev2.ResourceVersion != dev.ResourceVersion {
		t.Error("re-reconciling rewrote the device status")
	}

	// Renewal: a second request replaces the certificate in the Secret.
	csr2 := waitIssued(t, createCSR(t, request{key: key, uris: []string{"wasmbed://" + ns + "/board-1"}}).Name)
	eventually(t, 20*time.Second, "renewed certificate stored", func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(&sec), &sec2); err != nil {
			return err
		}
		if string(sec2.Data[SecretCertKey]) != string(csr2.Status.Certificate) {
			return fmt.Errorf("secret still holds the first certificate")
		}
		return nil
	})
	waitDevice(t, ns, "board-1", "certificateNotAfter follows the renewal", func(d *v1.Device) error {
		if d.Status.CertificateNotAfter == nil || time.Until(d.Status.CertificateNotAfter.Time) < 300*24*time.Hour {
			return fmt.Errorf("certificateNotAfter %v", d.Status.CertificateNotAfter)
		}
		return nil
	})
}

// directReconcilers returns reconcilers that work on the live API, for calling
// Reconcile by hand.
func directReconcilers() (*csrReconciler, *deviceReconciler) {
	src := &caSource{ca: ca}
	rec := events.NewFakeRecorder(100)
	return &csrReconciler{client: env.Client, reader: env.Client, recorder: rec, ca: src, now: time.Now},
		&deviceReconciler{client: indexedLister{env.Client}, reader: env.Client, scheme: env.Scheme, recorder: rec, ca: src, now: time.Now}
}

// indexedLister answers the identity index by listing every request and filtering,
// as the manager's cache does with its index.
type indexedLister struct{ client.Client }

func (l indexedLister) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	csrs, ok := list.(*certificatesv1.CertificateSigningRequestList)
	var lo client.ListOptions
	lo.ApplyOptions(opts)
	if !ok || lo.FieldSelector == nil {
		return l.Client.List(ctx, list, opts...)
	}
	want, _ := lo.FieldSelector.RequiresExactMatch(identityIndex)
	if err := l.Client.List(ctx, csrs); err != nil {
		return err
	}
	kept := csrs.Items[:0]
	for _, c := range csrs.Items {
		if got := indexIdentity(&c); len(got) == 1 && got[0] == want {
			kept = append(kept, c)
		}
	}
	csrs.Items = kept
	return nil
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestRefusedRequests(t *testing.T) {
	ns := namespace(t)
	createDevice(t, ns, "present", nil)
	createDevice(t, ns, "off", func(d *v1.Device) { d.Spec.Disabled = true })
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	uri := func(name string) string { return "wasmbed://" + ns + "/" + name }

	for _, tc := range []struct {
		name    string
		req     request
		reason  string
		message string
	}{
		{"missing device", request{uris: []string{uri("absent")}}, ReasonDeviceNotFound, "no Device " + ns + "/absent"},
		{"disabled device", request{uris: []string{uri("off")}}, ReasonDeviceDisabled, "spec.disabled"},
		{"two uris", request{uris: []string{uri("present"), uri("off")}}, ReasonInvalidRequest, "2 URI SANs"},
		{"no uri", request{}, ReasonInvalidRequest, "0 URI SANs"},
		{"other scheme", request{uris: []string{"spiffe://" + ns + "/present"}}, ReasonInvalidRequest, "scheme"},
		{"extra path", request{uris: []string{uri("present") + "/x"}}, ReasonInvalidRequest, "exactly"},
		{"rsa key", request{key: rsaKey, uris: []string{uri("present")}}, ReasonUnsupportedKey, "RSA"},
		{"p-384 key", request{key: p384, uris: []string{uri("present")}}, ReasonUnsupportedKey, "P-384"},
		{"server auth", request{uris: []string{uri("present")}, usages: []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth, certificatesv1.UsageServerAuth}}, ReasonInvalidRequest, "server auth"},
		{"no client auth", request{uris: []string{uri("present")}, usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature}}, ReasonInvalidRequest, "client auth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			csr := createCSR(t, tc.req)
			eventually(t, 20*time.Second, "csr denied", func() error {
				got, err := getCSR(csr.Name)
				if err != nil {
					return err
				}
				c := condition(got, certificatesv1.CertificateDenied)
				if c == nil {
					return fmt.Errorf("not denied: %+v", got.Status.Conditions)
				}
				if c.Reason != tc.reason || !strings.Contains(c.Message, tc.message) {
					t.Fatalf("denied with %s %q, want %s mentioning %q", c.Reason, c.Message, tc.reason, tc.message)
				}
				if len(got.Status.Certificate) > 0 || condition(got, certificatesv1.CertificateApproved) != nil {
					t.Fatalf("a denied request was approved or issued: %+v", got.Status)
				}
				return nil
			})
		})
	}

	t.Run("another signer is left alone", func(t *testing.T) {
		other := createCSR(t, request{uris: []string{uri("present")}, signer: "example.com/other"})
		// A request of ours sent after it is settled first or meanwhile; then the
		// controller has had its chance at the other one too.
		ours := createCSR(t, request{uris: []string{uri("absent")}})
		eventually(t, 20*time.Second, "sentinel denied", func() error {
			got, err := getCSR(ours.Name)
			if err != nil {
				return err
			}
			if condition(got, certificatesv1.CertificateDenied) == nil {
				return fmt.Errorf("not denied yet")
			}
			return nil
		})
		csrs, _ := directReconcilers()
		if _, err := csrs.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Name: other.Name}}); err != nil {
			t.Fatal(err)
		}
		got, err := getCSR(other.Name)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Status.Conditions) != 0 || len(got.Status.Certificate) != 0 || got.ResourceVersion != other.ResourceVersion {
			t.Fatalf("a request for another signer was touched: %+v", got.Status)
		}
	})
}

func TestApprovedElsewhereButInvalidFails(t *testing.T) {
	// A human may approve a request the approver would deny; the signer then refuses
	// to sign it and marks it Failed rather than issuing a certificate. The request
	// uses another signer name so that the running controller keeps out of the way.
	ctx := context.Background()
	ns := namespace(t)
	csr := createCSR(t, request{uris: []string{"wasmbed://" + ns + "/a", "wasmbed://" + ns + "/b"}, signer: "example.com/test"})
	addCondition(csr, certificatesv1.CertificateApproved, "AdminApproved", "approved by hand")
	if err := env.Client.SubResource("approval").Update(ctx, csr); err != nil {
		t.Fatal(err)
	}
	csrs, _ := directReconcilers()
	if err := csrs.sign(ctx, csr); err != nil {
		t.Fatal(err)
	}
	got, err := getCSR(csr.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Status.Certificate) > 0 {
		t.Fatal("an invalid request was signed")
	}
	if c := condition(got, certificatesv1.CertificateFailed); c == nil || c.Reason != ReasonInvalidRequest {
		t.Fatalf("conditions %+v, want Failed with %s", got.Status.Conditions, ReasonInvalidRequest)
	}
}

func TestDisabledDevice(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	createDevice(t, ns, "d", func(d *v1.Device) { d.Spec.Disabled = true })
	dev := waitDevice(t, ns, "d", "disabled device marked", func(d *v1.Device) error {
		c := meta.FindStatusCondition(d.Status.Conditions, v1.ConditionReady)
		if c == nil || c.Reason != v1.ReasonDisabled {
			return fmt.Errorf("Ready %+v", c)
		}
		return nil
	})
	dev.Spec.Disabled = false
	if err := env.Client.Update(ctx, dev); err != nil {
		t.Fatal(err)
	}
	waitDevice(t, ns, "d", "re-enabled device", func(d *v1.Device) error {
		c := meta.FindStatusCondition(d.Status.Conditions, v1.ConditionConnected)
		if c == nil || c.Reason != v1.ReasonReenabled || d.Status.ObservedGeneration != d.Generation {
			return fmt.Errorf("Connected %+v, observedGeneration %d", c, d.Status.ObservedGeneration)
		}
		return nil
	})
}

func TestForeignSecretIsLeftAlone(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	// A Secret someone else made (e.g. with `wasmbed pki device`), holding a valid
	// certificate and its key: the Device counts as enrolled and the Secret is kept.
	id := pki.Identity{Namespace: ns, Name: "cli"}
	certPEM, keyPEM, err := ca.IssueDevice(id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cli-creds"},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM},
	}
	if err := env.Client.Create(ctx, sec); err != nil {
		t.Fatal(err)
	}
	createDevice(t, ns, "cli", func(d *v1.Device) { d.Spec.Identity = &v1.DeviceIdentity{SecretName: "cli-creds"} })
	dev := waitDevice(t, ns, "cli", "enrolled from the existing secret", hasPhase(v1.DeviceEnrolled))
	cert, err := pki.ParseCertificatePEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	// Its key is recorded, as if the operator had issued the certificate.
	if want := pki.PublicKeyHash(cert.RawSubjectPublicKeyInfo); dev.Status.PublicKeyHash != want {
		t.Fatalf("publicKeyHash %q, want %q, the key of the Secret's certificate", dev.Status.PublicKeyHash, want)
	}

	// The device renews its certificate: the Secret is not the operator's to rewrite.
	key, err := pki.ParseKeyPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	waitIssued(t, createCSR(t, request{key: key, uris: []string{"wasmbed://" + ns + "/cli"}}).Name)
	var events corev1.EventList
	eventually(t, 20*time.Second, "warning event about the foreign secret", func() error {
		if err := env.Client.List(ctx, &events, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Reason == ReasonSecretNotOwned {
				return nil
			}
		}
		return fmt.Errorf("no %s event among %d", ReasonSecretNotOwned, len(events.Items))
	})
	var got corev1.Secret
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(sec), &got); err != nil {
		t.Fatal(err)
	}
	if string(got.Data[corev1.TLSCertKey]) != string(certPEM) || got.ResourceVersion != sec.ResourceVersion {
		t.Error("a Secret the Device does not own was rewritten")
	}
}

func TestOptions(t *testing.T) {
	dir := t.TempDir()
	if err := ca.Save(dir, false); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts Options
		ok   bool
	}{
		{"none", Options{}, false},
		{"ca", Options{CA: ca}, true},
		{"dir", Options{CADir: dir}, true},
		{"missing dir", Options{CADir: t.TempDir()}, false},
		{"two", Options{CA: ca, CADir: dir}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := newCASource(tc.opts, env.Client)
			if (err == nil) != tc.ok {
				t.Fatalf("newCASource: %v, want ok=%v", err, tc.ok)
			}
			if err == nil && !src.ca.Cert.Equal(ca.Cert) {
				t.Fatal("loaded another CA")
			}
		})
	}
	sec := int32(60)
	long := int32(10 * 365 * 24 * 3600)
	o := Options{Validity: 48 * time.Hour}
	for _, tc := range []struct {
		in   *int32
		want time.Duration
	}{{nil, 48 * time.Hour}, {&sec, minValidity}, {&long, 48 * time.Hour}, {ptr.To[int32](7200), 2 * time.Hour}} {
		if got := o.validity(tc.in); got != tc.want {
			t.Errorf("validity(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestMissingCAIsReported(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	// Reconcile a Device by hand with a CA Secret that does not exist: the error
	// names the Secret and an Event says what went wrong.
	createDevice(t, ns, "lost", nil)
	_, devices := directReconcilers()
	rec := events.NewFakeRecorder(10)
	devices.recorder = rec
	devices.ca = &caSource{reader: env.Client, secret: types.NamespacedName{Namespace: ns, Name: "no-such-ca"}}
	key := types.NamespacedName{Namespace: ns, Name: "lost"}
	if _, err := devices.Reconcile(ctx, ctrl.Request{NamespacedName: key}); err == nil || !strings.Contains(err.Error(), "no-such-ca") {
		t.Fatalf("reconcile error %v, want one naming the CA Secret", err)
	}
	if e := <-rec.Events; !strings.Contains(e, ReasonIdentityError) || !strings.Contains(e, "no-such-ca") {
		t.Errorf("event %q, want %s naming the Secret", e, ReasonIdentityError)
	}
}

// applyEnrollerRoles creates the ClusterRoles of config/200-rbac/300-device-enroller.yaml
// as a cluster administrator applies them, so that tests grant what users are told to.
func applyEnrollerRoles(t *testing.T) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "200-rbac", "300-device-enroller.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	n := 0
	for {
		var role rbacv1.ClusterRole
		if err := dec.Decode(&role); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if err := env.Client.Create(context.Background(), &role); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		n++
	}
	if n != 2 {
		t.Fatalf("%d ClusterRoles in 300-device-enroller.yaml, want wasmbed-device-enroller and wasmbed-device-csr-requester", n)
	}
}

var userCounter atomic.Int32

// newUser adds a user to the test apiserver, creates the bindings grant returns for it,
// and returns a client acting as that user.
func newUser(t *testing.T, grant func(user string) []client.Object) (string, client.Client) {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("enroller-%d", userCounter.Add(1))
	for _, o := range grant(name) {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	u, err := env.Environment.ControlPlane.AddUser(envtest.User{Name: name}, env.Config)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(u.Config(), client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return name, c
}

func userSubject(user string) []rbacv1.Subject {
	return []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}}
}

// mayRequest lets user send CertificateSigningRequests (wasmbed-device-csr-requester).
func mayRequest(user string) client.Object {
	return &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user + "-csr"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "wasmbed-device-csr-requester"},
		Subjects: userSubject(user)}
}

// mayEnrollIn binds wasmbed-device-enroller to user in namespace ns.
func mayEnrollIn(user, ns string) client.Object {
	return &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user + "-enroll"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "wasmbed-device-enroller"},
		Subjects: userSubject(user)}
}

// waitDenied waits for the request to be denied and returns its Denied condition.
func waitDenied(t *testing.T, name string) *certificatesv1.CertificateSigningRequestCondition {
	t.Helper()
	var c *certificatesv1.CertificateSigningRequestCondition
	eventually(t, 20*time.Second, "csr "+name+" denied", func() error {
		got, err := getCSR(name)
		if err != nil {
			return err
		}
		if len(got.Status.Certificate) > 0 || condition(got, certificatesv1.CertificateApproved) != nil {
			t.Fatalf("request %s was approved: %+v", name, got.Status.Conditions)
		}
		if c = condition(got, certificatesv1.CertificateDenied); c == nil {
			return fmt.Errorf("not denied yet: %+v", got.Status.Conditions)
		}
		return nil
	})
	return c
}

// TestEnrollRequiresPermission: a request is approved only when its requester may
// "enroll" the Device it names, whatever else it may do; a requester without the
// permission learns nothing about whether the Device exists.
func TestEnrollRequiresPermission(t *testing.T) {
	applyEnrollerRoles(t)
	ns, other := namespace(t), namespace(t)
	for _, tc := range []struct {
		name    string
		device  string // created unless empty
		ask     string // the device the request names
		grant   func(user string) []client.Object
		approve bool
	}{
		{name: "enroller of the namespace", device: "ok", ask: "ok", approve: true,
			grant: func(u string) []client.Object { return []client.Object{mayRequest(u), mayEnrollIn(u, ns)} }},
		{name: "may only send requests", device: "stolen", ask: "stolen",
			grant: func(u string) []client.Object { return []client.Object{mayRequest(u)} }},
		{name: "enroller of another namespace", device: "elsewhere", ask: "elsewhere",
			grant: func(u string) []client.Object { return []client.Object{mayRequest(u), mayEnrollIn(u, other)} }},
		{name: "enroller of another device", device: "named", ask: "named",
			grant: func(u string) []client.Object {
				return []client.Object{mayRequest(u),
					&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: u + "-one"},
						Rules: []rbacv1.PolicyRule{{APIGroups: []string{v1.GroupName}, Resources: []string{"devices"},
							ResourceNames: []string{"not-named"}, Verbs: []string{v1.DeviceEnrollVerb}}}},
					&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: u + "-one"},
						RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: u + "-one"},
						Subjects: userSubject(u)}}
			}},
		{name: "may edit devices but not enroll them", device: "editable", ask: "editable",
			grant: func(u string) []client.Object {
				return []client.Object{mayRequest(u),
					&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: u + "-edit"},
						Rules: []rbacv1.PolicyRule{{APIGroups: []string{v1.GroupName}, Resources: []string{"devices", "devices/status"},
							Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}}}},
					&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: u + "-edit"},
						RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: u + "-edit"},
						Subjects: userSubject(u)}}
			}},
		{name: "no permission, no device", ask: "absent",
			grant: func(u string) []client.Object { return []client.Object{mayRequest(u)} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.device != "" {
				createDevice(t, ns, tc.device, nil)
			}
			user, as := newUser(t, tc.grant)
			csr := createCSR(t, request{as: as, uris: []string{"wasmbed://" + ns + "/" + tc.ask}})
			if tc.approve {
				got := waitIssued(t, csr.Name)
				if c := condition(got, certificatesv1.CertificateApproved); c == nil || c.Reason != ReasonDeviceExists || !strings.Contains(c.Message, user) {
					t.Fatalf("Approved condition %+v, want %s naming %s", c, ReasonDeviceExists, user)
				}
				return
			}
			c := waitDenied(t, csr.Name)
			if c.Reason != ReasonEnrollForbidden || !strings.Contains(c.Message, user) || !strings.Contains(c.Message, `verb "enroll"`) {
				t.Fatalf("denied with %s %q, want %s naming the user and the verb", c.Reason, c.Message, ReasonEnrollForbidden)
			}
		})
	}
}

// keyHash returns the recorded form of a test key.
func keyHash(t *testing.T, key crypto.Signer) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return pki.PublicKeyHash(der)
}

// patchDevice applies mutate to the Device (status too when status is set).
func patchDevice(t *testing.T, ns, name string, status bool, mutate func(*v1.Device)) {
	t.Helper()
	ctx := context.Background()
	var dev v1.Device
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &dev); err != nil {
		t.Fatal(err)
	}
	before := dev.DeepCopy()
	mutate(&dev)
	var err error
	if status {
		err = env.Client.Status().Patch(ctx, &dev, client.MergeFrom(before))
	} else {
		err = env.Client.Patch(ctx, &dev, client.MergeFrom(before))
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestEnrolledDeviceKeepsItsKey: once a Device holds a valid certificate, a request
// for another key is denied unless the Device is marked for re-enrollment; its own key
// renews; re-enrollment records the new key and ends; a cleared key stays revoked.
func TestEnrolledDeviceKeepsItsKey(t *testing.T) {
	ns := namespace(t)
	createDevice(t, ns, "b", nil)
	keyA, keyB, keyC, keyD := p256(t), p256(t), p256(t), p256(t)
	uri := "wasmbed://" + ns + "/b"
	first := waitIssued(t, createCSR(t, request{key: keyA, uris: []string{uri}}).Name)
	if c := condition(first, certificatesv1.CertificateApproved); c.Reason != ReasonDeviceExists {
		t.Fatalf("first request approved as %s, want %s", c.Reason, ReasonDeviceExists)
	}
	dev := waitDevice(t, ns, "b", "enrolled", hasPhase(v1.DeviceEnrolled))
	if dev.Status.PublicKeyHash != keyHash(t, keyA) {
		t.Fatalf("publicKeyHash %q, want the first request's key %s", dev.Status.PublicKeyHash, keyHash(t, keyA))
	}

	for _, step := range []struct {
		name     string
		before   func(t *testing.T) // changes the Device first
		key      crypto.Signer
		approved string // approval reason, or "" for a denial
		denied   string
		mentions string
		recorded crypto.Signer                    // publicKeyHash afterwards (nil: empty)
		enrolled string                           // the Enrolled condition's reason afterwards
		check    func(t *testing.T, d *v1.Device) // more about the Device afterwards
	}{
		{name: "another key", key: keyB, denied: ReasonAlreadyEnrolled, mentions: v1.DeviceReenrollAnnotation,
			recorded: keyA, enrolled: v1.ReasonCertificateIssued},
		{name: "its own key renews", key: keyA, approved: ReasonRenewal, recorded: keyA, enrolled: v1.ReasonCertificateIssued},
		{name: "marked, the key being replaced", key: keyA, denied: ReasonReenrollSameKey, mentions: keyHash(t, keyA),
			before: func(t *testing.T) {
				patchDevice(t, ns, "b", false, func(d *v1.Device) { d.Annotations = map[string]string{v1.DeviceReenrollAnnotation: "true"} })
				waitDevice(t, ns, "b", "re-enrollment requested", func(d *v1.Device) error {
					if c := meta.FindStatusCondition(d.Status.Conditions, v1.ConditionEnrolled); c == nil || c.Reason != v1.ReasonReenrollmentRequested {
						return fmt.Errorf("Enrolled %+v", c)
					}
					return nil
				})
			},
			recorded: keyA, enrolled: v1.ReasonReenrollmentRequested},
		{name: "marked, a new key", key: keyC, approved: ReasonReenrollment, recorded: keyC, enrolled: v1.ReasonCertificateIssued,
			check: func(t *testing.T, d *v1.Device) {
				if _, ok := d.Annotations[v1.DeviceReenrollAnnotation]; ok {
					t.Errorf("the re-enrollment mark was not removed: %v", d.Annotations)
				}
				var sec corev1.Secret
				if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "b-identity"}, &sec); err != nil {
					t.Fatal(err)
				}
				cert, err := pki.ParseCertificatePEM(sec.Data[SecretCertKey])
				if err != nil || !cert.PublicKey.(*ecdsa.PublicKey).Equal(keyC.Public()) {
					t.Errorf("the identity Secret does not hold the new key's certificate (%v)", err)
				}
			}},
		{name: "the mark was spent", key: keyD, denied: ReasonAlreadyEnrolled, recorded: keyC, enrolled: v1.ReasonCertificateIssued},
		{name: "a cleared key is revoked and cannot renew", key: keyC, denied: ReasonAlreadyEnrolled, mentions: "status.publicKeyHash",
			before: func(t *testing.T) {
				patchDevice(t, ns, "b", true, func(d *v1.Device) { d.Status.PublicKeyHash = "" })
			},
			enrolled: v1.ReasonKeyRevoked},
	} {
		t.Run(step.name, func(t *testing.T) {
			if step.before != nil {
				step.before(t)
			}
			csr := createCSR(t, request{key: step.key, uris: []string{uri}})
			if step.approved != "" {
				got := waitIssued(t, csr.Name)
				if c := condition(got, certificatesv1.CertificateApproved); c.Reason != step.approved {
					t.Fatalf("approved as %s (%s), want %s", c.Reason, c.Message, step.approved)
				}
			} else if c := waitDenied(t, csr.Name); c.Reason != step.denied || !strings.Contains(c.Message, step.mentions) {
				t.Fatalf("denied with %s %q, want %s mentioning %q", c.Reason, c.Message, step.denied, step.mentions)
			}
			want := ""
			if step.recorded != nil {
				want = keyHash(t, step.recorded)
			}
			d := waitDevice(t, ns, "b", "the recorded key and Enrolled", func(d *v1.Device) error {
				c := meta.FindStatusCondition(d.Status.Conditions, v1.ConditionEnrolled)
				if d.Status.PublicKeyHash != want || c == nil || c.Reason != step.enrolled {
					return fmt.Errorf("publicKeyHash %q, Enrolled %+v; want %q and reason %s", d.Status.PublicKeyHash, c, want, step.enrolled)
				}
				return nil
			})
			if step.check != nil {
				step.check(t, d)
			}
		})
	}
}

// TestTwoRequestsAtOnce: of two requests for a new Device sent together, with two
// different keys, exactly one is approved: the first one's key is recorded before its
// certificate is visible, and the second is judged against it.
func TestTwoRequestsAtOnce(t *testing.T) {
	ns := namespace(t)
	createDevice(t, ns, "race", nil)
	keys := []crypto.Signer{p256(t), p256(t)}
	var names []string
	for _, k := range keys {
		names = append(names, createCSR(t, request{key: k, uris: []string{"wasmbed://" + ns + "/race"}}).Name)
	}
	issued, denied := -1, 0
	eventually(t, 20*time.Second, "both requests settled", func() error {
		issued, denied = -1, 0
		for i, n := range names {
			got, err := getCSR(n)
			if err != nil {
				return err
			}
			switch {
			case len(got.Status.Certificate) > 0:
				if issued >= 0 {
					t.Fatal("both requests were issued")
				}
				issued = i
			case condition(got, certificatesv1.CertificateDenied) != nil:
				if c := condition(got, certificatesv1.CertificateDenied); c.Reason != ReasonAlreadyEnrolled {
					t.Fatalf("denied with %s, want %s", c.Reason, ReasonAlreadyEnrolled)
				}
				denied++
			default:
				return fmt.Errorf("%s not settled: %+v", n, got.Status.Conditions)
			}
		}
		return nil
	})
	if issued < 0 || denied != 1 {
		t.Fatalf("issued %d, denied %d", issued, denied)
	}
	waitDevice(t, ns, "race", "the issued request's key recorded", func(d *v1.Device) error {
		if want := keyHash(t, keys[issued]); d.Status.PublicKeyHash != want || d.Status.Phase != v1.DeviceEnrolled {
			return fmt.Errorf("publicKeyHash %q phase %s, want %q Enrolled", d.Status.PublicKeyHash, d.Status.Phase, want)
		}
		return nil
	})
}
