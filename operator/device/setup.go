// Package device enrolls devices and keeps the part of Device status that is not about
// sessions. Enrollment follows the kubelet TLS bootstrap pattern: a device (or the board
// manager or gateway enrolling for it) creates a CertificateSigningRequest with signer
// wasmbed.dev/device and one wasmbed://<namespace>/<device> URI SAN; this package
// approves it when its requester may enroll that Device (a SubjectAccessReview for verb
// "enroll" on it), the Device exists and is enabled, and it holds no valid certificate,
// or the request renews its recorded key, or it is marked for re-enrollment (denies it
// otherwise). It records the key and expiry in the Device's status, signs the request
// with the platform CA into status.certificate, stores the certificate in the Device's
// identity Secret and marks the Device Enrolled. Session state (connected, lastSeen,
// applications) is written by the operator's event receiver, never here.
package device

import (
	"context"
	"fmt"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/pki"
)

// +kubebuilder:rbac:groups=wasmbed.dev,resources=devices,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=wasmbed.dev,resources=devices/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=certificates.k8s.io,resources=certificatesigningrequests,verbs=get;list;watch
// +kubebuilder:rbac:groups=certificates.k8s.io,resources=certificatesigningrequests/approval,verbs=update
// +kubebuilder:rbac:groups=certificates.k8s.io,resources=certificatesigningrequests/status,verbs=update
// +kubebuilder:rbac:groups=certificates.k8s.io,resources=signers,resourceNames=wasmbed.dev/device,verbs=approve;sign
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;create;update
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// SetupWithManager registers the CertificateSigningRequest approver and signer and the
// Device reconciler with mgr.
func SetupWithManager(mgr ctrl.Manager, opts Options) error {
	ca, err := newCASource(opts, mgr.GetAPIReader())
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := mgr.GetFieldIndexer().IndexField(ctx, &certificatesv1.CertificateSigningRequest{}, identityIndex, indexIdentity); err != nil {
		return fmt.Errorf("device controller: index certificate signing requests: %w", err)
	}

	csrs := &csrReconciler{
		client:   mgr.GetClient(),
		reader:   mgr.GetAPIReader(),
		recorder: mgr.GetEventRecorder("wasmbed-device-signer"),
		ca:       ca,
		opts:     opts,
		now:      time.Now,
	}
	ours := predicate.NewPredicateFuncs(func(o client.Object) bool {
		csr, ok := o.(*certificatesv1.CertificateSigningRequest)
		return ok && csr.Spec.SignerName == pki.SignerName
	})
	if err := ctrl.NewControllerManagedBy(mgr).
		For(&certificatesv1.CertificateSigningRequest{}, builder.WithPredicates(ours)).
		Named("device-csr").
		Complete(csrs); err != nil {
		return fmt.Errorf("device controller: %w", err)
	}

	devices := &deviceReconciler{
		client:   mgr.GetClient(),
		reader:   mgr.GetAPIReader(),
		scheme:   mgr.GetScheme(),
		recorder: mgr.GetEventRecorder("wasmbed-device"),
		ca:       ca,
		now:      time.Now,
	}
	if err := ctrl.NewControllerManagedBy(mgr).
		For(&v1.Device{}, builder.WithPredicates(deviceChanged)).
		Watches(&certificatesv1.CertificateSigningRequest{}, handler.EnqueueRequestsFromMapFunc(deviceOfIssued), builder.WithPredicates(ours)).
		Named("device").
		Complete(devices); err != nil {
		return fmt.Errorf("device controller: %w", err)
	}
	return nil
}

// CacheByObject restricts the manager's cache of CertificateSigningRequests to the
// wasmbed.dev/device signer, so that kubelet and other requests are not kept in
// memory. Pass it as cache.Options.ByObject.
func CacheByObject() map[client.Object]cache.ByObject {
	return map[client.Object]cache.ByObject{
		&certificatesv1.CertificateSigningRequest{}: {
			Field: fields.OneTermEqualSelector("spec.signerName", pki.SignerName),
		},
	}
}

// deviceOfIssued maps a request that has its certificate to the Device it names.
func deviceOfIssued(_ context.Context, o client.Object) []reconcile.Request {
	csr, ok := o.(*certificatesv1.CertificateSigningRequest)
	if !ok || len(csr.Status.Certificate) == 0 {
		return nil
	}
	id, ok := requestedIdentity(csr)
	if !ok {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: id.Namespace, Name: id.Name}}}
}

// deviceChanged lets through what this package acts on: creations, spec changes, the
// re-enrollment mark, a recorded key changed or cleared, and status changes that undid
// its own marks (an Enrolled condition or a disabled mark overwritten by a concurrent
// writer). Session updates from the receiver do not pass,
// so heartbeats and reconnects cost no reconcile.
var deviceChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		prev, ok1 := e.ObjectOld.(*v1.Device)
		next, ok2 := e.ObjectNew.(*v1.Device)
		if !ok1 || !ok2 {
			return true
		}
		if prev.Generation != next.Generation {
			return true
		}
		if enrolled(prev) != enrolled(next) || !prev.Status.CertificateNotAfter.Equal(next.Status.CertificateNotAfter) ||
			prev.Status.PublicKeyHash != next.Status.PublicKeyHash || reenrolling(prev) != reenrolling(next) {
			return true
		}
		c := meta.FindStatusCondition(next.Status.Conditions, v1.ConditionConnected)
		return next.Spec.Disabled && (c == nil || c.Reason != v1.ReasonDisabled)
	},
}

// enrolled summarises the Enrolled condition for deviceChanged.
func enrolled(d *v1.Device) string {
	c := meta.FindStatusCondition(d.Status.Conditions, v1.ConditionEnrolled)
	if c == nil {
		return ""
	}
	return string(c.Status) + "/" + c.Reason
}
