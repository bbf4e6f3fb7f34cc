// Package rollout is the rollout arithmetic shared by the dispatch function and the
// operator, so both agree on which devices an Application targets and which of them
// each step covers.
package rollout

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
)

// SelectorError is an Application whose selector cannot be parsed.
type SelectorError struct{ Err error }

func (e *SelectorError) Error() string { return "spec.selector: " + e.Err.Error() }
func (e *SelectorError) Unwrap() error { return e.Err }

// Targets lists the Devices app selects: in its own namespace only (a namespace is a
// tenant), not disabled, not being deleted, in the Application's rollout order.
func Targets(ctx context.Context, r client.Reader, app *v1.Application) ([]v1.Device, error) {
	sel, err := metav1.LabelSelectorAsSelector(&app.Spec.Selector)
	if err != nil {
		return nil, &SelectorError{Err: err}
	}
	var list v1.DeviceList
	// From a cache, the Devices are not copied (a fleet of 10,000 would be copied on
	// every reconcile): callers read them and never change them. From the apiserver
	// (dispatch), resourceVersion 0 lets its watch cache answer instead of etcd: a device
	// added a moment ago may be missed, and the operator's next request for the step
	// covers it.
	if err := r.List(ctx, &list, client.InNamespace(app.Namespace), client.MatchingLabelsSelector{Selector: sel},
		client.UnsafeDisableDeepCopy, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: "0"}}); err != nil {
		return nil, fmt.Errorf("list devices of %s/%s: %w", app.Namespace, app.Name, err)
	}
	devs := make([]v1.Device, 0, len(list.Items))
	for _, d := range list.Items {
		if !d.Spec.Disabled && d.DeletionTimestamp == nil {
			devs = append(devs, d)
		}
	}
	Sort(app.Namespace, app.Name, devs)
	return devs, nil
}

// Sort orders devices by a hash of application and device name: stable for one
// Application across steps, while different Applications pick different canaries.
// Each device is hashed once.
func Sort(namespace, app string, devs []v1.Device) {
	type keyed struct {
		key [sha256.Size]byte
		dev v1.Device
	}
	ks := make([]keyed, len(devs))
	for i := range devs {
		ks[i] = keyed{key: sha256.Sum256([]byte(namespace + "/" + app + "/" + devs[i].Name)), dev: devs[i]}
	}
	slices.SortFunc(ks, func(a, b keyed) int { return bytes.Compare(a.key[:], b.key[:]) })
	for i := range ks {
		devs[i] = ks[i].dev
	}
}

// Steps returns the number of steps of a rollout.
func Steps(spec v1.RolloutSpec) int {
	if spec.Strategy == v1.RolloutCanary && len(spec.Steps) > 0 {
		return len(spec.Steps)
	}
	return 1
}

// StepSize returns how many of n targets a rollout step covers (cumulative).
func StepSize(spec v1.RolloutSpec, step int32, n int) (int, error) {
	if step < 0 || int(step) >= Steps(spec) {
		return 0, fmt.Errorf("step %d: the rollout has %d steps", step, Steps(spec))
	}
	if spec.Strategy != v1.RolloutCanary {
		return n, nil
	}
	size := int(math.Ceil(float64(spec.Steps[step].Percent) * float64(n) / 100))
	return min(size, n), nil
}
