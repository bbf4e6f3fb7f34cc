package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wasmbed/wasmbed/api/digest"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	wasmfix "github.com/wasmbed/wasmbed/testdata/wasm"
)

// syncBuffer is a bytes.Buffer a command writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newApp creates an Application and returns it with its status set by status.
func newApp(t *testing.T, ns, name string, status func(app *v1.Application)) *v1.Application {
	t.Helper()
	app := &v1.Application{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: v1.ApplicationSpec{
		Source: v1.ApplicationSource{Inline: &v1.InlineSource{Language: v1.LanguageWAT, Code: "(module)"}}}}
	create(t, app, func() { status(app) })
	return app
}

var rolloutDigest = digest.Of(wasmfix.Blink)

// validated marks an Application built and validated, ready to roll out.
func validated(app *v1.Application) {
	app.Status.InitializeConditions(app.Generation)
	app.Status.MarkBuilt(app.Generation, v1.BuildStatus{Digest: rolloutDigest, Size: 10})
	app.Status.MarkValidated(app.Generation, v1.ValidationStatus{Digest: rolloutDigest, Passed: true})
}

func TestRolloutStatusExitsWithTheOutcome(t *testing.T) {
	createNamespace(t, "rollout-a")
	kc := kubeconfig(t, "rollout-a")
	r := v1.RolloutStatus{Digest: rolloutDigest, Step: 1, Steps: 3, Targeted: 10, Dispatched: 5, Succeeded: 4, Failed: 1}
	newApp(t, "rollout-a", "done", func(a *v1.Application) {
		validated(a)
		a.Status.MarkRolledOut(a.Generation, v1.RolloutStatus{Digest: rolloutDigest, Steps: 1, Targeted: 3, Succeeded: 3})
	})
	newApp(t, "rollout-a", "failed", func(a *v1.Application) {
		validated(a)
		r := r
		r.FirstFailure = "sim-3: trap in start"
		r.RolledBack = true
		a.Status.MarkRollingOut(a.Generation, r)
		a.Status.PreviousGoodDigest = digest.Of(wasmfix.Config)
		a.Status.MarkRolloutFailed(a.Generation, v1.ReasonRolledBack, "2 devices failed (maxFailures 1)")
	})
	newApp(t, "rollout-a", "notargets", func(a *v1.Application) {
		validated(a)
		a.Status.MarkNoTargets(a.Generation)
	})
	newApp(t, "rollout-a", "rejected", func(a *v1.Application) {
		a.Status.InitializeConditions(a.Generation)
		a.Status.MarkBuilt(a.Generation, v1.BuildStatus{Digest: rolloutDigest, Size: 10})
		a.Status.MarkRejected(a.Generation, v1.ValidationStatus{Digest: rolloutDigest, Reasons: []string{"needs 300 KiB of memory"}})
	})
	newApp(t, "rollout-a", "rolling", func(a *v1.Application) {
		validated(a)
		a.Status.MarkRollingOut(a.Generation, r)
	})
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"rolled out", []string{"done"}, 0, "application rollout-a/done successfully rolled out: 3 devices run " + rolloutDigest.String(), ""},
		{"failed and rolled back", []string{"failed"}, 1, "application rollout-a/failed failed: RolledBack",
			"rollout failed: RolledBack: 2 devices failed (maxFailures 1); first device failure: sim-3: trap in start; rolled back to " + digest.Of(wasmfix.Config).String()},
		{"no targets", []string{"notargets"}, 1, "", "rollout failed: NoTargets: spec.selector matches no Device"},
		{"module rejected", []string{"rejected"}, 1, "", "rollout failed: ModuleRejected: module rejected: needs 300 KiB of memory"},
		{"times out", []string{"rolling", "--timeout", "1500ms"}, 1,
			"Waiting for application rollout-a/rolling: phase RollingOut, step 2 of 3, 4 succeeded, 1 failed of 10 targeted: step 2 of 3",
			"timed out after 1.5s waiting for the rollout of rollout-a/rolling"},
		{"once", []string{"rolling", "--watch=false"}, 0, "phase RollingOut, step 2 of 3", ""},
		{"missing", []string{"nope"}, 1, "", "application rollout-a/nope not found"},
		{"negative timeout", []string{"done", "--timeout", "-1s"}, 2, "", "--timeout must not be negative"},
		{"not a name", []string{"../../secrets"}, 2, "", `application "../../secrets" is not a valid name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, append([]string{"rollout", "status", "--kubeconfig", kc}, tc.args...)...)
			if code != tc.code || !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
				t.Fatalf("exit %d (want %d)\nstdout %q (want %q)\nstderr %q (want %q)", code, tc.code, stdout, tc.stdout, stderr, tc.stderr)
			}
			if strings.Count(stdout, "\n") > 1 {
				t.Errorf("an unchanging status printed more than one line:\n%s", stdout)
			}
		})
	}
}

// TestRolloutStatusFollowsChanges writes an Application's status step by step, as the
// operator would, and reads a line for each change until the rollout completes.
func TestRolloutStatusFollowsChanges(t *testing.T) {
	createNamespace(t, "rollout-b")
	kc := kubeconfig(t, "rollout-b")
	app := newApp(t, "rollout-b", "blink", func(a *v1.Application) { validated(a) })
	ctx := context.Background()
	// A new generation the operator has not seen yet.
	app.Spec.Config = map[string]string{"v": "2"}
	if err := env.Client.Update(ctx, app); err != nil {
		t.Fatal(err)
	}
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"rollout", "status", "blink", "--kubeconfig", kc, "--timeout", "1m"}, &out, &errb)
	}()
	expect := func(want string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(out.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("output lacks %q:\n%s%s", want, out.String(), errb.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	setStatus := func(mark func(a *v1.Application)) {
		t.Helper()
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(app), app); err != nil {
			t.Fatal(err)
		}
		mark(app)
		if err := env.Client.Status().Update(ctx, app); err != nil {
			t.Fatal(err)
		}
	}
	expect("Waiting for application rollout-b/blink: the operator has not yet seen generation 2")
	setStatus(validated)
	expect("Waiting for application rollout-b/blink: phase RollingOut: waiting for the pipeline")
	setStatus(func(a *v1.Application) {
		a.Status.MarkRollingOut(a.Generation, v1.RolloutStatus{Digest: rolloutDigest, Steps: 2, Targeted: 4, Dispatched: 2, Succeeded: 1})
	})
	expect("step 1 of 2, 1 succeeded, 0 failed of 4 targeted")
	setStatus(func(a *v1.Application) {
		a.Status.MarkRolloutPaused(a.Generation, "canary step 1 done, pausing 30s")
	})
	expect("phase Paused, step 1 of 2, 1 succeeded, 0 failed of 4 targeted: canary step 1 done, pausing 30s")
	setStatus(func(a *v1.Application) {
		a.Status.MarkRolledOut(a.Generation, v1.RolloutStatus{Digest: rolloutDigest, Step: 1, Steps: 2, Targeted: 4, Dispatched: 4, Succeeded: 4})
	})
	select {
	case code := <-done:
		if code != 0 || !strings.HasSuffix(out.String(), "application rollout-b/blink successfully rolled out: 4 devices run "+rolloutDigest.String()+"\n") {
			t.Fatalf("exit %d:\n%s%s", code, out.String(), errb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("rollout status did not end:\n%s", out.String())
	}
	if lines := strings.Count(out.String(), "\n"); lines != 5 {
		t.Errorf("%d lines for 5 states:\n%s", lines, out.String())
	}

	// Deleting the Application while waiting ends the command with an error.
	app2 := newApp(t, "rollout-b", "gone", func(a *v1.Application) { validated(a) })
	go func() {
		done <- run(ctx, []string{"rollout", "status", "gone", "--kubeconfig", kc}, &out, &errb)
	}()
	expect("rollout-b/gone: phase RollingOut")
	if err := env.Client.Delete(ctx, app2); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 1 || !strings.Contains(errb.String(), "the application was deleted") {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("rollout status did not end when the application was deleted")
	}
}

func TestDeployWaitsForTheRollout(t *testing.T) {
	createNamespace(t, "rollout-c")
	kc := kubeconfig(t, "rollout-c")
	path := writeFile(t, t.TempDir(), "blink.wasm", wasmfix.Blink)
	// No operator runs here: the rollout never starts, and --timeout ends the wait.
	code, stdout, stderr := runCLI(t, "deploy", path, "--name", "blink", "--selector", "", "--wait", "--timeout", "1s", "--kubeconfig", kc)
	if code != 1 || !strings.Contains(stdout, "application.wasmbed.dev/blink created") ||
		!strings.Contains(stdout, "Waiting for application rollout-c/blink: the operator has not yet seen generation 1") ||
		!strings.Contains(stderr, "timed out after 1s") {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
}
