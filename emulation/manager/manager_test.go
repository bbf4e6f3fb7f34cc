package manager

import (
	"crypto/ed25519"
	"sync"

	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/api/boards"
	"github.com/wasmbed/wasmbed/firmware/provision"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/pki"
	"github.com/wasmbed/wasmbed/internal/testenv"
)

// runManager runs m until the test ends, then checks it stopped cleanly; onFailure,
// when set, explains a failed test.
func runManager(t *testing.T, m *Manager, onFailure func()) {
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("manager run: %v", err)
		}
		if t.Failed() && onFailure != nil {
			onFailure()
		}
	})
}

func running(m *Manager) []string {
	var out []string
	for _, b := range m.Boards() {
		out = append(out, b.Device)
	}
	return out
}

// TestManagerFollowsDevices runs the Manager against a real apiserver and gateway, with
// the stand-in emulator as every board's process: Devices created, updated and deleted
// start, restart and stop boards, and each board reaches the gateway as its Device.
func TestManagerFollowsDevices(t *testing.T) {
	env := testenv.Start(t)
	startOperator(t, env)
	applyRBAC(t, env, "300-device-enroller.yaml", "400-board-manager.yaml")
	gw := newTestGateway(t)
	c := env.Client
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "lab"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "elsewhere"}}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	fw := filepath.Join(dir, "stm32f4-discovery", "firmware.elf")
	if err := os.MkdirAll(filepath.Dir(fw), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fw, []byte("\x7fELF stand-in"), 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.elf")
	if err := os.WriteFile(other, []byte("\x7fELF other"), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	m, err := New(Options{
		Config: actAs(t, env, boardManagerUser), Namespaces: []string{"lab"}, RootCAs: testCA(t).Pool(), Gateway: gw.addr, ServerName: "localhost",
		Runner: NewRunner().WithCommand(fakeCommand()), FirmwareDir: dir, Retry: 200 * time.Millisecond,
		RestartMin: 50 * time.Millisecond, GracePeriod: 2 * time.Second,
		BridgeMinBackoff: 20 * time.Millisecond, BridgeMaxBackoff: 200 * time.Millisecond,
		Logger:             slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		SkipNameValidation: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	runManager(t, m, func() { t.Logf("manager logs:\n%s\ngateway logs:\n%s", logs, gw.logs) })

	device := func(ns, name string, emulate bool, firmware string) *v1.Device {
		d := &v1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: v1.DeviceSpec{Board: "stm32f4-discovery"}}
		if emulate {
			d.Spec.Emulation = &v1.DeviceEmulation{Enabled: true, Firmware: firmware}
		}
		return d
	}
	a, b := pki.Identity{Namespace: "lab", Name: "board-a"}, pki.Identity{Namespace: "lab", Name: "board-b"}
	for _, d := range []*v1.Device{
		device("lab", "board-a", true, ""),       // default image from FirmwareDir
		device("lab", "board-b", true, other),    // image from the spec
		device("lab", "plain", false, ""),        // no emulation
		device("elsewhere", "board-x", true, ""), // namespace not watched
	} {
		if err := c.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 20*time.Second, func() bool {
		return gw.connected(a) && gw.connected(b) && len(m.Boards()) == 2
	}, "boards %v; gateway connected a=%v b=%v", running(m), gw.connected(a), gw.connected(b))
	st := m.Boards()
	if st[0].Device != "lab/board-a" || st[0].Firmware != fw || st[1].Firmware != other || !st[0].Running || !st[0].Connected {
		t.Errorf("boards = %+v", st)
	}
	if log, ok := m.ConsoleLog(a); !ok || !strings.Contains(string(log), "fake emulator listening") {
		t.Errorf("console log of %s: %v %q", a, ok, log)
	}

	// Changing the firmware restarts the board with the new image.
	var d v1.Device
	if err := c.Get(ctx, client.ObjectKey{Namespace: "lab", Name: "board-a"}, &d); err != nil {
		t.Fatal(err)
	}
	d.Spec.Emulation.Firmware = other
	if err := c.Update(ctx, &d); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() bool {
		st := m.Boards()
		return len(st) == 2 && st[0].Firmware == other && st[0].Connected && gw.connected(a)
	}, "board-a not restarted with the new firmware: %+v", m.Boards())

	// Disabling emulation stops the board; the gateway loses the device.
	if err := c.Get(ctx, client.ObjectKey{Namespace: "lab", Name: "board-a"}, &d); err != nil {
		t.Fatal(err)
	}
	d.Spec.Emulation.Enabled = false
	if err := c.Update(ctx, &d); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() bool { return len(m.Boards()) == 1 && !gw.connected(a) },
		"board-a still running after emulation was disabled: %v", running(m))

	// Deleting a Device stops its board.
	if err := c.Delete(ctx, device("lab", "board-b", true, "")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() bool { return len(m.Boards()) == 0 && !gw.connected(b) },
		"board-b still running after its Device was deleted: %v", running(m))

	// A Device whose firmware does not exist yet starts once it appears.
	late := filepath.Join(dir, "late.elf")
	if err := c.Create(ctx, device("lab", "board-c", true, late)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() bool { return strings.Contains(logs.String(), "late.elf: no such file") },
		"the missing firmware of board-c was not reported")
	if len(m.Boards()) != 0 {
		t.Fatalf("a board started without its firmware: %+v", m.Boards())
	}
	if err := os.WriteFile(late, []byte("\x7fELF late"), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() bool {
		return gw.connected(pki.Identity{Namespace: "lab", Name: "board-c"})
	}, "board-c did not start once its firmware appeared: %v", running(m))
}

func TestNewManagerErrors(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without config, ca certificates and gateway: no error")
	}
}

// TestManagerProvisionsTheDeploymentKey: with a deployment key, every board boots a copy
// of its image with the key in its .wb_keys section, and a Device that does not change
// keeps its board (the provisioned copy is not "another firmware").
func TestManagerProvisionsTheDeploymentKey(t *testing.T) {
	env := testenv.Start(t)
	startOperator(t, env)
	gw := newTestGateway(t)
	ctx := context.Background()
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "keyed"}}); err != nil {
		t.Fatal(err)
	}
	image := filepath.Join(testenv.RepoRoot(), "firmware", "build", "stm32f4-discovery", "firmware.elf")
	if _, err := os.Stat(image); err != nil {
		t.Fatalf("no firmware image (%v): build it with `make -C firmware boards` (make test does)", err)
	}
	key, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var booted []string
	command := func(b boards.Board, firmware string, port int) ([]string, error) {
		mu.Lock()
		booted = append(booted, firmware)
		mu.Unlock()
		return fakeCommand()(b, firmware, port)
	}
	provisioned := t.TempDir()
	m, err := New(Options{
		Config: env.Config, Namespaces: []string{"keyed"}, RootCAs: testCA(t).Pool(), Gateway: gw.addr, ServerName: "localhost",
		Runner: NewRunner().WithCommand(command), FirmwareDir: filepath.Dir(filepath.Dir(image)), Retry: 200 * time.Millisecond,
		RestartMin: 50 * time.Millisecond, GracePeriod: 2 * time.Second, DeploymentKey: key, ProvisionDir: provisioned,
		SkipNameValidation: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	runManager(t, m, nil)
	id := pki.Identity{Namespace: "keyed", Name: "board"}
	d := &v1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: id.Namespace, Name: id.Name},
		Spec: v1.DeviceSpec{Board: "stm32f4-discovery", Emulation: &v1.DeviceEmulation{Enabled: true}}}
	if err := env.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() bool { return gw.connected(id) }, "board never connected: %v", running(m))
	// Another reconcile of the unchanged Device (a status write) must not restart it.
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
		t.Fatal(err)
	}
	d.Labels = map[string]string{"touched": "yes"}
	if err := env.Client.Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	if len(booted) != 1 {
		t.Fatalf("the board was started %d times (%v), want once", len(booted), booted)
	}
	if st := m.Boards(); len(st) != 1 || st[0].Firmware != image {
		t.Errorf("boards = %+v, want the Device's image %s", st, image)
	}
	got, err := os.ReadFile(booted[0])
	if err != nil {
		t.Fatal(err)
	}
	if k, err := provision.ReadKey(got); err != nil || !k.Equal(key) || !strings.HasPrefix(booted[0], provisioned) {
		t.Fatalf("booted %s with key %x (%v), want a copy under %s with %x", booted[0], k, err, provisioned, key)
	}
}
