package boards_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/firmware/netboot"
	"github.com/wasmbed/wasmbed/firmware/provision"
	"github.com/wasmbed/wasmbed/internal/pki"
	"github.com/wasmbed/wasmbed/internal/testenv"
	"github.com/wasmbed/wasmbed/platform"
)

// portOf returns the port of a "127.0.0.1:port" address.
func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return n
}

// TestNetworkBoardThroughThePlatform runs the network image on the whole embedded
// platform, twice: a board a user provisioned (a Device, an image with a bootstrap token
// the platform issued, its CA and its deployment key) and a board the board manager runs
// from its Device's spec.emulation. Each generates its key, enrolls, connects over its
// own TLS, and an Application written in C goes through compile, validate, dispatch and
// the gateway to run on both.
func TestNetworkBoardThroughThePlatform(t *testing.T) {
	elf := filepath.Join(testenv.RepoRoot(), "firmware", "build", "mps2-an386-net", "firmware.elf")
	if _, err := os.Stat(elf); err != nil {
		t.Fatalf("no network image (%v): run `make -C firmware net` (make test does)", err)
	}
	if _, err := exec.LookPath("socat"); err != nil {
		t.Fatal("socat not found: run hack/deps.sh (QEMU hands each forwarded connection to it)")
	}
	env := testenv.Start(t)
	var logs io.Writer = io.Discard
	if os.Getenv("E2E_LOGS") != "" {
		logs = os.Stderr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	p, err := platform.Start(ctx, platform.Config{
		REST: env.Config, Dir: t.TempDir(), NetworkBoards: true, NetworkBoardFirmware: elf, Resync: time.Second,
		Logs: platform.NewLogs(logs, slog.LevelInfo),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	c := p.Client()

	dev := &v1.Device{ObjectMeta: metav1.ObjectMeta{Name: "net-1", Namespace: "default", Labels: map[string]string{"link": "ethernet"}},
		Spec: v1.DeviceSpec{Board: "mps2-an386"}}
	if err := c.Create(ctx, dev); err != nil {
		t.Fatal(err)
	}
	id := pki.Identity{Namespace: "default", Name: "net-1"}
	if _, err := p.IssueEnrollToken(pki.Identity{Namespace: "default", Name: "Bad_Name"}); err == nil {
		t.Error("a token was issued for an identity that is not a device name")
	}
	token, err := p.IssueEnrollToken(id)
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "firmware.elf")
	if err := provision.NetFile(elf, img, p.DeploymentKey(), provision.Net{
		Identity: id, Gateway: netip.AddrPortFrom(netboot.GuestGateway, devicePort), EnrollPort: enrollPort,
		ServerName: "localhost", Token: token, CA: p.CA().Cert,
	}); err != nil {
		t.Fatal(err)
	}
	b := bootNet(ctx, t, img, portOf(t, p.Addr("gateway")), portOf(t, p.Addr("gateway-enroll")))
	for _, want := range []string{"net: enroll: certificate for default/net-1 stored", "net: gateway: connected, TLSv1.2"} {
		if err := b.Wait(want, 1, 90*time.Second); err != nil {
			t.Fatal(err)
		}
	}

	eventually(t, "the Device Connected", time.Minute, func() (bool, string) {
		var d v1.Device
		if err := c.Get(ctx, client.ObjectKeyFromObject(dev), &d); err != nil {
			return false, err.Error()
		}
		return d.Status.Phase == v1.DeviceConnected, string(d.Status.Phase)
	})

	// A second board, as the board manager runs it from its Device (the platform's
	// emu-mps2-an386-net, as `make run` has it): the network image it provisions with a
	// fresh token at each start, then leaves alone.
	managed := &v1.Device{ObjectMeta: metav1.ObjectMeta{Name: platform.NetworkBoardDevice, Namespace: "default"}}
	if err := c.Get(ctx, client.ObjectKeyFromObject(managed), managed); err != nil {
		t.Fatal(err)
	}
	managed.Labels = map[string]string{"link": "ethernet"}
	if err := c.Update(ctx, managed); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the managed network board Connected", 2*time.Minute, func() (bool, string) {
		var d v1.Device
		if err := c.Get(ctx, client.ObjectKeyFromObject(managed), &d); err != nil {
			return false, err.Error()
		}
		out, _ := p.Boards().ConsoleLog(pki.Identity{Namespace: "default", Name: platform.NetworkBoardDevice})
		return d.Status.Phase == v1.DeviceConnected, fmt.Sprintf("%s; console: %.300q", d.Status.Phase, out)
	})

	app := &v1.Application{ObjectMeta: metav1.ObjectMeta{Name: "net-tick", Namespace: "default"},
		Spec: v1.ApplicationSpec{
			Source:   v1.ApplicationSource{Inline: &v1.InlineSource{Language: v1.LanguageC, Code: netAppSource}},
			Selector: metav1.LabelSelector{MatchLabels: map[string]string{"link": "ethernet"}},
		}}
	if err := c.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Application Ready on the board", 2*time.Minute, func() (bool, string) {
		var a v1.Application
		if err := c.Get(ctx, client.ObjectKeyFromObject(app), &a); err != nil {
			return false, err.Error()
		}
		r := meta.FindStatusCondition(a.Status.Conditions, v1.ConditionReady)
		if r == nil {
			return false, "no Ready condition"
		}
		return r.Status == metav1.ConditionTrue && r.ObservedGeneration == a.Generation, r.Reason + ": " + r.Message
	})
	for _, dev := range []pki.Identity{id, {Namespace: "default", Name: platform.NetworkBoardDevice}} {
		eventually(t, dev.Name+"'s log line", 30*time.Second, func() (bool, string) {
			lines := p.Gateway().DeviceLog(dev)
			for _, l := range lines {
				if l.App == "net-tick" && strings.Contains(l.Message, "net tick") {
					return true, ""
				}
			}
			return false, fmt.Sprintf("%d log lines", len(lines))
		})
	}
	// The board's token is spent: another key offered with it is refused, over the
	// enrollment listener's TLS, which the platform CA verifies.
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(k, id)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"token": token, "csr": string(csr)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+p.Addr("gateway-enroll")+"/enroll", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: p.CA().Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS13}}}
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("enrollment with the spent token: %s, want 403", res.Status)
	}
}

// The ports the network image dials on netboot.GuestGateway.
const (
	devicePort = 8443
	enrollPort = 8080
)

const netAppSource = `#include "wasmbed.h"

WASMBED_EXPORT(loop) int32_t loop(void) {
    static const char msg[] = "net tick";
    wasmbed_log(WASMBED_LOG_INFO, msg, sizeof msg - 1);
    return 500;
}
`

// bootNet starts QEMU with the network image on a user network that reaches only
// netboot.GuestGateway, whose two ports go to devPort and enrollTo on loopback, and
// returns its console.
func bootNet(ctx context.Context, t *testing.T, elf string, devPort, enrollTo int) *netboot.Console {
	t.Helper()
	lo := func(port int) netip.AddrPort {
		return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	}
	args, err := netboot.Args(elf, netboot.Forward{Port: devicePort, To: lo(devPort)}, netboot.Forward{Port: enrollPort, To: lo(enrollTo)})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "qemu-system-arm", args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("start qemu-system-arm: %v", err)
	}
	console := netboot.Collect(out)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-console.Done()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("UART:\n%s", strings.Join(console.Lines(), "\n"))
		}
	})
	return console
}
