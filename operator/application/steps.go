package application

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	flowsv1 "knative.dev/eventing/pkg/apis/flows/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/operator/steps"
)

// reconcileSteps keeps, in a cluster, the Knative Sequence that runs spec.steps and the
// Trigger that feeds it, or removes them when the Application has no steps.
func (r *Reconciler) reconcileSteps(ctx context.Context, app *v1.Application) (ctrl.Result, error) {
	o := r.opts.Steps
	if o == nil {
		return ctrl.Result{}, nil
	}
	if len(app.Spec.Steps) == 0 {
		return ctrl.Result{}, r.deleteSteps(ctx, app)
	}
	seq, trig, err := steps.Objects(app, *o)
	if err != nil {
		return ctrl.Result{}, err
	}
	// The Sequence lives with the Application and goes with it; the Trigger sits in the
	// broker's namespace, so the finalizer deletes it.
	if err := controllerutil.SetControllerReference(app, seq, r.client.Scheme()); err != nil {
		return ctrl.Result{}, err
	}
	for _, obj := range []client.Object{seq, trig} {
		if err := r.client.Patch(ctx, obj, client.Apply, client.FieldOwner("wasmbed-operator"), client.ForceOwnership); err != nil {
			r.recorder.Eventf(app, nil, corev1.EventTypeWarning, v1.ReasonPipelineError, ActionApplySteps, "apply %s %s: %v", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), err)
			return ctrl.Result{}, fmt.Errorf("apply steps %s: %w", obj.GetName(), err)
		}
	}
	return ctrl.Result{}, nil
}

func (r *Reconciler) deleteSteps(ctx context.Context, app *v1.Application) error {
	if r.opts.Steps == nil {
		return nil
	}
	seqName, trigName := steps.Names(app)
	for _, obj := range []client.Object{
		&eventingv1.Trigger{ObjectMeta: metaName(r.opts.Steps.BrokerNamespace, trigName)},
		&flowsv1.Sequence{ObjectMeta: metaName(app.Namespace, seqName)},
	} {
		if err := r.client.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) && !isNoKind(err) {
			return fmt.Errorf("delete steps %s: %w", obj.GetName(), err)
		}
	}
	return nil
}
