// Package boards_test runs the embedded platform with emulated boards only: the real
// firmware in QEMU for each supported machine, bridged to the gateway by the board
// manager. An Application built from C reaches every board, runs (its log line and
// AppStatus Running), and is replaced by a new version.
package boards_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/pki"
	"github.com/wasmbed/wasmbed/internal/testenv"
	"github.com/wasmbed/wasmbed/platform"
)

var boards = []string{"stm32f4-discovery", "mps2-an386"}

const appC = `#include "wasmbed.h"
WASMBED_EXPORT(setup) void setup(void) { wasmbed_log_str(WASMBED_LOG_INFO, "hello from %s"); }
WASMBED_EXPORT(loop) int32_t loop(void) { wasmbed_led_set(0, 1); return 1000; }
`

func TestApplicationOnEmulatedBoards(t *testing.T) {
	fwDir := filepath.Join(testenv.RepoRoot(), "firmware", "build")
	for _, b := range boards {
		if _, err := os.Stat(filepath.Join(fwDir, b, "firmware.elf")); err != nil {
			t.Fatalf("no firmware for %s (%v): run `make -C firmware boards` (make test does)", b, err)
		}
	}
	env := testenv.Start(t)
	var logs io.Writer = io.Discard
	if os.Getenv("E2E_LOGS") != "" {
		logs = os.Stderr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	p, err := platform.Start(ctx, platform.Config{
		REST: env.Config, Dir: t.TempDir(), EmulatedBoards: boards, FirmwareDir: fwDir,
		Resync: time.Second, Logs: platform.NewLogs(logs, slog.LevelInfo),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	c := p.Client()

	// The boards boot and their Devices turn Connected.
	eventually(t, "every emulated board Connected", 2*time.Minute, func() (bool, string) {
		var list v1.DeviceList
		if err := c.List(ctx, &list, client.InNamespace("default")); err != nil {
			return false, err.Error()
		}
		n, state := 0, ""
		for _, d := range list.Items {
			state += fmt.Sprintf("%s=%s ", d.Name, d.Status.Phase)
			if d.Status.Phase == v1.DeviceConnected && d.Status.FirmwareVersion != "" {
				n++
			}
		}
		return n == len(boards), state
	})

	app := &v1.Application{ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: "default"},
		Spec: v1.ApplicationSpec{Source: v1.ApplicationSource{Inline: &v1.InlineSource{Language: v1.LanguageC, Code: fmt.Sprintf(appC, "v1")}}}}
	if err := c.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	readyFor := func(version string) {
		eventually(t, "Ready with "+version, 2*time.Minute, func() (bool, string) {
			var a v1.Application
			if err := c.Get(ctx, client.ObjectKeyFromObject(app), &a); err != nil {
				return false, err.Error()
			}
			r := meta.FindStatusCondition(a.Status.Conditions, v1.ConditionReady)
			if r == nil {
				return false, "no Ready"
			}
			return r.Status == metav1.ConditionTrue && r.ObservedGeneration == a.Generation, r.Reason + ": " + r.Message
		})
		for _, b := range boards {
			id := pki.Identity{Namespace: "default", Name: "emu-" + b}
			eventually(t, b+" logs hello from "+version, 30*time.Second, func() (bool, string) {
				for _, l := range p.Gateway().DeviceLog(id) {
					if l.App == "hello" && strings.Contains(l.Message, "hello from "+version) {
						return true, ""
					}
				}
				return false, fmt.Sprintf("%d log lines", len(p.Gateway().DeviceLog(id)))
			})
			var d v1.Device
			if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "emu-" + b}, &d); err != nil {
				t.Fatal(err)
			}
			if len(d.Status.Applications) != 1 || d.Status.Applications[0].State != v1.AppRunning {
				t.Errorf("%s applications = %+v", b, d.Status.Applications)
			}
		}
	}
	readyFor("v1")

	// A new version replaces the old one on every board.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(app), app); err != nil {
			return err
		}
		app.Spec.Source.Inline.Code = fmt.Sprintf(appC, "v2")
		return c.Update(ctx, app)
	}); err != nil {
		t.Fatal(err)
	}
	readyFor("v2")
	for _, b := range boards {
		if out, ok := p.Boards().ConsoleLog(pki.Identity{Namespace: "default", Name: "emu-" + b}); !ok {
			t.Errorf("%s: no console log", b)
		} else {
			t.Logf("%s console (%d bytes)", b, len(out))
		}
	}
}

// eventually polls cond until it holds, failing the test with cond's last state after
// timeout.
func eventually(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last: %s", timeout, what, state)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
