// Package scale_test measures the embedded platform at fleet scale: the time from
// creating an Application to every one of 1,000 virtual devices running its module.
package scale_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/testenv"
	"github.com/wasmbed/wasmbed/platform"
)

var (
	once     sync.Once
	env      *testenv.Env
	plat     *platform.Platform
	startErr error
)

// TestMain stops the platform and its apiserver after the benchmarks: they start them
// once for every run of the benchmark function.
func TestMain(m *testing.M) {
	code := m.Run()
	if plat != nil {
		plat.Stop()
	}
	if env != nil {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop test apiserver:", err)
		}
	}
	os.Exit(code)
}

// fleet starts one platform with n virtual devices for the whole run (the benchmark
// function is called more than once) and waits until they are connected.
func fleet(b *testing.B, n int) *platform.Platform {
	once.Do(func() {
		var err error
		env, err = testenv.StartEnv()
		if err != nil {
			startErr = err
			return
		}
		dir, err := os.MkdirTemp("", "wasmbed-scale-")
		if err != nil {
			startErr = err
			return
		}
		plat, startErr = platform.Start(context.Background(), platform.Config{
			REST: env.Config, Dir: dir, Devices: n, Resync: time.Second,
			Logs: platform.NewLogs(io.Discard, slog.LevelInfo),
		})
		if startErr != nil {
			return
		}
		deadline := time.Now().Add(5 * time.Minute)
		for plat.Gateway().Sessions() < n {
			if time.Now().After(deadline) {
				startErr = fmt.Errorf("%d of %d devices connected", plat.Gateway().Sessions(), n)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	if startErr != nil {
		b.Fatal(startErr)
	}
	return plat
}

// BenchmarkApplyToAllRunning creates one Application (WAT, so compile time does not
// dominate) and changes its source b.N times; each iteration is timed from the write to
// Ready with every device running the new digest. It reports p50 and p99 in seconds.
func BenchmarkApplyToAllRunning(b *testing.B) {
	devices := 1000
	if s := os.Getenv("SCALE_DEVICES"); s != "" {
		fmt.Sscan(s, &devices)
	}
	p := fleet(b, devices)
	c := p.Client()

	ctx := context.Background()

	wat := func(i int) string {
		return fmt.Sprintf("(module (func (export \"loop\") (result i32) i32.const %d))", 1000+i)
	}
	app := &v1.Application{ObjectMeta: metav1.ObjectMeta{Name: "scale", Namespace: "default"},
		Spec: v1.ApplicationSpec{Source: v1.ApplicationSource{Inline: &v1.InlineSource{Language: v1.LanguageWAT, Code: wat(0)}}}}
	var times []time.Duration
	waitReady := func(gen int64) {
		deadline := time.Now().Add(5 * time.Minute)
		for {
			var a v1.Application
			if err := c.Get(ctx, client.ObjectKeyFromObject(app), &a); err != nil {
				b.Fatal(err)
			}
			r := meta.FindStatusCondition(a.Status.Conditions, v1.ConditionReady)
			if a.Generation == gen && r != nil && r.ObservedGeneration == gen && r.Status == metav1.ConditionTrue {
				if a.Status.Rollout.Succeeded != int32(devices) {
					b.Fatalf("Ready with %d of %d devices", a.Status.Rollout.Succeeded, devices)
				}
				return
			}
			if time.Now().After(deadline) {
				b.Fatalf("not Ready after 5 minutes: %+v %+v", a.Status.Rollout, r)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// Warm-up: the first rollout creates every device's status entry.
	if err := c.Create(ctx, app); err == nil {
		waitReady(1)
	} else if !apierrors.IsAlreadyExists(err) {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		start := time.Now()
		var gen int64
		if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			var a v1.Application
			if err := c.Get(ctx, client.ObjectKeyFromObject(app), &a); err != nil {
				return err
			}
			a.Spec.Source.Inline.Code = wat(i)
			err := c.Update(ctx, &a)
			gen = a.Generation
			return err
		}); err != nil {
			b.Fatal(err)
		}
		waitReady(gen)
		times = append(times, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	pct := func(p float64) float64 { return times[int(p*float64(len(times)-1))].Seconds() }
	b.ReportMetric(pct(0.5), "p50-s")
	b.ReportMetric(pct(0.99), "p99-s")
	b.ReportMetric(float64(devices), "devices")
}
