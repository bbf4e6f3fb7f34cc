// Package scale_test measures the embedded platform at fleet scale: the time from
// changing an Application to every one of SCALE_DEVICES virtual devices (default 1,000)
// running its module, with the devices on SCALE_GATEWAYS gateways (default 1 up to
// 1,000 devices, 2 above) and in processes of their own.
package scale_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/gateway"
	"github.com/wasmbed/wasmbed/internal/testenv"
	"github.com/wasmbed/wasmbed/platform"
)

// Bounds of the run: it fails with what it saw rather than hang.
const (
	// devicesPerProcess bounds a child fleet, far below the 20,000 descriptors a
	// process may hold.
	devicesPerProcess = 5000
	// changeTimeout bounds one change's rollout to every device.
	changeTimeout = 10 * time.Minute
	// setupTimeout bounds each setup step (connecting, the first rollout).
	setupTimeout = 15 * time.Minute
)

// run is the platform, its control plane and its device fleets, shared by every call
// of the benchmark function and stopped by TestMain.
type run struct {
	env      *testenv.Env
	plat     *platform.Platform
	dir      string
	fleets   []*fleetProc
	devices  int
	gateways int
}

var (
	once   sync.Once
	shared *run
	setErr error
)

func TestMain(m *testing.M) {
	if os.Getenv(fleetEnv) != "" {
		os.Exit(runFleetChild())
	}
	code := m.Run()
	if shared != nil {
		shared.stop()
	}
	os.Exit(code)
}

func (r *run) stop() {
	for _, f := range r.fleets {
		f.stop()
	}
	if r.plat != nil {
		r.plat.Stop()
	}
	if r.env != nil {
		_ = r.env.Stop()
	}
	if r.dir != "" {
		_ = os.RemoveAll(r.dir)
	}
}

// fleetErr returns the first child fleet that exited, with its stderr.
func (r *run) fleetErr() error {
	for _, f := range r.fleets {
		if err := f.exited(); err != nil {
			return err
		}
	}
	return nil
}

func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}

// setup starts the platform with no devices of its own, creates the Device objects and
// starts the child fleets, device sim-i on gateway i*gateways/devices, then waits until
// every device is connected and its Device names its gateway (dispatch routes by it).
func setup(b *testing.B, devices, gateways int) *run {
	once.Do(func() {
		shared = &run{devices: devices, gateways: gateways}
		setErr = shared.start(devices, gateways, b.Logf)
	})
	if setErr != nil {
		b.Fatal(setErr)
	}
	if shared.devices != devices || shared.gateways != gateways {
		b.Fatalf("the run has %d devices on %d gateways, not %d on %d", shared.devices, shared.gateways, devices, gateways)
	}
	return shared
}

func (r *run) start(devices, gateways int, logf func(string, ...any)) error {
	ctx := context.Background()
	var err error
	if r.env, err = testenv.StartEnv(); err != nil {
		return err
	}
	if r.dir, err = os.MkdirTemp("", "wasmbed-scale-"); err != nil {
		return err
	}
	if r.plat, err = platform.Start(ctx, platform.Config{
		REST: r.env.Config, Dir: r.dir, Gateways: gateways, Resync: time.Second,
		Logs: platform.NewLogs(io.Discard, slog.LevelInfo),
	}); err != nil {
		return err
	}
	c := r.plat.Client()
	t0 := time.Now()
	if err := createDevices(ctx, c, devices); err != nil {
		return err
	}
	logf("created %d Devices in %s", devices, time.Since(t0).Round(time.Millisecond))
	// Contiguous ranges, each gateway's split into processes of at most
	// devicesPerProcess.
	t0 = time.Now()
	for g := range gateways {
		lo, hi := g*devices/gateways, (g+1)*devices/gateways
		for first := lo; first < hi; first += devicesPerProcess {
			sctx, cancel := context.WithTimeout(ctx, setupTimeout)
			f, err := startFleet(sctx, fleetSpec{
				Gateway: r.plat.Addr(platform.GatewayComponent(g)), CADir: filepath.Join(r.dir, "pki"),
				Namespace: "default", DeploymentKey: r.plat.DeploymentKey(), First: first, Count: min(devicesPerProcess, hi-first),
			})
			cancel()
			if err != nil {
				return err
			}
			r.fleets = append(r.fleets, f)
		}
	}
	if err := r.wait(setupTimeout, 200*time.Millisecond, "every device connected", func() (bool, string, error) {
		n := 0
		for _, gw := range r.plat.Gateways() {
			n += gw.Sessions()
		}
		return n == devices, fmt.Sprintf("%d of %d devices connected", n, devices), nil
	}); err != nil {
		return err
	}
	logf("%d devices connected to %d gateways in %s", devices, gateways, time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	if err := r.wait(setupTimeout, 2*time.Second, "every Device names its gateway", func() (bool, string, error) {
		var list v1.DeviceList
		if err := c.List(ctx, &list, client.InNamespace("default")); err != nil {
			return false, "", err
		}
		wrong := 0
		for i := range list.Items {
			d := &list.Items[i]
			var idx int
			if _, err := fmt.Sscanf(d.Name, "sim-%d", &idx); err != nil {
				continue
			}
			if d.Status.Gateway != "wasmbed-system/"+platform.GatewayComponent(idx*gateways/devices) {
				wrong++
			}
		}
		return wrong == 0, fmt.Sprintf("%d of %d Devices do not name their gateway yet", wrong, devices), nil
	}); err != nil {
		return err
	}
	logf("every Device named its gateway %s later", time.Since(t0).Round(time.Millisecond))
	return nil
}

// gatewayProgress says, per gateway, how many deployment requests it accepted and
// how many deployments it saw succeed, from its /metrics: where a slow rollout waits.
func (r *run) gatewayProgress() string {
	var out []string
	for g := range r.gateways {
		url := "http://" + r.plat.Addr(platform.GatewayComponent(g)+"-ops") + "/metrics"
		req, err1 := metricSum(context.Background(), url, gateway.MetricDeployRequests, map[string]string{"result": "accepted"})
		ok, err2 := metricSum(context.Background(), url, gateway.MetricDeployments, map[string]string{"result": "succeeded"})
		if err := errors.Join(err1, err2); err != nil {
			out = append(out, fmt.Sprintf("%s: %v", platform.GatewayComponent(g), err))
			continue
		}
		out = append(out, fmt.Sprintf("%s: %.0f requests accepted, %.0f deployments succeeded", platform.GatewayComponent(g), req, ok))
	}
	return strings.Join(out, "; ")
}

// createDevices creates Devices sim-0 .. sim-(n-1) concurrently (setup, not measured).
func createDevices(ctx context.Context, c client.Client, n int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				d := &v1.Device{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("sim-%d", i), Namespace: "default",
						Labels: map[string]string{"wasmbed.dev/kind": "virtual"}},
					Spec: v1.DeviceSpec{Board: "virtual"},
				}
				cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				err := c.Create(cctx, d)
				cancel()
				if err != nil && !apierrors.IsAlreadyExists(err) {
					errs <- fmt.Errorf("create device %s: %w", d.Name, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return errors.Join(<-errs) // the first error, if any
}

// wait polls cond every interval until it holds, a child fleet exits or timeout
// passes; the error says what was seen last.
func (r *run) wait(timeout, interval time.Duration, what string, cond func() (bool, string, error)) error {
	start := time.Now()
	deadline, progress := start.Add(timeout), start.Add(30*time.Second)
	for {
		ok, seen, err := cond()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if ok {
			return nil
		}
		if err := r.fleetErr(); err != nil {
			return fmt.Errorf("%s: %s: %w", what, seen, err)
		}
		if err := r.plat.Err(); err != nil {
			return fmt.Errorf("%s: %s: platform: %w", what, seen, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not after %s: %s", what, timeout, seen)
		}
		// Long waits say how they go as they go (benchmark logs come at the end).
		if time.Now().After(progress) {
			fmt.Fprintf(os.Stderr, "%s waiting %s for %s: %s (CPU so far: platform %s, kube-apiserver %s, etcd %s; gateways since start: %s)\n",
				time.Now().Format(time.TimeOnly), time.Since(start).Round(time.Second), what, seen,
				selfCPU().Round(time.Second), cpuOf(childPIDs("kube-apiserver")).Round(time.Second), cpuOf(childPIDs("etcd")).Round(time.Second),
				r.gatewayProgress())
			progress = progress.Add(30 * time.Second)
		}
		time.Sleep(interval)
	}
}

// BenchmarkApplyToAllRunning creates one Application (WAT, so compile time does not
// dominate) and changes its source b.N times; each iteration is timed from the write to
// Ready with every device running the new digest. It reports p50 and p99 in seconds,
// the apiserver's writes to Devices and Applications per device and change, and the CPU
// seconds per change of the platform's process, the kube-apiserver, etcd and the device
// fleets. SCALE_DEVICES and SCALE_GATEWAYS size the run (make bench-scale: 10,000 on 2).
func BenchmarkApplyToAllRunning(b *testing.B) {
	devices := envInt(b, "SCALE_DEVICES", 1000)
	defGateways := 1
	if devices > 1000 {
		defGateways = 2
	}
	gateways := envInt(b, "SCALE_GATEWAYS", defGateways)
	r := setup(b, devices, gateways)
	c := r.plat.Client()
	ctx := context.Background()

	wat := func(i int) string {
		return fmt.Sprintf("(module (func (export \"loop\") (result i32) i32.const %d))", 1000+i)
	}
	app := &v1.Application{ObjectMeta: metav1.ObjectMeta{Name: "scale", Namespace: "default"},
		Spec: v1.ApplicationSpec{Source: v1.ApplicationSource{Inline: &v1.InlineSource{Language: v1.LanguageWAT, Code: wat(0)}}}}
	waitReady := func(gen int64, timeout time.Duration) error {
		return r.wait(timeout, 20*time.Millisecond, fmt.Sprintf("generation %d Ready on %d devices", gen, devices), func() (bool, string, error) {
			var a v1.Application
			if err := c.Get(ctx, client.ObjectKeyFromObject(app), &a); err != nil {
				return false, "", err
			}
			rd := meta.FindStatusCondition(a.Status.Conditions, v1.ConditionReady)
			seen := fmt.Sprintf("generation %d, rollout %+v, Ready %+v", a.Generation, a.Status.Rollout, rd)
			if a.Generation == gen && rd != nil && rd.ObservedGeneration == gen && rd.Status == metav1.ConditionFalse &&
				(rd.Reason == v1.ReasonRolloutFailed || rd.Reason == v1.ReasonRolledBack || rd.Reason == v1.ReasonRolloutAborted) {
				return false, "", fmt.Errorf("the rollout ended without every device: %s", seen)
			}
			if a.Generation == gen && rd != nil && rd.ObservedGeneration == gen && rd.Status == metav1.ConditionTrue {
				if a.Status.Rollout == nil || a.Status.Rollout.Succeeded != int32(devices) {
					return false, "", fmt.Errorf("Ready with not every device: %s", seen)
				}
				return true, seen, nil
			}
			return false, seen, nil
		})
	}

	// Warm-up: the first rollout creates every device's status entry. A later call of
	// the benchmark function finds the Application there.
	if err := c.Create(ctx, app); err == nil {
		t0 := time.Now()
		if err := waitReady(1, setupTimeout); err != nil {
			b.Fatal(err)
		}
		b.Logf("first rollout to %d devices: %s", devices, time.Since(t0).Round(time.Millisecond))
	} else if !apierrors.IsAlreadyExists(err) {
		b.Fatal(err)
	}
	apiPIDs, etcdPIDs := childPIDs("kube-apiserver"), childPIDs("etcd")
	if len(apiPIDs) != 1 || len(etcdPIDs) != 1 {
		b.Fatalf("found kube-apiserver %v and etcd %v among this process's children, want one each", apiPIDs, etcdPIDs)
	}
	var fleetPIDs []int
	for _, f := range r.fleets {
		fleetPIDs = append(fleetPIDs, f.cmd.Process.Pid)
	}
	writes0, conflicts0, err := apiserverWrites(ctx, r.env.Config)
	if err != nil {
		b.Fatal(err)
	}
	// The Devices' own statuses, followed by one watch: its decoding counts in the
	// platform's CPU (as much again as the operator's informer decodes).
	dw, err := watchDevices(r.env.Config, "default", app.Name)
	if err != nil {
		b.Fatal(err)
	}
	defer dw.stop()
	self0, api0, etcd0, fleet0 := selfCPU(), cpuOf(apiPIDs), cpuOf(etcdPIDs), cpuOf(fleetPIDs)

	var times, trueTimes []time.Duration
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		start := time.Now()
		var gen int64
		if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			var a v1.Application
			if err := c.Get(ctx, client.ObjectKeyFromObject(app), &a); err != nil {
				return err
			}
			// The code at generation g is wat(g-1): every change differs from the last.
			a.Spec.Source.Inline.Code = wat(int(a.Generation))
			err := c.Update(ctx, &a)
			gen = a.Generation
			return err
		}); err != nil {
			b.Fatal(err)
		}
		if err := waitReady(gen, changeTimeout); err != nil {
			b.Fatalf("change %d: %v (after it: platform CPU %s, apiserver CPU %s, etcd CPU %s)", i, err,
				(selfCPU() - self0).Round(time.Millisecond), (cpuOf(apiPIDs) - api0).Round(time.Millisecond), (cpuOf(etcdPIDs) - etcd0).Round(time.Millisecond))
		}
		times = append(times, time.Since(start))
		// Every Device's status shows the new digest Running: when did the last?
		var a v1.Application
		if err := c.Get(ctx, client.ObjectKeyFromObject(app), &a); err != nil {
			b.Fatal(err)
		}
		if a.Status.Build == nil {
			b.Fatalf("change %d: Ready without a build", i)
		}
		var last time.Time
		if err := r.wait(time.Until(start.Add(changeTimeout)), 100*time.Millisecond, "every Device's status shows "+string(a.Status.Build.Digest)+" Running", func() (bool, string, error) {
			var n int
			var err error
			last, n, err = dw.allRunning(a.Status.Build.Digest, devices)
			return n >= devices, fmt.Sprintf("%d of %d", n, devices), err
		}); err != nil {
			b.Fatalf("change %d: %v", i, err)
		}
		trueTimes = append(trueTimes, last.Sub(start))
	}
	b.StopTimer()
	changes := float64(b.N)
	writes1, conflicts1, err := apiserverWrites(ctx, r.env.Config)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric((writes1-writes0)/(changes*float64(devices)), "writes/device")
	b.ReportMetric((conflicts1-conflicts0)/(changes*float64(devices)), "conflicts/device")
	b.ReportMetric((selfCPU()-self0).Seconds()/changes, "platform-cpu-s/change")
	b.ReportMetric((cpuOf(apiPIDs)-api0).Seconds()/changes, "apiserver-cpu-s/change")
	b.ReportMetric((cpuOf(etcdPIDs)-etcd0).Seconds()/changes, "etcd-cpu-s/change")
	b.ReportMetric((cpuOf(fleetPIDs)-fleet0).Seconds()/changes, "fleets-cpu-s/change")
	pct := func(ts []time.Duration, p float64) float64 {
		ts = slices.Clone(ts)
		slices.Sort(ts)
		// Nearest rank: with few changes the p99 is the slowest, not the next.
		return ts[max(0, int(math.Ceil(p*float64(len(ts))))-1)].Seconds()
	}
	b.ReportMetric(pct(times, 0.5), "p50-s")
	b.ReportMetric(pct(times, 0.99), "p99-s")
	b.ReportMetric(pct(trueTimes, 0.5), "devices-true-p50-s")
	b.ReportMetric(pct(trueTimes, 0.99), "devices-true-p99-s")
	b.ReportMetric(float64(devices), "devices")
	b.ReportMetric(float64(gateways), "gateways")
}
