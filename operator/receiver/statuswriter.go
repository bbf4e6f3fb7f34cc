package receiver

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
)

// DefaultStatusQPS is how many Device status writes per second a StatusWriter makes at
// most: about half a core of a kube-apiserver on these machines (docs/performance.md).
const DefaultStatusQPS = 100

// StatusWriter writes Device statuses off the event path. The changes queued for one
// Device are applied in their order and written together, so a device that reports
// three times while its write waits costs one write; writes are paced at QPS per second
// so that a fleet's reports never flood the apiserver. Rollouts do not wait for these
// writes: they count from the gateways' summaries (RATIONALE.md, "Where a device's
// application state lives"). What is queued when the process dies is lost; the Device
// keeps its previous state until its next report.
type StatusWriter struct {
	client  client.Client
	reader  client.Reader
	limiter *rate.Limiter
	log     *slog.Logger
	queue   workqueue.TypedRateLimitingInterface[types.NamespacedName]

	mu      sync.Mutex
	pending map[types.NamespacedName][]func(*v1.Device)
	idle    *sync.Cond // signalled when pending empties
	writes  int64
}

// NewStatusWriter returns a writer that reads Devices from c (a cache) and, after a
// conflict, from reader (the apiserver), and writes through c at most qps per second.
func NewStatusWriter(c client.Client, reader client.Reader, qps float64, log *slog.Logger) *StatusWriter {
	if qps <= 0 {
		qps = DefaultStatusQPS
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &StatusWriter{
		client: c, reader: reader, log: log,
		limiter: rate.NewLimiter(rate.Limit(qps), max(1, int(qps/10))),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[types.NamespacedName](100*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[types.NamespacedName]{Name: "device-status"}),
		pending: map[types.NamespacedName][]func(*v1.Device){},
	}
	w.idle = sync.NewCond(&w.mu)
	return w
}

// Enqueue queues a change of one Device's status.
func (w *StatusWriter) Enqueue(key types.NamespacedName, mutate func(*v1.Device)) {
	w.mu.Lock()
	w.pending[key] = append(w.pending[key], mutate)
	w.mu.Unlock()
	w.queue.Add(key)
}

// Pending returns how many Devices have changes not written yet.
func (w *StatusWriter) Pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}

// Writes returns how many Device statuses it wrote.
func (w *StatusWriter) Writes() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writes
}

// Run writes with workers goroutines until ctx ends, then for up to drain more to write
// what is queued, and returns once its workers have stopped.
func (w *StatusWriter) Run(ctx context.Context, workers int, drain time.Duration) {
	var wg sync.WaitGroup
	for range max(1, workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for w.next() {
			}
		}()
	}
	<-ctx.Done()
	done := make(chan struct{})
	go func() {
		w.mu.Lock()
		for len(w.pending) > 0 {
			w.idle.Wait()
		}
		w.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(drain):
		w.log.Warn("device status writes dropped at shutdown", "devices", w.Pending())
	}
	w.queue.ShutDown()
	wg.Wait()
	w.mu.Lock()
	clear(w.pending)
	w.idle.Broadcast() // release the drain waiter if it is still there
	w.mu.Unlock()
}

// next writes one Device's queued changes; false once the queue is shut down.
func (w *StatusWriter) next() bool {
	key, shutdown := w.queue.Get()
	if shutdown {
		return false
	}
	defer w.queue.Done(key)
	w.mu.Lock()
	changes := w.pending[key]
	w.mu.Unlock()
	if len(changes) == 0 {
		return true
	}
	if err := w.limiter.Wait(context.Background()); err != nil {
		w.queue.AddRateLimited(key)
		return true
	}
	err := w.write(key, changes)
	w.mu.Lock()
	if err != nil {
		w.mu.Unlock()
		w.log.Warn("device status write failed; retrying", "device", key.String(), "err", err)
		w.queue.AddRateLimited(key)
		return true
	}
	// Changes queued while this write ran stay for the next one.
	rest := w.pending[key][len(changes):]
	if len(rest) == 0 {
		delete(w.pending, key)
		if len(w.pending) == 0 {
			w.idle.Broadcast()
		}
	} else {
		w.pending[key] = rest
	}
	w.mu.Unlock()
	w.queue.Forget(key)
	return true
}

// write applies changes to the Device and writes its status if it changed.
func (w *StatusWriter) write(key types.NamespacedName, changes []func(*v1.Device)) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rd := client.Reader(w.client)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var dev v1.Device
		err := rd.Get(ctx, key, &dev)
		rd = w.reader
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("get device %s: %w", key, err)
		}
		before := dev.Status.DeepCopy()
		for _, c := range changes {
			c(&dev)
		}
		if equality.Semantic.DeepEqual(before, &dev.Status) {
			return nil
		}
		if err := w.client.Status().Update(ctx, &dev); err != nil {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("update device %s status: %w", key, err)
		}
		w.mu.Lock()
		w.writes++
		w.mu.Unlock()
		return nil
	})
}
