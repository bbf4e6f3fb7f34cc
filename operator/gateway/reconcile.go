package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
)

// Event reasons of the Gateway reconciler.
const (
	// ReasonReconcileFailed: an object of the gateway could not be created or updated.
	ReasonReconcileFailed = "ReconcileFailed"
	// ReasonNotOwned: an object the gateway needs exists and belongs to something else.
	ReasonNotOwned = "ResourceNotOwned"
)

// ActionReconcile is the action (events.k8s.io) of the Gateway reconciler's Events:
// making the objects that run a gateway.
const ActionReconcile = "Reconcile"

// finalizer removes the gateway's ClusterRoleBinding before the Gateway goes (cluster
// mode).
const finalizer = "wasmbed.dev/gateway-rbac"

// specHashAnnotation records the hash of the spec last written, so that a change of
// the desired spec is seen even where the apiserver's defaults hide it (a removed
// argument, a shorter list).
const specHashAnnotation = "wasmbed.dev/spec-hash"

// Reconciler reconciles Gateways.
type Reconciler struct {
	client   client.Client
	reader   client.Reader
	scheme   *runtime.Scheme
	recorder events.EventRecorder
	opts     Options
}

// notOwnedError is returned when an object the gateway needs belongs to another owner.
type notOwnedError struct{ kind, name string }

func (e *notOwnedError) Error() string {
	return fmt.Sprintf("%s %s exists and is not owned by this Gateway: delete or rename it", e.kind, e.name)
}

// Reconcile brings one Gateway's objects and status up to date.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, err error) {
	var gw v1.Gateway
	if err := r.client.Get(ctx, req.NamespacedName, &gw); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if gw.DeletionTimestamp != nil {
		return ctrl.Result{}, r.finalize(ctx, &gw)
	}
	if r.opts.Mode == ModeCluster && !controllerutil.ContainsFinalizer(&gw, finalizer) {
		base := gw.DeepCopy()
		controllerutil.AddFinalizer(&gw, finalizer)
		if err := r.client.Patch(ctx, &gw, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
			return ctrl.Result{}, fmt.Errorf("add finalizer to gateway %s: %w", gw.Ref(), err)
		}
	}

	orig := gw.DeepCopy()
	defer func() {
		if equality.Semantic.DeepEqual(orig.Status, gw.Status) {
			return
		}
		perr := r.client.Status().Patch(ctx, &gw, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
		if apierrors.IsConflict(perr) {
			res, perr = ctrl.Result{Requeue: true}, nil
		} else if perr != nil {
			perr = fmt.Errorf("patch status of gateway %s: %w", gw.Ref(), perr)
		}
		err = errors.Join(err, perr)
	}()

	n, err := r.countConnected(ctx, &gw)
	if err != nil {
		return ctrl.Result{}, err
	}
	gw.Status.ConnectedDevices = n

	endpoint, why := r.opts.Endpoint, ""
	if r.opts.Mode == ModeCluster {
		endpoint, why, err = r.reconcileCluster(ctx, &gw)
		var notOwned *notOwnedError
		switch {
		case errors.As(err, &notOwned):
			why, err = err.Error(), nil
			r.recorder.Eventf(&gw, nil, corev1.EventTypeWarning, ReasonNotOwned, ActionReconcile, "%s", why)
		case err != nil:
			gw.Status.MarkUnavailable(gw.Generation, err.Error())
			r.recorder.Eventf(&gw, nil, corev1.EventTypeWarning, ReasonReconcileFailed, ActionReconcile, "%s", err)
			return ctrl.Result{}, err
		}
	}
	if why != "" {
		gw.Status.MarkUnavailable(gw.Generation, why)
	} else {
		gw.Status.MarkAvailable(gw.Generation, endpoint)
	}
	gw.Status.ObservedGeneration = gw.Generation
	// Look again after a while even when nothing changes: connectedDevices follows
	// Device status, which is not watched.
	return ctrl.Result{RequeueAfter: r.opts.Resync}, nil
}

// countConnected counts the Devices of every namespace connected to gw, from the
// cache's index: the cost is the number of connected devices, not of all devices.
func (r *Reconciler) countConnected(ctx context.Context, gw *v1.Gateway) (int32, error) {
	var devs v1.DeviceList
	if err := r.client.List(ctx, &devs, client.MatchingFields{connectedIndex: gw.Ref().String()}, client.UnsafeDisableDeepCopy); err != nil {
		return 0, fmt.Errorf("count devices of gateway %s: %w", gw.Ref().String(), err)
	}
	return int32(len(devs.Items)), nil
}

// finalize removes what the Gateway cannot own (its ClusterRoleBinding and its
// EventPolicy in the broker's namespace), then its finalizer.
func (r *Reconciler) finalize(ctx context.Context, gw *v1.Gateway) error {
	if !controllerutil.ContainsFinalizer(gw, finalizer) {
		return nil
	}
	var crb rbacv1.ClusterRoleBinding
	err := r.reader.Get(ctx, client.ObjectKey{Name: clusterRoleBindingName(gw)}, &crb)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("get cluster role binding of gateway %s: %w", gw.Ref(), err)
	case boundTo(&crb, gw):
		if err := r.client.Delete(ctx, &crb, client.Preconditions{UID: &crb.UID}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete cluster role binding of gateway %s: %w", gw.Ref(), err)
		}
	}
	if err := r.deleteEventPolicy(ctx, gw); err != nil {
		return err
	}
	base := gw.DeepCopy()
	controllerutil.RemoveFinalizer(gw, finalizer)
	if err := r.client.Patch(ctx, gw, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("remove finalizer of gateway %s: %w", gw.Ref(), err)
	}
	return nil
}

// boundTo reports whether crb was made for gw (its labels say so).
func boundTo(crb *rbacv1.ClusterRoleBinding, gw *v1.Gateway) bool {
	return crb.Labels[LabelGateway] == gw.Name && crb.Labels[LabelGatewayNamespace] == gw.Namespace
}

// applyClusterRoleBinding creates or corrects the binding of the gateway's
// ServiceAccount to the ClusterRole. It reads with the API reader: the operator has
// no business caching every binding of the cluster.
func (r *Reconciler) applyClusterRoleBinding(ctx context.Context, gw *v1.Gateway) error {
	want := r.clusterRoleBinding(gw)
	var got rbacv1.ClusterRoleBinding
	err := r.reader.Get(ctx, client.ObjectKey{Name: want.Name}, &got)
	switch {
	case apierrors.IsNotFound(err):
		if err := r.client.Create(ctx, want); err != nil {
			return fmt.Errorf("create cluster role binding %s: %w", want.Name, err)
		}
		log.FromContext(ctx).Info("applied gateway object", "kind", "ClusterRoleBinding", "name", want.Name, "operation", "created")
		return nil
	case err != nil:
		return fmt.Errorf("get cluster role binding %s: %w", want.Name, err)
	case !boundTo(&got, gw):
		return &notOwnedError{kind: "ClusterRoleBinding", name: want.Name}
	case got.RoleRef != want.RoleRef:
		// The role of a binding cannot change: replace the binding.
		if err := r.client.Delete(ctx, &got, client.Preconditions{UID: &got.UID}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("replace cluster role binding %s: %w", want.Name, err)
		}
		return r.applyClusterRoleBinding(ctx, gw)
	case !equality.Semantic.DeepEqual(got.Subjects, want.Subjects) || !maps.Equal(got.Labels, want.Labels):
		got.Subjects, got.Labels = want.Subjects, want.Labels
		if err := r.client.Update(ctx, &got); err != nil {
			return fmt.Errorf("update cluster role binding %s: %w", want.Name, err)
		}
	}
	return nil
}

// reconcileCluster applies the ServiceAccount and its binding, the Deployment, the two
// Services and the Trigger, and returns the endpoint devices connect to, or why the
// gateway is not available.
func (r *Reconciler) reconcileCluster(ctx context.Context, gw *v1.Gateway) (endpoint, why string, err error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: gw.Namespace, Name: serviceAccountName(gw)}}
	if err := r.apply(ctx, gw, sa, "ServiceAccount", func() {}); err != nil {
		return "", "", err
	}
	if err := r.applyClusterRoleBinding(ctx, gw); err != nil {
		return "", "", err
	}
	if err := r.applyEventPolicy(ctx, gw); err != nil {
		return "", "", err
	}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: gw.Namespace, Name: gw.Name}}
	desired := r.deploymentSpec(gw)
	if err := r.apply(ctx, gw, dep, "Deployment", func() {
		dep.Spec.Replicas = desired.Replicas
		if dep.Spec.Selector == nil {
			dep.Spec.Selector = desired.Selector
		}
		if changed(dep, desired.Template, !equality.Semantic.DeepDerivative(desired.Template, dep.Spec.Template)) {
			dep.Spec.Template = desired.Template
		}
	}); err != nil {
		return "", "", err
	}

	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: gw.Namespace, Name: gw.Name}}
	typ := gw.Spec.ServiceType
	if typ == "" {
		typ = corev1.ServiceTypeLoadBalancer
	}
	if err := r.apply(ctx, gw, svc, "Service", func() { setService(svc, typ, selector(gw), deviceServicePorts(gw)) }); err != nil {
		return "", "", err
	}
	httpSvc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: gw.Namespace, Name: httpServiceName(gw)}}
	if err := r.apply(ctx, gw, httpSvc, "Service", func() {
		setService(httpSvc, corev1.ServiceTypeClusterIP, selector(gw), httpServicePorts())
	}); err != nil {
		return "", "", err
	}

	trig := &eventingv1.Trigger{ObjectMeta: metav1.ObjectMeta{Namespace: gw.Namespace, Name: gw.Name}}
	spec := r.triggerSpec(gw)
	if err := r.apply(ctx, gw, trig, "Trigger", func() {
		if changed(trig, spec, !equality.Semantic.DeepDerivative(spec, trig.Spec)) {
			trig.Spec = spec
		}
	}); err != nil {
		return "", "", err
	}

	if gw.Spec.Replicas == 0 {
		return "", "spec.replicas is 0", nil
	}
	if dep.Status.AvailableReplicas == 0 {
		return "", fmt.Sprintf("Deployment %s has no available replica yet", dep.Name), nil
	}
	return r.endpoint(ctx, svc)
}

// changed reports whether obj must get the desired spec: when the hash of desired is
// not the one recorded on obj, or drifted says the live spec differs from it. It
// records the new hash.
func changed(obj client.Object, desired any, drifted bool) bool {
	b, _ := json.Marshal(desired)
	sum := sha256.Sum256(b)
	hash := hex.EncodeToString(sum[:8])
	ann := obj.GetAnnotations()
	if ann[specHashAnnotation] == hash && !drifted {
		return false
	}
	if ann == nil {
		ann = map[string]string{}
	}
	ann[specHashAnnotation] = hash
	obj.SetAnnotations(ann)
	return true
}

// setService sets a Service's type, selector and ports, keeping the node ports the
// apiserver allocated so that an unchanged Service is not updated.
func setService(svc *corev1.Service, typ corev1.ServiceType, sel map[string]string, ports []corev1.ServicePort) {
	svc.Spec.Type = typ
	svc.Spec.Selector = sel
	if typ != corev1.ServiceTypeClusterIP {
		for i := range ports {
			for _, old := range svc.Spec.Ports {
				if old.Name == ports[i].Name && old.Port == ports[i].Port {
					ports[i].NodePort = old.NodePort
				}
			}
		}
	}
	if !equality.Semantic.DeepEqual(svc.Spec.Ports, ports) {
		svc.Spec.Ports = ports
	}
}

// apply creates or updates obj, owned by gw, after mutate sets its spec. An existing
// object with another controller is left alone.
func (r *Reconciler) apply(ctx context.Context, gw *v1.Gateway, obj client.Object, kind string, mutate func()) error {
	op, err := controllerutil.CreateOrUpdate(ctx, r.client, obj, func() error {
		if obj.GetUID() != "" && !metav1.IsControlledBy(obj, gw) {
			return &notOwnedError{kind: kind, name: obj.GetName()}
		}
		l := obj.GetLabels()
		if l == nil {
			l = map[string]string{}
		}
		maps.Copy(l, labels(gw))
		obj.SetLabels(l)
		mutate()
		return controllerutil.SetControllerReference(gw, obj, r.scheme)
	})
	if apierrors.IsAlreadyExists(err) {
		// The cache holds only objects labelled as ours (CacheByObject): one it did not
		// show is someone else's.
		foreign := obj.DeepCopyObject().(client.Object)
		if gerr := r.reader.Get(ctx, client.ObjectKeyFromObject(obj), foreign); gerr == nil && !metav1.IsControlledBy(foreign, gw) {
			return &notOwnedError{kind: kind, name: obj.GetName()}
		}
	}
	if err != nil {
		var notOwned *notOwnedError
		if errors.As(err, &notOwned) {
			return notOwned
		}
		return fmt.Errorf("apply %s %s/%s: %w", kind, obj.GetNamespace(), obj.GetName(), err)
	}
	if op != controllerutil.OperationResultNone {
		log.FromContext(ctx).Info("applied gateway object", "kind", kind, "name", obj.GetName(), "operation", op)
	}
	return nil
}

// endpoint returns the host:port devices reach the gateway at through svc, or why it
// is not known yet.
func (r *Reconciler) endpoint(ctx context.Context, svc *corev1.Service) (endpoint, why string, err error) {
	var port corev1.ServicePort
	for _, p := range svc.Spec.Ports {
		if p.Name == portNameDevices {
			port = p
		}
	}
	switch svc.Spec.Type {
	case corev1.ServiceTypeLoadBalancer:
		for _, in := range svc.Status.LoadBalancer.Ingress {
			host := in.IP
			if host == "" {
				host = in.Hostname
			}
			if host != "" {
				return net.JoinHostPort(host, strconv.Itoa(int(port.Port))), "", nil
			}
		}
		return "", fmt.Sprintf("waiting for the LoadBalancer Service %s to get an address", svc.Name), nil
	case corev1.ServiceTypeNodePort:
		if port.NodePort == 0 {
			return "", fmt.Sprintf("Service %s has no node port yet", svc.Name), nil
		}
		host, err := r.nodeAddress(ctx)
		if err != nil {
			return "", "", err
		}
		if host == "" {
			return "", fmt.Sprintf("no node address is known for node port %d", port.NodePort), nil
		}
		return net.JoinHostPort(host, strconv.Itoa(int(port.NodePort))), "", nil
	default:
		if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
			return "", fmt.Sprintf("Service %s has no cluster IP yet", svc.Name), nil
		}
		return net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(port.Port))), "", nil
	}
}

// nodeAddress returns an address of a node for a NodePort endpoint: an external IP
// when a node has one, else an internal IP. Nodes are read directly, a few at most,
// rather than cached: only NodePort gateways need them.
func (r *Reconciler) nodeAddress(ctx context.Context) (string, error) {
	var nodes corev1.NodeList
	if err := r.reader.List(ctx, &nodes, client.Limit(20)); err != nil {
		return "", fmt.Errorf("list nodes: %w", err)
	}
	internal := ""
	for _, n := range nodes.Items {
		for _, a := range n.Status.Addresses {
			switch {
			case a.Type == corev1.NodeExternalIP && a.Address != "":
				return a.Address, nil
			case a.Type == corev1.NodeInternalIP && internal == "":
				internal = a.Address
			}
		}
	}
	return internal, nil
}
