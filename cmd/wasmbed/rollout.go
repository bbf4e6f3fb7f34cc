package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
)

// rewatchDelay is the pause before a watch the apiserver ended is opened again.
const rewatchDelay = time.Second

func newRolloutStatusCommand(k *kubeFlags) *cobra.Command {
	var (
		watchFlag bool
		timeout   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status APP",
		Short: "show an Application's rollout until it completes or fails",
		Long: `Print an Application's rollout progress, a line each time it changes (phase, canary
step, devices succeeded, failed and targeted, and what the rollout waits for), until
every target device runs the current module. The exit status is 0 once rolled out and
1 with the reason when the build, validation or rollout failed, the rollout was
aborted or rolled back, or --timeout passed. It watches the Application (a Kubernetes
watch), it does not poll.`,
		Example: `  # Wait for blink's rollout
  wasmbed rollout status blink

  # Fail after five minutes
  wasmbed rollout status blink --timeout 5m

  # Print the status once, without waiting
  wasmbed rollout status blink --watch=false`,
		Args: exactArgs(1, "the Application's name"),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return completeNames(cmd, k, "applications"), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := objectName("application", args[0]); err != nil {
				return err
			}
			if timeout < 0 {
				return usageError("--timeout must not be negative")
			}
			kc, err := k.connect()
			if err != nil {
				return err
			}
			return rolloutStatus(cmd.Context(), kc.client, kc.namespace, args[0], cmd.OutOrStdout(), watchFlag, timeout)
		},
	}
	cmd.Flags().BoolVarP(&watchFlag, "watch", "w", true, "wait until the rollout completes or fails; false prints the status once")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "give up after this long, e.g. 5m (0: wait forever)")
	k.bind(cmd.Flags())
	return cmd
}

// errRolloutFailed marks a rollout that ended without every device running the module.
var errRolloutFailed = errors.New("rollout failed")

// rolloutStatus reports an Application's rollout on out, a line per change, until it is
// rolled out (nil), fails (an error wrapping errRolloutFailed with the reason), the
// timeout passes or ctx ends. Without watching it reports once.
func rolloutStatus(ctx context.Context, c client.WithWatch, ns, name string, out io.Writer, watching bool, timeout time.Duration) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	last := ""
	report := func(app *v1.Application) (bool, error) {
		line, done, err := describeRollout(app)
		if line != last {
			fmt.Fprintln(out, line)
			last = line
		}
		return done, err
	}
	ended := func() error {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("timed out after %s waiting for the rollout of %s/%s (last status: %s)", timeout, ns, name, last)
		}
		return ctx.Err()
	}
	for {
		var app v1.Application
		gctx, cancel := context.WithTimeout(ctx, requestTimeout)
		err := c.Get(gctx, client.ObjectKey{Namespace: ns, Name: name}, &app)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ended()
			}
			if apierrors.IsNotFound(err) {
				return fmt.Errorf("application %s/%s not found", ns, name)
			}
			return fmt.Errorf("get application %s/%s: %w", ns, name, err)
		}
		if done, err := report(&app); done || err != nil || !watching {
			return err
		}
		w, err := c.Watch(ctx, &v1.ApplicationList{}, client.InNamespace(ns), client.MatchingFields{"metadata.name": name},
			&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: app.ResourceVersion}})
		if err != nil {
			if ctx.Err() != nil {
				return ended()
			}
			return fmt.Errorf("watch application %s/%s: %w", ns, name, err)
		}
		done, err := followWatch(ctx, w, report)
		w.Stop()
		if done || err != nil {
			return err
		}
		// The watch ended (the apiserver closes them every few minutes, or the resource
		// version expired): read the object again and watch from there.
		select {
		case <-ctx.Done():
			return ended()
		case <-time.After(rewatchDelay):
		}
	}
}

// followWatch reports each change of the watched Application until the rollout ends or
// the watch does; ctx ending leaves it to the caller to say why.
func followWatch(ctx context.Context, w watch.Interface, report func(*v1.Application) (bool, error)) (bool, error) {
	for {
		select {
		case <-ctx.Done():
			return false, nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return false, nil
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				if app, ok := ev.Object.(*v1.Application); ok {
					if done, err := report(app); done || err != nil {
						return done, err
					}
				}
			case watch.Deleted:
				return false, fmt.Errorf("%w: the application was deleted", errRolloutFailed)
			case watch.Error:
				return false, nil
			}
		}
	}
}

// describeRollout is one status line of an Application, whether its rollout is done,
// and the reason when it failed.
func describeRollout(app *v1.Application) (line string, done bool, err error) {
	ref := app.Namespace + "/" + app.Name
	gen := app.Generation
	ready := meta.FindStatusCondition(app.Status.Conditions, v1.ConditionReady)
	rolled := meta.FindStatusCondition(app.Status.Conditions, v1.ConditionRolledOut)
	if ready == nil || ready.ObservedGeneration < gen {
		return fmt.Sprintf("Waiting for application %s: the operator has not yet seen generation %d", ref, gen), false, nil
	}
	if rolled != nil && rolled.ObservedGeneration >= gen && rolled.Status == metav1.ConditionTrue {
		return fmt.Sprintf("application %s successfully rolled out: %s", ref, rolled.Message), true, nil
	}
	if ready.Status == metav1.ConditionFalse {
		why := ready.Reason + ": " + ready.Message
		if r := app.Status.Rollout; r != nil {
			if r.FirstFailure != "" && !strings.Contains(why, r.FirstFailure) {
				why += "; first device failure: " + r.FirstFailure
			}
			if r.RolledBack && app.Status.PreviousGoodDigest != "" {
				why += "; rolled back to " + app.Status.PreviousGoodDigest.String()
			}
		}
		line = fmt.Sprintf("application %s failed: %s", ref, why)
		return line, false, fmt.Errorf("%w: %s", errRolloutFailed, why)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Waiting for application %s: phase %s", ref, app.Status.Phase)
	if r := app.Status.Rollout; r != nil && (app.Status.Phase == v1.ApplicationRollingOut || app.Status.Phase == v1.ApplicationPaused) {
		if r.Steps > 1 {
			fmt.Fprintf(&b, ", step %d of %d", r.Step+1, r.Steps)
		}
		fmt.Fprintf(&b, ", %d succeeded, %d failed of %d targeted", r.Succeeded, r.Failed, r.Targeted)
		if r.PausedUntil != nil {
			fmt.Fprintf(&b, ", paused until %s", r.PausedUntil.UTC().Format(time.RFC3339))
		}
	}
	if ready.Message != "" {
		fmt.Fprintf(&b, ": %s", ready.Message)
	}
	return b.String(), false, nil
}
