package device

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/pki"
)

// Reasons of the Approved, Denied and Failed conditions this package puts on
// CertificateSigningRequests, and of the Events that go with them.
const (
	// ReasonDeviceExists approves a request for a Device that exists and is enabled,
	// from a requester that may enroll it.
	ReasonDeviceExists = "WasmbedDeviceExists"
	// ReasonDeviceNotFound denies a request for a Device that does not exist.
	ReasonDeviceNotFound = "WasmbedDeviceNotFound"
	// ReasonDeviceDisabled denies a request for a Device with spec.disabled set.
	ReasonDeviceDisabled = "WasmbedDeviceDisabled"
	// ReasonEnrollForbidden denies a request whose requester may not enroll the Device:
	// a SubjectAccessReview for verb "enroll" on that Device did not allow it.
	ReasonEnrollForbidden = "WasmbedEnrollForbidden"
	// ReasonRenewal approves a request for a Device that holds a valid certificate when
	// the request is for the Device's recorded key: only the key's holder can sign it.
	ReasonRenewal = "WasmbedRenewal"
	// ReasonReenrollment approves a request for a new key for a Device marked for
	// re-enrollment (annotation wasmbed.dev/reenroll).
	ReasonReenrollment = "WasmbedReenrollment"
	// ReasonAlreadyEnrolled denies a request for another key than the recorded one of a
	// Device that holds a valid certificate and is not marked for re-enrollment.
	ReasonAlreadyEnrolled = "WasmbedDeviceAlreadyEnrolled"
	// ReasonReenrollSameKey denies a request, for a Device marked for re-enrollment, for
	// the very key being replaced.
	ReasonReenrollSameKey = "WasmbedReenrollmentNeedsNewKey"
	// ReasonInvalidRequest denies a request that is unparseable, badly signed, does not
	// carry exactly one wasmbed://<namespace>/<device> URI SAN, or asks for usages other
	// than client auth.
	ReasonInvalidRequest = "WasmbedInvalidRequest"
	// ReasonUnsupportedKey denies a request whose key is not ECDSA P-256.
	ReasonUnsupportedKey = "WasmbedUnsupportedKey"
	// ReasonSignFailed marks an approved request that cannot be signed (Failed condition).
	ReasonSignFailed = "WasmbedSignFailed"
)

// Actions of this package's Events (events.k8s.io "action": what the controller did).
const (
	// ActionApprove and ActionDeny judge a CertificateSigningRequest; ActionSign signs it.
	ActionApprove = "Approve"
	ActionDeny    = "Deny"
	ActionSign    = "Sign"
	// ActionStoreCertificate writes an issued certificate to a Device's identity Secret.
	ActionStoreCertificate = "StoreCertificate"
)

// allowedUsages are the key usages a device may ask for; client auth is required.
var allowedUsages = []certificatesv1.KeyUsage{
	certificatesv1.UsageClientAuth,
	certificatesv1.UsageDigitalSignature,
	certificatesv1.UsageKeyEncipherment,
}

// refusal is why a request is denied: a CSR condition reason and a message.
type refusal struct {
	reason, message string
}

// asked is what a well-formed request asks for: a certificate for an identity, for a
// key ("sha256:<hex>" of its SubjectPublicKeyInfo).
type asked struct {
	id      pki.Identity
	keyHash string
}

// inspect checks a request against the signer's rules and returns what it asks for, or
// why it must be refused.
func inspect(csr *certificatesv1.CertificateSigningRequest) (asked, *refusal) {
	bad := func(format string, args ...any) (asked, *refusal) {
		return asked{}, &refusal{ReasonInvalidRequest, fmt.Sprintf(format, args...)}
	}
	block, _ := pem.Decode(csr.Spec.Request)
	if block == nil {
		return bad("spec.request holds no PEM certificate request")
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return bad("spec.request: %v", err)
	}
	if key, ok := req.PublicKey.(*ecdsa.PublicKey); !ok || key.Curve != elliptic.P256() {
		name := req.PublicKeyAlgorithm.String()
		if ok {
			name += " " + key.Curve.Params().Name
		}
		return asked{}, &refusal{ReasonUnsupportedKey, fmt.Sprintf("the request's key is %s; devices must use ECDSA P-256", name)}
	}
	if _, err := pki.ParseCSR(csr.Spec.Request); err != nil {
		return bad("spec.request: %v", err)
	}
	if len(req.URIs) != 1 {
		return bad("the request carries %d URI SANs; it must carry exactly one, %s://<namespace>/<device>", len(req.URIs), pki.URIScheme)
	}
	id, err := pki.ParseIdentityURI(req.URIs[0])
	if err != nil {
		return bad("%v", err)
	}
	if !slices.Contains(csr.Spec.Usages, certificatesv1.UsageClientAuth) {
		return bad("spec.usages must include %q", certificatesv1.UsageClientAuth)
	}
	for _, u := range csr.Spec.Usages {
		if !slices.Contains(allowedUsages, u) {
			return bad("spec.usages: %q is not allowed; a device certificate is for client auth only", u)
		}
	}
	return asked{id: id, keyHash: pki.PublicKeyHash(req.RawSubjectPublicKeyInfo)}, nil
}

// requestedIdentity returns the identity in a request's URI SAN without judging the
// rest of it, for indexing and mapping.
func requestedIdentity(csr *certificatesv1.CertificateSigningRequest) (pki.Identity, bool) {
	if csr.Spec.SignerName != pki.SignerName {
		return pki.Identity{}, false
	}
	block, _ := pem.Decode(csr.Spec.Request)
	if block == nil {
		return pki.Identity{}, false
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil || len(req.URIs) != 1 {
		return pki.Identity{}, false
	}
	id, err := pki.ParseIdentityURI(req.URIs[0])
	return id, err == nil
}

func hasCondition(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// settled reports whether nothing is left to do for a request: it was denied, failed
// or already has its certificate.
func settled(csr *certificatesv1.CertificateSigningRequest) bool {
	return len(csr.Status.Certificate) > 0 ||
		hasCondition(csr, certificatesv1.CertificateDenied) ||
		hasCondition(csr, certificatesv1.CertificateFailed)
}

func addCondition(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType, reason, msg string) {
	now := metav1.Now()
	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: t, Status: corev1.ConditionTrue, Reason: reason, Message: msg,
		LastUpdateTime: now, LastTransitionTime: now,
	})
}

// csrReconciler approves or denies wasmbed.dev/device requests and signs approved ones,
// as kube-controller-manager's approver and signer controllers do for theirs.
type csrReconciler struct {
	client   client.Client
	reader   client.Reader
	recorder events.EventRecorder
	ca       *caSource
	opts     Options
	now      func() time.Time
}

// Reconcile moves one request to Denied, or to Approved and issued.
func (r *csrReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var csr certificatesv1.CertificateSigningRequest
	if err := r.client.Get(ctx, req.NamespacedName, &csr); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if csr.Spec.SignerName != pki.SignerName || settled(&csr) {
		return ctrl.Result{}, nil
	}
	// Decide on a live read: the cache may not show this controller's own last write
	// yet, and acting on it would approve or sign a second time.
	if err := r.reader.Get(ctx, req.NamespacedName, &csr); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if settled(&csr) {
		return ctrl.Result{}, nil
	}
	if !hasCondition(&csr, certificatesv1.CertificateApproved) {
		approved, err := r.decide(ctx, &csr)
		if err != nil || !approved {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{}, r.sign(ctx, &csr)
}

// decide approves the request when its requester may enroll the Device, the Device
// exists and is enabled, and the Device may be given a certificate for that key (see
// enrollment); it denies it otherwise. It reports whether the request was approved.
func (r *csrReconciler) decide(ctx context.Context, csr *certificatesv1.CertificateSigningRequest) (bool, error) {
	logger := log.FromContext(ctx)
	req, why := inspect(csr)
	id := req.id
	var dev *v1.Device
	approval := ReasonDeviceExists
	if why == nil {
		dev = &v1.Device{}
		err := r.reader.Get(ctx, types.NamespacedName{Namespace: id.Namespace, Name: id.Name}, dev)
		if apierrors.IsNotFound(err) {
			dev = nil
		} else if err != nil {
			return false, fmt.Errorf("get device %s: %w", id, err)
		}
		// Who asks comes before what exists: a requester that may not enroll the Device
		// learns nothing about it from the denial.
		if why, err = r.authorize(ctx, csr, id); err != nil {
			return false, err
		}
	}
	if why == nil {
		switch {
		case dev == nil:
			why = &refusal{ReasonDeviceNotFound, fmt.Sprintf("no Device %s: create it before the device enrolls", id)}
		case dev.DeletionTimestamp != nil:
			why = &refusal{ReasonDeviceNotFound, fmt.Sprintf("Device %s is being deleted", id)}
		case dev.Spec.Disabled:
			why = &refusal{ReasonDeviceDisabled, fmt.Sprintf("Device %s has spec.disabled set", id)}
		default:
			approval, why = enrollment(dev, req.keyHash, r.now())
		}
	}

	if why != nil {
		addCondition(csr, certificatesv1.CertificateDenied, why.reason, why.message)
		if err := r.client.SubResource("approval").Update(ctx, csr); err != nil {
			return false, fmt.Errorf("deny %s: %w", csr.Name, err)
		}
		logger.Info("denied certificate signing request", "reason", why.reason, "message", why.message)
		r.recorder.Eventf(csr, dev, corev1.EventTypeWarning, why.reason, ActionDeny, "%s", why.message)
		if dev != nil {
			r.recorder.Eventf(dev, csr, corev1.EventTypeWarning, why.reason, ActionDeny, "denied CertificateSigningRequest %s: %s", csr.Name, why.message)
		}
		return false, nil
	}

	msg := fmt.Sprintf("%s may enroll Device %s, which exists", requester(csr), id)
	switch approval {
	case ReasonRenewal:
		msg += "; the request renews the certificate of its recorded key " + req.keyHash
	case ReasonReenrollment:
		msg += fmt.Sprintf(" and is marked for re-enrollment (%s); new key %s", v1.DeviceReenrollAnnotation, req.keyHash)
	}
	addCondition(csr, certificatesv1.CertificateApproved, approval, msg)
	if err := r.client.SubResource("approval").Update(ctx, csr); err != nil {
		return false, fmt.Errorf("approve %s: %w", csr.Name, err)
	}
	logger.Info("approved certificate signing request", "device", id.String(), "reason", approval)
	r.recorder.Eventf(csr, nil, corev1.EventTypeNormal, approval, ActionApprove, "approved: %s", msg)
	return true, nil
}

// enrollment decides whether a Device that exists, is enabled and may be enrolled by
// the requester may get a certificate for the key keyHash now, and under which
// approval reason:
//   - marked for re-enrollment: yes for a new key, no for the key being replaced;
//   - holding no valid certificate (never enrolled, or expired): yes, a first enrollment;
//   - holding one: yes for its recorded key (a renewal, which only that key's holder
//     can sign), no for any other: taking over an enrolled device's identity with a new
//     key takes the re-enrollment mark, which only who may annotate the Device can set.
//
// The Device is read live and its key and expiry are recorded before a certificate is
// visible (sign), so a second request right after a first one sees the first.
func enrollment(dev *v1.Device, keyHash string, now time.Time) (string, *refusal) {
	id := pki.Identity{Namespace: dev.Namespace, Name: dev.Name}
	recorded := dev.Status.PublicKeyHash
	switch {
	case reenrolling(dev) && keyHash == recorded:
		return "", &refusal{ReasonReenrollSameKey, fmt.Sprintf(
			"Device %s is marked for re-enrollment: the request must carry a new key, not %s, the one being replaced", id, recorded)}
	case reenrolling(dev):
		return ReasonReenrollment, nil
	case dev.Status.CertificateNotAfter == nil || !now.Before(dev.Status.CertificateNotAfter.Time):
		return ReasonDeviceExists, nil
	case recorded != "" && keyHash == recorded:
		return ReasonRenewal, nil
	}
	held := "its recorded key " + recorded
	if recorded == "" {
		held = "a key revoked by clearing status.publicKeyHash"
	}
	return "", &refusal{ReasonAlreadyEnrolled, fmt.Sprintf(
		"Device %s already holds a certificate valid until %s for %s, and this request is for another key (%s). "+
			"To give the device a new key, mark it for re-enrollment: kubectl annotate device %s -n %s %s=true",
		id, dev.Status.CertificateNotAfter.UTC().Format(time.RFC3339), held, keyHash, dev.Name, dev.Namespace, v1.DeviceReenrollAnnotation)}
}

// reenrolling reports whether a Device is marked for re-enrollment.
func reenrolling(dev *v1.Device) bool {
	return dev.Annotations[v1.DeviceReenrollAnnotation] != ""
}

// authorize asks the apiserver whether the request's requester may enroll the Device
// of id, as kube-controller-manager's approver asks whether a kubelet may request its
// node's client certificate. It returns why not, or nil when it may.
func (r *csrReconciler) authorize(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, id pki.Identity) (*refusal, error) {
	if csr.Spec.Username == "" && len(csr.Spec.Groups) == 0 {
		return &refusal{ReasonEnrollForbidden, "the request names no requester (spec.username)"}, nil
	}
	var extra map[string]authorizationv1.ExtraValue
	if len(csr.Spec.Extra) > 0 {
		extra = make(map[string]authorizationv1.ExtraValue, len(csr.Spec.Extra))
		for k, v := range csr.Spec.Extra {
			extra[k] = authorizationv1.ExtraValue(v)
		}
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: csr.Spec.Username, UID: csr.Spec.UID, Groups: csr.Spec.Groups, Extra: extra,
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Group: v1.GroupName, Resource: "devices", Verb: v1.DeviceEnrollVerb,
			Namespace: id.Namespace, Name: id.Name,
		},
	}}
	if err := r.client.Create(ctx, sar); err != nil {
		return nil, fmt.Errorf("subject access review for %s: %w", csr.Name, err)
	}
	if sar.Status.Allowed {
		return nil, nil
	}
	// Not allowed is denied, even when the authorizer reported an error: a request is
	// cheap to send again, and a verdict that waits on an authorizer may wait forever.
	msg := fmt.Sprintf("%s may not enroll Device %s: it needs verb %q on devices.%s in namespace %s (ClusterRole wasmbed-device-enroller)",
		requester(csr), id, v1.DeviceEnrollVerb, v1.GroupName, id.Namespace)
	for _, s := range []string{sar.Status.Reason, sar.Status.EvaluationError} {
		if s != "" {
			msg += "; " + s
		}
	}
	return &refusal{ReasonEnrollForbidden, msg}, nil
}

// requester names who created a request, for messages.
func requester(csr *certificatesv1.CertificateSigningRequest) string {
	if csr.Spec.Username != "" {
		return fmt.Sprintf("user %q", csr.Spec.Username)
	}
	return fmt.Sprintf("groups %q", csr.Spec.Groups)
}

// sign issues the certificate of an approved request into status.certificate. A
// request that cannot be signed gets a Failed condition instead.
func (r *csrReconciler) sign(ctx context.Context, csr *certificatesv1.CertificateSigningRequest) error {
	logger := log.FromContext(ctx)
	ca, err := r.ca.get(ctx)
	if err != nil {
		r.recorder.Eventf(csr, nil, corev1.EventTypeWarning, ReasonSignFailed, ActionSign, "%s", err)
		return fmt.Errorf("sign %s: %w", csr.Name, err)
	}
	// The request may have been approved by someone else: check it all the same.
	req, why := inspect(csr)
	id := req.id
	var dev v1.Device
	if why == nil {
		// A certificate is only issued for a Device that exists, so that its key is
		// recorded before anyone can use it.
		err := r.reader.Get(ctx, types.NamespacedName{Namespace: id.Namespace, Name: id.Name}, &dev)
		switch {
		case apierrors.IsNotFound(err) || err == nil && dev.DeletionTimestamp != nil:
			why = &refusal{ReasonDeviceNotFound, fmt.Sprintf("no Device %s to record the certificate's key in", id)}
		case err != nil:
			return fmt.Errorf("sign %s: get device %s: %w", csr.Name, id, err)
		}
	}
	var certPEM []byte
	if why == nil {
		signer := pki.NewSigner(ca, sameIdentity).WithValidity(r.opts.validity(csr.Spec.ExpirationSeconds))
		certPEM, err = signer.Sign(ctx, csr.Spec.Request, id)
		switch {
		case ctx.Err() != nil:
			return fmt.Errorf("sign %s: %w", csr.Name, err)
		case err != nil:
			why = &refusal{ReasonSignFailed, err.Error()}
		}
	}
	if why != nil {
		addCondition(csr, certificatesv1.CertificateFailed, why.reason, why.message)
		if err := r.client.Status().Update(ctx, csr); err != nil {
			return fmt.Errorf("mark %s failed: %w", csr.Name, err)
		}
		logger.Info("could not sign an approved certificate signing request", "reason", why.reason, "message", why.message)
		r.recorder.Eventf(csr, nil, corev1.EventTypeWarning, why.reason, ActionSign, "%s", why.message)
		return nil
	}
	if err := r.record(ctx, csr, &dev, req.keyHash, certPEM); err != nil {
		return fmt.Errorf("sign %s: %w", csr.Name, err)
	}
	csr.Status.Certificate = certPEM
	if err := r.client.Status().Update(ctx, csr); err != nil {
		return fmt.Errorf("store certificate of %s: %w", csr.Name, err)
	}
	logger.Info("issued device certificate", "device", id.String())
	r.recorder.Eventf(csr, nil, corev1.EventTypeNormal, v1.ReasonCertificateIssued, ActionSign, "issued a certificate for %s", id.URI())
	return nil
}

// record writes the key and expiry of a certificate about to be issued into its
// Device's status, and ends a re-enrollment the request was approved for, before the
// certificate is stored in the request where the device fetches it: a device never
// holds a certificate that gateways would refuse, and the approver of the next request
// already sees this one. Each step is idempotent, so a failure is retried whole.
func (r *csrReconciler) record(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, dev *v1.Device, keyHash string, certPEM []byte) error {
	cert, err := pki.ParseCertificatePEM(certPEM)
	if err != nil {
		return err
	}
	notAfter := metav1.NewTime(cert.NotAfter)
	before := dev.DeepCopy()
	dev.Status.RecordKey(keyHash, &notAfter)
	if !equality.Semantic.DeepEqual(before.Status, dev.Status) {
		// No optimistic lock: these two fields are the signer's to write, and a merge
		// patch sends only them.
		if err := r.client.Status().Patch(ctx, dev, client.MergeFrom(before)); err != nil {
			return fmt.Errorf("record the key of device %s/%s: %w", dev.Namespace, dev.Name, err)
		}
	}
	if reenrolling(dev) && approvedAs(csr, ReasonReenrollment) {
		// The new key is recorded: the mark has done its work. The lock makes sure a
		// mark set again meanwhile is seen by the next reconcile instead of removed.
		before := dev.DeepCopy()
		delete(dev.Annotations, v1.DeviceReenrollAnnotation)
		if err := r.client.Patch(ctx, dev, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			return fmt.Errorf("end the re-enrollment of device %s/%s: %w", dev.Namespace, dev.Name, err)
		}
		log.FromContext(ctx).Info("device re-enrolled with a new key", "device", dev.Namespace+"/"+dev.Name, "key", keyHash)
	}
	return nil
}

// approvedAs reports whether the request was approved with reason.
func approvedAs(csr *certificatesv1.CertificateSigningRequest, reason string) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == certificatesv1.CertificateApproved && c.Status == corev1.ConditionTrue && c.Reason == reason {
			return true
		}
	}
	return false
}

// sameIdentity is the Signer's last check: the identity signed is the one the request
// names in its URI SAN, never another.
var sameIdentity = pki.ApproverFunc(func(_ context.Context, req pki.SignRequest) error {
	if len(req.CSR.URIs) != 1 || req.CSR.URIs[0].String() != req.Identity.URI().String() {
		return errors.New("the request does not name the identity being signed")
	}
	return nil
})
