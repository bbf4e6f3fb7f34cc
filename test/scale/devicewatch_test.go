package scale_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wasmbed/wasmbed/api/digest"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/operator"
)

// deviceWatch follows the Devices of a namespace with one watch (not a list per poll,
// which at 10,000 Devices would load the apiserver it measures) and records when each
// Device's status first showed an application's digest Running.
type deviceWatch struct {
	app    string
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	running map[string]map[digest.Digest]time.Time // device -> digest -> first seen Running
	err     error                                  // why the watch ended early
}

// watchDevices starts following the Devices of namespace for application app.
func watchDevices(cfg *rest.Config, namespace, app string) (*deviceWatch, error) {
	scheme, err := operator.NewScheme()
	if err != nil {
		return nil, err
	}
	wc, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("device watch: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &deviceWatch{app: app, cancel: cancel, done: make(chan struct{}), running: map[string]map[digest.Digest]time.Time{}}
	go w.run(ctx, wc, namespace)
	return w, nil
}

func (w *deviceWatch) run(ctx context.Context, wc client.WithWatch, namespace string) {
	defer close(w.done)
	rv := ""
	for ctx.Err() == nil {
		// The apiserver ends watches after a while: resume from the last version seen.
		wi, err := wc.Watch(ctx, &v1.DeviceList{}, client.InNamespace(namespace),
			&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv}})
		if err != nil {
			if ctx.Err() == nil {
				w.fail(err)
			}
			return
		}
		for ev := range wi.ResultChan() {
			if ev.Type == watch.Error {
				w.fail(fmt.Errorf("%v", ev.Object))
				wi.Stop()
				return
			}
			d, ok := ev.Object.(*v1.Device)
			if !ok {
				continue
			}
			rv = d.ResourceVersion
			w.observe(d, time.Now())
		}
		wi.Stop()
	}
}

func (w *deviceWatch) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = fmt.Errorf("device watch: %w", err)
	}
}

func (w *deviceWatch) observe(d *v1.Device, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range d.Status.Applications {
		if a.Name != w.app || a.State != v1.AppRunning || a.Digest == "" {
			continue
		}
		m := w.running[d.Name]
		if m == nil {
			m = map[digest.Digest]time.Time{}
			w.running[d.Name] = m
		}
		if _, ok := m[a.Digest]; !ok {
			m[a.Digest] = at
		}
	}
}

// allRunning returns the time the last of devices Devices first showed dg Running, and
// how many showed it.
func (w *deviceWatch) allRunning(dg digest.Digest, devices int) (time.Time, int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var last time.Time
	n := 0
	for _, m := range w.running {
		if at, ok := m[dg]; ok {
			n++
			if at.After(last) {
				last = at
			}
		}
	}
	if n < devices {
		return time.Time{}, n, w.err
	}
	return last, n, nil
}

func (w *deviceWatch) stop() {
	w.cancel()
	<-w.done
}
