package console

import (
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestSlowClientIsDroppedWithoutBlockingTheOthers(t *testing.T) {
	dropped := prometheus.NewCounter(prometheus.CounterOpts{Name: "d"})
	h := newHub(dropped)
	slow, fast := newStreamClient(2), newStreamClient(100)
	h.add(slow)
	h.add(fast)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 50; i++ {
			h.publish(message{event: "x"})
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("publish blocked on a client that does not read")
	}
	select {
	case <-slow.gone:
	default:
		t.Fatal("the slow client was not dropped")
	}
	if slow.reason == "" || h.count() != 1 || testutil.ToFloat64(dropped) != 1 {
		t.Fatalf("reason %q, %d clients, %v dropped", slow.reason, h.count(), testutil.ToFloat64(dropped))
	}
	if len(fast.ch) != 50 {
		t.Fatalf("fast client got %d of 50", len(fast.ch))
	}
}

// TestHubHammer publishes, adds, removes and closes concurrently (run with -race).
func TestHubHammer(t *testing.T) {
	h := newHub(prometheus.NewCounter(prometheus.CounterOpts{Name: "d"}))
	var wg sync.WaitGroup
	for p := 0; p < 4; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				h.publish(message{event: "x"})
			}
		}()
	}
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				c := newStreamClient(8)
				if !h.add(c) {
					return
				}
				for j := 0; j < 4; j++ {
					select {
					case <-c.ch:
					case <-c.gone:
					}
				}
				h.remove(c)
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	h.close()
	wg.Wait()
	if h.add(newStreamClient(1)) || h.count() != 0 {
		t.Fatal("a closed hub accepts clients")
	}
}
