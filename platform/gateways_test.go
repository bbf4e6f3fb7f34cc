package platform_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/gateway"
	"github.com/wasmbed/wasmbed/internal/pki"
	"github.com/wasmbed/wasmbed/internal/testenv"
	"github.com/wasmbed/wasmbed/platform"
)

// With two gateways, each holds the sessions of its own devices and is sent their
// deployments: one Application reaches every device through the gateway it is
// connected to.
func TestPlatformTwoGatewaysEachDeployToTheirDevices(t *testing.T) {
	env := testenv.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const devices = 4
	p, err := platform.Start(ctx, platform.Config{
		REST: env.Config, Dir: t.TempDir(), Resync: time.Second, Devices: devices, Gateways: 2,
		Logs: platform.NewLogs(io.Discard, slog.LevelInfo),
	})
	if err != nil {
		t.Fatalf("start platform: %v", err)
	}
	defer p.Stop()
	gws := p.Gateways()
	if len(gws) != 2 || gws[0] != p.Gateway() {
		t.Fatalf("Gateways() = %d servers, the first not Gateway()", len(gws))
	}
	for _, name := range []string{"gateway", "gateway-http", "gateway-ops", "gateway-1", "gateway-1-http", "gateway-1-ops"} {
		if p.Addr(name) == "" {
			t.Fatalf("no address for %s", name)
		}
	}

	// sim-i connects to gateway i%2, and its Device names that gateway once connected.
	want := func(i int) string { return "wasmbed-system/" + platform.GatewayComponent(i%2) }
	waitFor(t, ctx, "every device connected to its gateway", func() (bool, string) {
		for i := range devices {
			id := pki.Identity{Namespace: "default", Name: fmt.Sprintf("sim-%d", i)}
			if !gws[i%2].Connected(id) || gws[(i+1)%2].Connected(id) {
				return false, fmt.Sprintf("%s: on gateway 0 %v, on gateway 1 %v", id, gws[0].Connected(id), gws[1].Connected(id))
			}
			var d v1.Device
			if err := p.Client().Get(ctx, client.ObjectKey{Namespace: "default", Name: id.Name}, &d); err != nil {
				return false, err.Error()
			}
			if d.Status.Gateway != want(i) {
				return false, fmt.Sprintf("%s: status.gateway %q, want %q", id, d.Status.Gateway, want(i))
			}
		}
		return true, ""
	})
	for i := range 2 {
		var gw v1.Gateway
		if err := p.Client().Get(ctx, client.ObjectKey{Namespace: "wasmbed-system", Name: platform.GatewayComponent(i)}, &gw); err != nil {
			t.Fatalf("Gateway object %d: %v", i, err)
		}
	}

	app := &v1.Application{ObjectMeta: metav1.ObjectMeta{Name: "two-gateways", Namespace: "default"},
		Spec: v1.ApplicationSpec{Source: v1.ApplicationSource{Inline: &v1.InlineSource{Language: v1.LanguageWAT,
			Code: `(module (func (export "loop") (result i32) i32.const 1000))`}}}}
	if err := p.Client().Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the application Ready on every device", func() (bool, string) {
		var a v1.Application
		if err := p.Client().Get(ctx, client.ObjectKeyFromObject(app), &a); err != nil {
			return false, err.Error()
		}
		r := meta.FindStatusCondition(a.Status.Conditions, v1.ConditionReady)
		if r == nil || r.Status != metav1.ConditionTrue || a.Status.Rollout == nil || a.Status.Rollout.Succeeded != devices {
			return false, fmt.Sprintf("rollout %+v, ready %+v", a.Status.Rollout, r)
		}
		return true, ""
	})
	// Each gateway ran the deployment on its own two devices, and on no other.
	for i := range 2 {
		if got := runningDeployments(t, ctx, "http://"+p.Addr(platform.GatewayComponent(i)+"-ops")+"/metrics"); got != devices/2 {
			t.Errorf("gateway %d reports %v deployments Running, want %d", i, got, devices/2)
		}
	}
}

// runningDeployments reads a gateway's count of deployments that succeeded Running.
func runningDeployments(t *testing.T, ctx context.Context, url string) float64 {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s", url, resp.Status)
	}
	var n float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, gateway.MetricDeployments+"{") && strings.Contains(line, `result="succeeded"`) && strings.Contains(line, `state="Running"`) {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", url, line, err)
			}
			n += v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitFor polls cond until it holds or ctx ends, then fails with its last reason.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() (bool, string)) {
	t.Helper()
	var why string
	for {
		var ok bool
		if ok, why = cond(); ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v: %s", what, ctx.Err(), why)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
