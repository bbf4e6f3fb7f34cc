package platform

import (
	"context"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/pki"
	"github.com/wasmbed/wasmbed/internal/testenv"
)

// TestBoardManagerIdentity: make run's board manager acts as its own ServiceAccount,
// authenticated by the apiserver with a requested token, with exactly the rights of
// config/200-rbac/400-board-manager.yaml: it reads Devices and sends certificate
// signing requests, may enroll Devices, and may not write Devices or read Secrets.
func TestBoardManagerIdentity(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	ids, err := newIdentities(ctx, env.Client)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ids.boardManager(ctx, env.Config)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ids.boardManager(ctx, env.Config); err != nil { // a restart finds it all there
		t.Fatalf("second start: %v", err)
	}
	bm, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	var devices v1.DeviceList
	if err := bm.List(ctx, &devices); err != nil {
		t.Errorf("list devices as the board manager: %v", err)
	}
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	req, err := pki.NewCSR(key, pki.Identity{Namespace: "lab", Name: "b"})
	if err != nil {
		t.Fatal(err)
	}
	csr := &certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-"},
		Spec: certificatesv1.CertificateSigningRequestSpec{Request: req, SignerName: pki.SignerName,
			Usages: []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth}}}
	if err := bm.Create(ctx, csr); err != nil {
		t.Fatalf("create a csr as the board manager: %v", err)
	}
	if want := "system:serviceaccount:wasmbed-system:" + BoardManagerServiceAccount; csr.Spec.Username != want {
		t.Errorf("csr requested by %q, want %q", csr.Spec.Username, want)
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: csr.Spec.Username, Groups: csr.Spec.Groups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Group: v1.GroupName, Resource: "devices",
			Verb: v1.DeviceEnrollVerb, Namespace: "lab", Name: "b"}}}
	if err := env.Client.Create(ctx, sar); err != nil {
		t.Fatal(err)
	}
	if !sar.Status.Allowed {
		t.Errorf("the board manager may not enroll devices: %+v", sar.Status)
	}
	d := &v1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "x"}, Spec: v1.DeviceSpec{Board: "virtual"}}
	if err := bm.Create(ctx, d); !apierrors.IsForbidden(err) {
		t.Errorf("create a device as the board manager: %v, want forbidden", err)
	}
	var secrets corev1.SecretList
	if err := bm.List(ctx, &secrets); !apierrors.IsForbidden(err) {
		t.Errorf("list secrets as the board manager: %v, want forbidden", err)
	}
}

// TestReenrollBoards: at start, make run marks for re-enrollment the emulated Devices
// that recorded a key in an earlier run (the board manager's keys died with it), and
// no other Device.
func TestReenrollBoards(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	emu := &v1.DeviceEmulation{Enabled: true}
	for _, tc := range []struct {
		name     string
		emulated bool
		key      string
	}{
		{"emulated-enrolled", true, "sha256:" + zeros},
		{"emulated-new", true, ""},
		{"virtual-enrolled", false, "sha256:" + zeros},
	} {
		d := &v1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: tc.name}, Spec: v1.DeviceSpec{Board: "stm32f4-discovery"}}
		if tc.emulated {
			d.Spec.Emulation = emu
		}
		if err := env.Client.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
		if tc.key != "" {
			before := d.DeepCopy()
			d.Status.RecordKey(tc.key, nil)
			if err := env.Client.Status().Patch(ctx, d, client.MergeFrom(before)); err != nil {
				t.Fatal(err)
			}
		}
	}
	p := &Platform{client: env.Client}
	if err := p.reenrollBoards(ctx); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"emulated-enrolled": true, "emulated-new": false, "virtual-enrolled": false} {
		var d v1.Device
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, &d); err != nil {
			t.Fatal(err)
		}
		if got := d.Annotations[v1.DeviceReenrollAnnotation] != ""; got != want {
			t.Errorf("%s marked for re-enrollment: %v, want %v", name, got, want)
		}
	}
}

const zeros = "0000000000000000000000000000000000000000000000000000000000000000"
