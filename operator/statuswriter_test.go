package operator_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/operator/receiver"
)

// TestStatusWriter: the changes queued for a Device are written together, in order;
// writes are paced; stopping drains the queue; a Device that is gone is skipped.
func TestStatusWriter(t *testing.T) {
	h := start(t)
	h.devices(6, "virtual")
	key := func(i int) types.NamespacedName {
		return types.NamespacedName{Namespace: h.ns, Name: fmt.Sprintf("dev-%02d", i)}
	}
	firmware := func(v string) func(*v1.Device) { return func(d *v1.Device) { d.Status.FirmwareVersion = v } }

	const qps = 4
	w := receiver.NewStatusWriter(env.Client, env.Client, qps, nil)
	for _, v := range []string{"1.0", "1.1", "1.2"} {
		w.Enqueue(key(0), firmware(v))
	}
	for i := 1; i < 5; i++ {
		w.Enqueue(key(i), firmware(fmt.Sprintf("2.%d", i)))
	}
	w.Enqueue(types.NamespacedName{Namespace: h.ns, Name: "no-such-device"}, firmware("x"))
	if w.Pending() != 6 {
		t.Fatalf("pending %d, want 6", w.Pending())
	}
	ctx, cancel := context.WithCancel(context.Background())
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx, 4, 30*time.Second)
	}()
	cancel() // stopping at once still writes what was queued
	<-done
	elapsed := time.Since(start)
	if w.Pending() != 0 || w.Writes() != 5 {
		t.Errorf("pending %d writes %d, want 0 and 5 (one per existing device)", w.Pending(), w.Writes())
	}
	// Six writes (the missing device takes a token too) at 4 per second, burst 1.
	if min := 5 * time.Second / qps; elapsed < min*9/10 {
		t.Errorf("6 writes in %v at %d per second", elapsed, qps)
	}
	for i, want := range []string{"1.2", "2.1", "2.2", "2.3", "2.4", ""} {
		var d v1.Device
		if err := env.Client.Get(h.ctx, client.ObjectKey(key(i)), &d); err != nil {
			t.Fatal(err)
		}
		if d.Status.FirmwareVersion != want {
			t.Errorf("%s: firmware %q, want %q", d.Name, d.Status.FirmwareVersion, want)
		}
	}
}
