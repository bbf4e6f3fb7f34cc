// Package application is the Application reconciler: on a new generation it sends
// dev.wasmbed.build.requested into the pipeline, and while a module rolls out it counts
// what the devices report, advances Canary steps, and stops and rolls back on failures.
// The pipeline's results reach status through the operator's event receiver.
package application

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	k8sevents "k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/wasmbed/wasmbed/api/events"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/tracing"
	"github.com/wasmbed/wasmbed/operator/receiver"
	"github.com/wasmbed/wasmbed/operator/steps"
)

// Sender delivers events to the broker.
type Sender interface {
	Send(ctx context.Context, e cloudevents.Event) error
}

// Options configure the reconciler.
type Options struct {
	// Sender sends build and rollout requests to the broker.
	Sender Sender
	// Resync is how often an Application in the middle of a rollout is looked at even
	// when nothing changed (default 30 s).
	Resync time.Duration
	// Now returns the current time (tests set it).
	Now func() time.Time
	// Steps, in a cluster, makes the reconciler run spec.steps as a Knative Sequence per
	// Application fed by a Trigger; nil when the steps run in-process (embedded).
	Steps *steps.ClusterOptions
}

// Actions (events.k8s.io "action") of the Application controller's Events.
const (
	// ActionBuild requests a build; ActionSend sends a pipeline event.
	ActionBuild = "Build"
	ActionSend  = "Send"
	// ActionRollout moves a rollout on (a step, retries, a stop, a rollback).
	ActionRollout = "Rollout"
	// ActionApprove takes a user's approval of a step.
	ActionApprove = "Approve"
	// ActionRemove removes the Application from its devices.
	ActionRemove = "Remove"
	// ActionApplySteps applies the Knative Sequence of spec.steps.
	ActionApplySteps = "ApplySteps"
)

// Reconciler reconciles Applications.
type Reconciler struct {
	client client.Client
	// live reads from the apiserver, not the cache: ConfigMaps (caching them would
	// watch every ConfigMap of the cluster), and the latest status a rollout policy
	// decides on before it starts devices.
	live     client.Reader
	recorder k8sevents.EventRecorder
	opts     Options
	// requested remembers the generation whose build was last requested per
	// Application, so a reconcile that reads a cache not yet showing its own status
	// write does not request the same build twice. It is an optimisation only: after a
	// restart one duplicate request is possible, and the pipeline tolerates it.
	requested sync.Map // types.UID -> int64
	// traces holds, per Application, the trace of its current generation's change
	// (changeTrace): every event sent for that generation belongs to it.
	traces sync.Map // types.UID -> changeTrace
	// removing remembers when the removal of a deleted Application was last requested,
	// so the stream of Device updates its removal causes does not request it again on
	// every reconcile.
	removing sync.Map // types.NamespacedName -> removal
	// joined remembers, per Application rolled back, when which joining devices were
	// sent its good module.
	joined sync.Map // types.UID -> *joinedDevices
}

// removal is one requested removal: the object's uid and when it was requested.
type removal struct {
	uid types.UID
	at  time.Time
}

// +kubebuilder:rbac:groups=wasmbed.dev,resources=applications,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=wasmbed.dev,resources=applications/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=wasmbed.dev,resources=applications/finalizers,verbs=update
// +kubebuilder:rbac:groups=wasmbed.dev,resources=devices,verbs=get;list;watch
// +kubebuilder:rbac:groups=wasmbed.dev,resources=devices/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=flows.knative.dev,resources=sequences,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=eventing.knative.dev,resources=triggers,verbs=get;list;watch;create;update;patch;delete

// SetupWithManager registers the reconciler. It watches Applications and the Devices
// they select, so a device's report moves its Applications' rollouts.
func SetupWithManager(mgr ctrl.Manager, opts Options) error {
	if opts.Sender == nil {
		return errors.New("application controller: a Sender is required")
	}
	if opts.Resync <= 0 {
		opts.Resync = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Reconciler{client: mgr.GetClient(), live: mgr.GetAPIReader(), recorder: mgr.GetEventRecorder("wasmbed-application"), opts: opts}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1.Application{}).
		Watches(&v1.Device{}, r.deviceEvents()).
		Named("application").
		Complete(r)
}

// statusDelay is how long a change of a Device's status waits before the Applications
// that select the device are reconciled: a fleet's rollout writes thousands of them, and
// those of one interval cost one reconcile. Rollouts count from the gateways' reports
// (status.gatewayReports), which are not delayed.
const statusDelay = time.Second

// deviceEvents maps Device events to the Applications that select the device: at once
// for a Device added, removed, relabelled or changed in spec, after statusDelay for a
// change of its status alone.
func (r *Reconciler) deviceEvents() handler.EventHandler {
	enqueue := func(ctx context.Context, obj client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request], after time.Duration) {
		for _, req := range r.applicationsOf(ctx, obj) {
			if after > 0 {
				q.AddAfter(req, after)
			} else {
				q.Add(req)
			}
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.Object, q, 0)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			prev, cur := e.ObjectOld, e.ObjectNew
			if prev.GetGeneration() != cur.GetGeneration() || !maps.Equal(prev.GetLabels(), cur.GetLabels()) ||
				(prev.GetDeletionTimestamp() == nil) != (cur.GetDeletionTimestamp() == nil) {
				enqueue(ctx, prev, q, 0) // an Application that no longer selects it
				enqueue(ctx, cur, q, 0)
				return
			}
			enqueue(ctx, cur, q, statusDelay)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.Object, q, 0)
		},
		GenericFunc: func(ctx context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.Object, q, 0)
		},
	}
}

// applicationsOf maps a Device to the Applications of its namespace that select it.
func (r *Reconciler) applicationsOf(ctx context.Context, obj client.Object) []reconcile.Request {
	var apps v1.ApplicationList
	if err := r.client.List(ctx, &apps, client.InNamespace(obj.GetNamespace())); err != nil {
		log.FromContext(ctx).Error(err, "list applications for a device", "device", obj.GetName())
		return nil
	}
	var out []reconcile.Request
	for _, a := range apps.Items {
		sel, err := metav1LabelSelector(&a)
		if err != nil || !sel.Matches(labels.Set(obj.GetLabels())) {
			continue
		}
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: a.Namespace, Name: a.Name}})
	}
	return out
}

// Reconcile moves one Application towards its spec.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, err error) {
	var app v1.Application
	if err := r.client.Get(ctx, req.NamespacedName, &app); err != nil {
		if apierrors.IsNotFound(err) {
			r.removing.Delete(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if app.DeletionTimestamp != nil {
		// Until the receiver sees the removal dispatched and drops the finalizer, ask again
		// now and then: the request or its confirmation may have been lost.
		return ctrl.Result{RequeueAfter: 30 * time.Second}, r.finalize(ctx, &app)
	}
	if controllerutil.AddFinalizer(&app, receiver.Finalizer) {
		if err := r.client.Update(ctx, &app); err != nil {
			return ctrl.Result{}, fmt.Errorf("add finalizer: %w", err)
		}
	}

	if err := r.consumeApproval(ctx, &app); err != nil {
		return ctrl.Result{}, err
	}

	orig := app.DeepCopy()
	// The status patch always runs, with optimistic locking so that an event applied by
	// the receiver meanwhile is never overwritten: a conflict just reconciles again.
	defer func() {
		if equality.Semantic.DeepEqual(orig.Status, app.Status) {
			return
		}
		perr := r.client.Status().Patch(ctx, &app, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
		if apierrors.IsConflict(perr) {
			res, perr = ctrl.Result{RequeueAfter: 100 * time.Millisecond}, nil
		}
		err = errors.Join(err, perr)
	}()

	for _, phase := range []func(context.Context, *v1.Application) (ctrl.Result, error){
		r.reconcileSteps,
		r.reconcileBuild,
		r.reconcileRollout,
	} {
		res, err = phase(ctx, &app)
		if err != nil || !res.IsZero() {
			return res, err
		}
	}
	return res, nil
}

func (r *Reconciler) send(ctx context.Context, app *v1.Application, t events.Type, data events.Payload) error {
	ctx = r.changeContext(ctx, app)
	e, err := events.New(t, events.SourceOperator, ref(app).Subject(), data)
	if err != nil {
		return err
	}
	if err := r.opts.Sender.Send(ctx, e); err != nil {
		r.recorder.Eventf(app, nil, corev1.EventTypeWarning, v1.ReasonPipelineError, ActionSend, "send %s: %v", t, err)
		return fmt.Errorf("send %s for %s/%s: %w", t, app.Namespace, app.Name, err)
	}
	return nil
}

// changeTrace is the trace of one generation of an Application.
type changeTrace struct {
	generation  int64
	traceparent string
}

// tracer makes the operator's spans.
var tracer = tracing.New("operator")

// changeContext returns ctx in the trace of app's current generation: the first event
// of a generation starts it (a span "operator change"), the later ones (rollout steps,
// a rollback, the removal) continue it, so that one change of an Application is one
// trace across the pipeline and the devices.
func (r *Reconciler) changeContext(ctx context.Context, app *v1.Application) context.Context {
	if v, ok := r.traces.Load(app.UID); ok && v.(changeTrace).generation == app.Generation {
		return tracing.FromTraceParent(ctx, v.(changeTrace).traceparent)
	}
	ctx, span := tracer.Start(ctx, "change", attribute.String("wasmbed.application", app.Namespace+"/"+app.Name),
		attribute.String("wasmbed.uid", string(app.UID)), attribute.Int64("wasmbed.generation", app.Generation))
	defer span.End()
	r.traces.Store(app.UID, changeTrace{generation: app.Generation, traceparent: tracing.TraceParent(ctx)})
	return ctx
}

func ref(app *v1.Application) events.AppRef {
	return events.AppRef{Namespace: app.Namespace, Name: app.Name, Generation: app.Generation, UID: string(app.UID)}
}
