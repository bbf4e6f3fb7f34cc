package device

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/pki"
)

// Event reasons recorded on Devices besides the CSR reasons.
const (
	// ReasonSecretNotOwned: the identity Secret exists but belongs to something else,
	// so the operator leaves it alone.
	ReasonSecretNotOwned = "IdentitySecretNotOwned"
	// ReasonIdentityError: the identity could not be reconciled (CA or API error).
	ReasonIdentityError = "IdentityError"
)

// deviceReconciler keeps a Device's identity Secret holding its best certificate (the
// newest for its recorded key) and owns the Enrolled condition, the disabled mark, the
// phase derived from them, certificateNotAfter (with the signer, which also records
// publicKeyHash) and observedGeneration. Everything else in the status belongs to the
// event receiver.
type deviceReconciler struct {
	client   client.Client
	reader   client.Reader
	scheme   *runtime.Scheme
	recorder events.EventRecorder
	ca       *caSource
	now      func() time.Time
}

// Reconcile brings one Device's identity and status up to date.
func (r *deviceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, err error) {
	var dev v1.Device
	if err := r.client.Get(ctx, req.NamespacedName, &dev); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if dev.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}

	orig := dev.DeepCopy()
	// The status patch always runs. It is a merge patch from the object read, so fields
	// this reconciler does not change are not sent, and it carries the resourceVersion
	// so that a status written by the receiver meanwhile is never overwritten: a
	// conflict just reconciles again.
	defer func() {
		if equality.Semantic.DeepEqual(orig.Status, dev.Status) {
			return
		}
		perr := r.client.Status().Patch(ctx, &dev, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
		if apierrors.IsConflict(perr) {
			res, perr = ctrl.Result{Requeue: true}, nil
		} else if perr != nil {
			perr = fmt.Errorf("patch status of device %s/%s: %w", dev.Namespace, dev.Name, perr)
		}
		err = errors.Join(err, perr)
	}()

	cert, err := r.reconcileIdentity(ctx, &dev)
	if err != nil {
		r.recorder.Eventf(&dev, nil, corev1.EventTypeWarning, ReasonIdentityError, ActionStoreCertificate, "%s", err)
		if meta.FindStatusCondition(dev.Status.Conditions, v1.ConditionEnrolled) == nil {
			// A new Device is Pending even when its identity cannot be looked at yet.
			dev.Status.MarkAwaitingCertificate(dev.Generation)
		}
		return ctrl.Result{}, err
	}
	switch {
	case cert == nil:
		dev.Status.MarkAwaitingCertificate(dev.Generation)
	case reenrolling(&dev):
		dev.Status.MarkReenrollmentRequested(dev.Generation)
	default:
		if why := reconcileKey(&dev, cert); why != "" {
			dev.Status.MarkKeyRevoked(dev.Generation, why)
			break
		}
		dev.Status.MarkEnrolled(dev.Generation, metav1.NewTime(cert.NotAfter))
		// Look again when the certificate expires: the device is no longer enrolled.
		res.RequeueAfter = cert.NotAfter.Sub(r.now()) + time.Second
	}
	if dev.Spec.Disabled {
		dev.Status.MarkDisabled(dev.Generation)
	} else {
		dev.Status.MarkEnabled(dev.Generation)
	}
	dev.Status.ObservedGeneration = dev.Generation
	return res, nil
}

// reconcileKey compares the key of the Device's certificate with the recorded one and
// says why they disagree, or "" when they agree. A Device for which no certificate was
// ever recorded (one whose Secret someone else wrote, e.g. with `wasmbed pki device`)
// gets its certificate's key recorded here, once: after that, only the signer records
// a key, so a key cleared to revoke the device stays cleared.
func reconcileKey(dev *v1.Device, cert *x509.Certificate) string {
	key := pki.PublicKeyHash(cert.RawSubjectPublicKeyInfo)
	switch recorded := dev.Status.PublicKeyHash; {
	case recorded == key:
		return ""
	case recorded == "" && dev.Status.CertificateNotAfter == nil:
		dev.Status.RecordKey(key, nil)
		return ""
	case recorded == "":
		return fmt.Sprintf("status.publicKeyHash was cleared: gateways with the Kubernetes registry refuse the device's key %s. "+
			"Mark the Device for re-enrollment (annotation %s) to issue a certificate for a new key", key, v1.DeviceReenrollAnnotation)
	default:
		return fmt.Sprintf("the device's certificate is for key %s, not the recorded %s: gateways with the Kubernetes registry refuse it. "+
			"Mark the Device for re-enrollment (annotation %s) to issue a certificate for a new key", key, recorded, v1.DeviceReenrollAnnotation)
	}
}

// reconcileIdentity writes the best certificate issued for the Device (see better)
// into its identity Secret and returns the device's best valid certificate, or nil:
// the one the Secret then holds, or a better one issued through a
// CertificateSigningRequest that could not be stored because someone else owns the
// Secret (the device has it all the same).
func (r *deviceReconciler) reconcileIdentity(ctx context.Context, dev *v1.Device) (*x509.Certificate, error) {
	ca, err := r.ca.get(ctx)
	if err != nil {
		return nil, err
	}
	id := pki.Identity{Namespace: dev.Namespace, Name: dev.Name}
	now := r.now()
	key := types.NamespacedName{Namespace: dev.Namespace, Name: SecretName(dev)}

	// Secrets are read directly rather than through a cache of every Secret in the
	// cluster; this runs on Device spec changes and issued CSRs only.
	var sec corev1.Secret
	exists := true
	if err := r.reader.Get(ctx, key, &sec); apierrors.IsNotFound(err) {
		exists = false
	} else if err != nil {
		return nil, fmt.Errorf("get identity secret %s: %w", key, err)
	}
	current := validCertificate(ca, id, sec.Data[SecretCertKey], now)

	issued, issuedPEM, err := r.bestIssued(ctx, ca, id, dev.Status.PublicKeyHash, now)
	if err != nil {
		return nil, err
	}
	want := current
	wantPEM := sec.Data[SecretCertKey]
	if issued != nil && better(issued, current, dev.Status.PublicKeyHash) {
		want, wantPEM = issued, issuedPEM
	}
	if want == nil {
		return nil, nil
	}

	if exists && !metav1.IsControlledBy(&sec, dev) {
		if want != current {
			r.recorder.Eventf(dev, &sec, corev1.EventTypeWarning, ReasonSecretNotOwned, ActionStoreCertificate,
				"Secret %s is not owned by this Device: the certificate issued until %s was not stored; delete the Secret or set spec.identity.secretName",
				key.Name, want.NotAfter.UTC().Format(time.RFC3339))
		}
		return want, nil
	}
	if exists && bytes.Equal(sec.Data[SecretCertKey], wantPEM) && bytes.Equal(sec.Data[SecretCAKey], ca.CertPEM()) {
		return want, nil
	}

	sec.Namespace, sec.Name = key.Namespace, key.Name
	if !exists {
		sec.Type = corev1.SecretTypeOpaque
	}
	if sec.Labels == nil {
		sec.Labels = map[string]string{}
	}
	sec.Labels[DeviceLabel] = dev.Name
	if sec.Data == nil {
		sec.Data = map[string][]byte{}
	}
	sec.Data[SecretCertKey] = wantPEM
	sec.Data[SecretCAKey] = ca.CertPEM()
	if err := controllerutil.SetControllerReference(dev, &sec, r.scheme); err != nil {
		return nil, fmt.Errorf("own identity secret %s: %w", key, err)
	}
	if exists {
		err = r.client.Update(ctx, &sec)
	} else {
		err = r.client.Create(ctx, &sec)
	}
	if err != nil {
		return nil, fmt.Errorf("write identity secret %s: %w", key, err)
	}
	log.FromContext(ctx).Info("stored device certificate", "secret", key.Name, "notAfter", want.NotAfter)
	if want != current {
		r.recorder.Eventf(dev, nil, corev1.EventTypeNormal, v1.ReasonCertificateIssued, ActionStoreCertificate,
			"certificate valid until %s stored in Secret %s", want.NotAfter.UTC().Format(time.RFC3339), key.Name)
	}
	return want, nil
}

// bestIssued returns the best valid certificate issued through a
// CertificateSigningRequest for id (see better), with its PEM, or nil.
func (r *deviceReconciler) bestIssued(ctx context.Context, ca *pki.CA, id pki.Identity, recorded string, now time.Time) (*x509.Certificate, []byte, error) {
	var csrs certificatesv1.CertificateSigningRequestList
	if err := r.client.List(ctx, &csrs, client.MatchingFields{identityIndex: id.String()}); err != nil {
		return nil, nil, fmt.Errorf("list certificate signing requests of %s: %w", id, err)
	}
	var best *x509.Certificate
	var bestPEM []byte
	for i := range csrs.Items {
		csr := &csrs.Items[i]
		if csr.Spec.SignerName != pki.SignerName || len(csr.Status.Certificate) == 0 {
			continue
		}
		if c := validCertificate(ca, id, csr.Status.Certificate, now); c != nil && better(c, best, recorded) {
			best, bestPEM = c, csr.Status.Certificate
		}
	}
	return best, bestPEM, nil
}
