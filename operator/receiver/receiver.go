// Package receiver is the operator's CloudEvents endpoint (a Trigger subscriber): it
// turns pipeline and gateway events into Application and Device status. It writes only
// on transitions (built, validated, connected, an application's state on a device...)
// and refreshes lastSeen at a coarse interval, never per heartbeat.
package receiver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/wasmbed/wasmbed/api/digest"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/wasmbed/wasmbed/api/events"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/eventserver"
	"github.com/wasmbed/wasmbed/internal/rollout"
)

// Finalizer keeps an Application until its removal from the devices was dispatched.
const Finalizer = "wasmbed.dev/remove-from-devices"

// DefaultSeenInterval is how stale status.lastSeen may get before a device.seen event
// refreshes it.
const DefaultSeenInterval = 5 * time.Minute

// Receiver applies events to status.
type Receiver struct {
	// Client writes Applications and Devices.
	Client client.Client
	// Reader reads them; use an uncached reader so a retry after a conflict sees the
	// latest object (default Client).
	Reader client.Reader
	// SeenInterval is the lastSeen refresh interval (default DefaultSeenInterval).
	SeenInterval time.Duration
	// Now returns the current time (tests set it).
	Now func() time.Time
	// Steps runs an Application's extra pipeline steps in-process (the embedded
	// platform); nil when a Knative Sequence runs them (a cluster).
	Steps StepRunner
	// Writer, when set, writes Device statuses off the event path, coalesced and paced;
	// without it each event's Device write is done before the event is answered.
	Writer *StatusWriter
}

// StepRunner passes a module.validated event through an Application's spec.steps and
// sends the result on, marked with wasmbedsteps=done.
type StepRunner interface {
	Run(ctx context.Context, app *v1.Application, e cloudevents.Event) error
}

func (r *Receiver) reader() client.Reader {
	if r.Reader != nil {
		return r.Reader
	}
	return r.Client
}

func (r *Receiver) now() metav1.Time {
	if r.Now != nil {
		return metav1.NewTime(r.Now())
	}
	return metav1.Now()
}

// Handle applies one event. Events about objects that no longer exist, or about an
// older generation, are acknowledged and ignored.
func (r *Receiver) Handle(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	p, err := events.Decode(e)
	if err != nil {
		return nil, err
	}
	switch d := p.(type) {
	case *events.ModuleBuiltData:
		err = r.updateApp(ctx, d.Application, func(app *v1.Application) {
			app.Status.MarkBuilt(app.Generation, v1.BuildStatus{
				Digest: d.Digest, Size: d.Size, Toolchain: d.Toolchain, LogTail: d.LogTail,
				SourceHash: SourceHash(app.Spec.Source),
			})
		})
	case *events.BuildFailedData:
		err = r.updateApp(ctx, d.Application, func(app *v1.Application) {
			reason := v1.ReasonBuildFailed
			if d.Reason == "SourceNotFound" {
				reason = v1.ReasonSourceNotFound
			}
			app.Status.MarkBuildFailed(app.Generation, reason, d.Message)
		})
	case *events.ModuleValidatedData:
		done := e.Extensions()[events.ExtSteps] == events.StepsDone
		var steps *v1.Application
		err = r.updateApp(ctx, d.Application, func(app *v1.Application) {
			if built := meta.FindStatusCondition(app.Status.Conditions, v1.ConditionBuilt); built == nil ||
				built.Status != metav1.ConditionTrue || built.ObservedGeneration != app.Generation {
				// module.built has not been applied (a broker retries it, or lost it), but
				// validation proves what the build produced; module.built adds the
				// toolchain and log when it comes.
				app.Status.MarkBuilt(app.Generation, v1.BuildStatus{Digest: d.Digest, Size: d.Size, SourceHash: SourceHash(app.Spec.Source)})
			}
			app.Status.MarkValidated(app.Generation, validation(d.Digest, true, d.Report))
			if len(app.Spec.Steps) > 0 && !done {
				app.Status.MarkRunningSteps(app.Generation, len(app.Spec.Steps))
				steps = app.DeepCopy()
				return
			}
			// The dispatch function starts step 0 on this same event. Its reply may have
			// been applied first, or this event may be a redelivery: a rollout of this
			// generation and module is kept as it is.
			if ro := app.Status.Rollout; ro != nil && ro.Generation == app.Generation && ro.Digest == d.Digest {
				return
			}
			app.Status.MarkRollingOut(app.Generation, r.rolloutFor(app, d.Digest))
		})
		if err == nil && steps != nil && r.Steps != nil {
			if serr := r.Steps.Run(ctx, steps, e); serr != nil {
				err = r.updateApp(ctx, d.Application, func(app *v1.Application) {
					app.Status.MarkStepFailed(app.Generation, serr.Error())
				})
			}
		}
	case *events.ModuleRejectedData:
		err = r.updateApp(ctx, d.Application, func(app *v1.Application) {
			app.Status.MarkRejected(app.Generation, validation(d.Digest, false, d.Report))
		})
	case *events.DeploymentDispatchedData:
		if d.Remove {
			err = r.removeFinalizer(ctx, d.Application)
			break
		}
		err = r.updateApp(ctx, d.Application, func(app *v1.Application) {
			ro := app.Status.Rollout
			if d.Step == 0 && answersValidated(app, d.Digest) {
				// Dispatch answered module.validated before this receiver applied it: the
				// rollout it starts is this generation's.
				app.Status.MarkRollingOut(app.Generation, r.rolloutFor(app, d.Digest))
				ro = app.Status.Rollout
			}
			if ro == nil || ro.Digest != d.Digest || ro.Step != d.Step || rollout.Paced(app.Spec.Rollout) {
				return // a paced rollout counts the devices it started itself
			}
			n := 0
			for _, b := range d.Batches {
				n += b.Devices
			}
			ro.Dispatched = int32(n)
		})
	case *events.DeploymentResultData:
		err = r.updateDevice(ctx, d.Application.Namespace, d.Device, func(dev *v1.Device) {
			setApp(dev, d.Application.Name, report{digest: d.Digest, state: d.State, msg: d.Message, gen: d.Application.Generation,
				uid: d.Application.UID, at: e.Time(), failure: d.Failure}, r.now().Time)
		})
	case *events.DeploymentSummaryData:
		err = r.applySummary(ctx, d)
	case *events.DeviceConnectedData:
		// Written at once, not queued: dispatch routes a device by the gateway its status
		// names.
		err = r.writeDevice(ctx, d.Namespace, d.Device, func(dev *v1.Device) {
			switch sessionOf(&dev.Status, d.Gateway.String(), d.Session, d.Since, false) {
			case olderSession:
				return
			case sameSession:
				if c := meta.FindStatusCondition(dev.Status.Conditions, v1.ConditionConnected); c != nil && c.Reason == v1.ReasonSessionClosed {
					return // its end was reported first
				}
			}
			setSession(&dev.Status, d.Gateway.String(), d.Session, d.Since)
			dev.Status.MarkConnected(dev.Generation, d.Gateway.String(), r.now())
			dev.Status.FirmwareVersion = d.FirmwareVersion
			dev.Status.Capabilities = &v1.DeviceCapabilities{RAMBytes: d.RAMBytes, FlashBytes: d.FlashBytes, MaxModuleBytes: d.MaxModuleBytes, ABIVersion: d.ABIVersion}
			reported := map[string]bool{}
			for _, a := range d.Applications {
				reported[a.Name] = true
				setApp(dev, a.Name, report{digest: a.Digest, state: a.State, at: e.Time()}, r.now().Time)
			}
			// Applications the device no longer has are gone from its status too, unless
			// reported after this Hello.
			kept := dev.Status.Applications[:0]
			for _, a := range dev.Status.Applications {
				if reported[a.Name] || (a.ReportedAt != nil && a.ReportedAt.After(e.Time())) {
					kept = append(kept, a)
				}
			}
			dev.Status.Applications = kept
		})
	case *events.DeviceDisconnectedData:
		err = r.writeDevice(ctx, d.Namespace, d.Device, func(dev *v1.Device) {
			if sessionOf(&dev.Status, d.Gateway.String(), d.Session, d.Since, true) == olderSession {
				return // the device has a newer session, perhaps on another gateway
			}
			setSession(&dev.Status, d.Gateway.String(), d.Session, d.Since)
			dev.Status.MarkDisconnected(dev.Generation, r.now(), fmt.Sprintf("session closed by gateway %s: %s", d.Gateway, d.Reason))
		})
	case *events.DeviceSeenData:
		err = r.seen(ctx, d)
	case *events.DeviceTelemetryData:
		// Telemetry is for the console and user sinks; it never touches the apiserver.
	default:
		// Events the operator does not act on (requests meant for functions).
	}
	return nil, err
}

// ErrNotObserved is returned for an event about an Application's current generation
// that its controller has not recorded yet (status.observedGeneration is older): the
// event raced the controller's status write, and is answered 409 so the broker
// delivers it again instead of it being dropped.
var ErrNotObserved = errors.New("the Application's controller has not observed this generation yet")

// rolloutFor is the status of a rollout of digest that dispatch starts now at step 0.
func (r *Receiver) rolloutFor(app *v1.Application, digest digest.Digest) v1.RolloutStatus {
	now := r.now()
	return v1.RolloutStatus{
		Digest: digest, Step: 0, Steps: int32(rollout.Steps(app.Spec.Rollout)), Generation: app.Generation,
		ConfigHash: ConfigHash(app.Spec.Config), RequestedAt: &now,
	}
}

// answersValidated reports whether a step-0 dispatch of digest is dispatch's answer to
// this generation's module.validated that the receiver has not applied yet: digest is
// the generation's build, and the rollout in the status is another delivery's. A
// rollback or a re-request of a rollout kept across generations is neither.
func answersValidated(app *v1.Application, digest digest.Digest) bool {
	built := meta.FindStatusCondition(app.Status.Conditions, v1.ConditionBuilt)
	if built == nil || built.Status != metav1.ConditionTrue || built.ObservedGeneration != app.Generation ||
		app.Status.Build == nil || app.Status.Build.Digest != digest {
		return false
	}
	ro := app.Status.Rollout
	return ro == nil || (ro.Generation < app.Generation && (ro.Digest != digest || ro.ConfigHash != ConfigHash(app.Spec.Config)))
}

// updateApp applies mutate to the Application's status, with optimistic locking, if the
// event is about its current generation; events about another generation are ignored.
func (r *Receiver) updateApp(ctx context.Context, ref events.AppRef, mutate func(*v1.Application)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var app v1.Application
		err := r.reader().Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, &app)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("get application %s: %w", ref.Subject(), err)
		}
		if ref.Other(string(app.UID)) || app.Generation != ref.Generation || app.Status.ObservedGeneration > ref.Generation {
			log.FromContext(ctx).V(1).Info("stale event ignored", "application", ref.Subject(), "eventGeneration", ref.Generation, "generation", app.Generation)
			return nil
		}
		if app.Status.ObservedGeneration != ref.Generation {
			return &eventserver.StatusError{Code: http.StatusConflict,
				Err: fmt.Errorf("application %s generation %d: %w", ref.Subject(), ref.Generation, ErrNotObserved)}
		}
		mutate(&app)
		if err := r.Client.Status().Update(ctx, &app); err != nil {
			return fmt.Errorf("update application %s status: %w", ref.Subject(), err)
		}
		return nil
	})
}

// updateDevice applies mutate to a Device's status through the Writer's queue, or at
// once without a Writer.
func (r *Receiver) updateDevice(ctx context.Context, ns, name string, mutate func(*v1.Device)) error {
	if r.Writer != nil {
		r.Writer.Enqueue(types.NamespacedName{Namespace: ns, Name: name}, mutate)
		return nil
	}
	return r.writeDevice(ctx, ns, name, mutate)
}

// writeDevice applies mutate to a Device's status and writes it if it changed. The
// first read is from the cache (Client); after a conflict, from the apiserver (Reader).
func (r *Receiver) writeDevice(ctx context.Context, ns, name string, mutate func(*v1.Device)) error {
	rd := client.Reader(r.Client)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var dev v1.Device
		err := rd.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &dev)
		rd = r.reader()
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("get device %s/%s: %w", ns, name, err)
		}
		before := dev.Status.DeepCopy()
		mutate(&dev)
		if equality.Semantic.DeepEqual(before, &dev.Status) {
			return nil
		}
		if err := r.Client.Status().Update(ctx, &dev); err != nil {
			return fmt.Errorf("update device %s/%s status: %w", ns, name, err)
		}
		return nil
	})
}

// applySummary records a gateway's summary of one module of an Application in its
// status.gatewayReports, unless a newer one is there; the Application controller counts
// the rollout from them. Any generation is recorded: a rollout kept across generations
// counts devices of its own generation and later ones.
func (r *Receiver) applySummary(ctx context.Context, d *events.DeploymentSummaryData) error {
	ref := d.Application
	rd := client.Reader(r.Client)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var app v1.Application
		err := rd.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, &app)
		rd = r.reader()
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("get application %s: %w", ref.Subject(), err)
		}
		if ref.Other(string(app.UID)) || app.DeletionTimestamp != nil {
			return nil
		}
		if !setReport(&app.Status, d, r.now()) {
			return nil
		}
		if err := r.Client.Status().Update(ctx, &app); err != nil {
			return fmt.Errorf("update application %s status: %w", ref.Subject(), err)
		}
		return nil
	})
}

// seen refreshes lastSeen of the listed devices whose lastSeen is older than the
// interval: at most one write per device per interval, whatever the heartbeat rate.
func (r *Receiver) seen(ctx context.Context, d *events.DeviceSeenData) error {
	interval := r.SeenInterval
	if interval <= 0 {
		interval = DefaultSeenInterval
	}
	now := r.now()
	var errs []error
	for _, ref := range d.Devices {
		var dev v1.Device
		if err := r.reader().Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, &dev); err != nil {
			if !apierrors.IsNotFound(err) {
				errs = append(errs, err)
			}
			continue
		}
		if dev.Status.LastSeen != nil && now.Sub(dev.Status.LastSeen.Time) < interval {
			continue
		}
		base := dev.DeepCopy()
		dev.Status.LastSeen = &now
		if err := r.Client.Status().Patch(ctx, &dev, client.MergeFrom(base)); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("refresh lastSeen of %s: %w", ref, err))
		}
	}
	return errors.Join(errs...)
}

func (r *Receiver) removeFinalizer(ctx context.Context, ref events.AppRef) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var app v1.Application
		err := r.reader().Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, &app)
		if apierrors.IsNotFound(err) || (err == nil && (app.DeletionTimestamp == nil || ref.Other(string(app.UID)))) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("get application %s: %w", ref.Subject(), err)
		}
		if !controllerutil.RemoveFinalizer(&app, Finalizer) {
			return nil
		}
		if err := r.Client.Update(ctx, &app); err != nil {
			return fmt.Errorf("remove finalizer of %s: %w", ref.Subject(), err)
		}
		return nil
	})
}

func validation(digest digest.Digest, passed bool, rep events.ValidationReport) v1.ValidationStatus {
	v := v1.ValidationStatus{Digest: digest, Passed: passed}
	for i, r := range rep.Reasons {
		if i == 32 {
			break
		}
		v.Reasons = append(v.Reasons, r)
	}
	for _, b := range rep.Boards {
		v.Boards = append(v.Boards, v1.BoardFit{Board: b.Board, Fits: b.Fits, MemoryBytes: b.MemoryBytes, Message: b.Message})
	}
	return v
}
