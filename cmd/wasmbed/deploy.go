package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wasmbed/wasmbed/api/digest"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/wasmfile"
)

// Labels and names of the ConfigMap holding a deployed module: the console's
// convention (ConfigMap <app>-module, binaryData module.wasm), managed by the CLI.
const (
	labelApplication = "wasmbed.dev/application"
	labelManagedBy   = "app.kubernetes.io/managed-by"
	moduleKey        = "module.wasm"
	// labelDevice carries a Device's own name, so that an Application can select
	// named devices (deploy --device): label selectors cannot match metadata.name.
	labelDevice = "wasmbed.dev/device"
)

func moduleConfigMapName(app string) string { return app + "-module" }

type deployOptions struct {
	name           string
	selector       string
	devices        []string
	config         []string
	canary         string
	language       string
	wait           bool
	timeout        time.Duration
	forceConflicts bool
}

func newDeployCommand(k *kubeFlags) *cobra.Command {
	var o deployOptions
	cmd := &cobra.Command{
		Use:   "deploy FILE --name APP (--selector SELECTOR | --device NAME...)",
		Short: "deploy a .wasm module or a source file as an Application",
		Long: `Create or update the Application APP from FILE, with server-side apply (field manager
wasmbed-cli), so that running it again updates what it set.

A .wasm module (at most 1000 KiB, checked to be a WebAssembly core module) goes into
the ConfigMap APP-module (binaryData module.wasm, owned by the Application so it is
deleted with it), and the Application's source.module names it with its sha256 digest.
A source file becomes inline source (at most 256 KiB) in the language of its
extension: .c (C), .rs (Rust), .ts (AssemblyScript), .wat (WebAssembly text), or
--language.

Target devices are a label selector (--selector), or Devices by name (--device): the
named Devices get the label wasmbed.dev/device=<name> and the Application selects it.
--selector '' selects every Device of the namespace.`,
		Example: `  # A prebuilt module on the devices labelled env=lab
  wasmbed deploy blink.wasm --name blink --selector env=lab

  # C source on two named devices, with configuration, waiting for the rollout
  wasmbed deploy sensor.c --name sensor --device sim-0 --device sim-1 --config period_ms=500 --wait

  # A canary rollout: 10% of the devices, then half, then all
  wasmbed deploy blink.wasm --name blink --selector board=stm32f4-discovery --canary 10,50,100`,
		Args: exactArgs(1, "the .wasm module or source file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDeploy(cmd, k, args[0], &o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.name, "name", "", "name of the Application (a DNS label; required)")
	f.StringVarP(&o.selector, "selector", "l", "", "label selector of the target Devices, e.g. env=lab,board!=virtual ('' for every Device)")
	f.StringSliceVar(&o.devices, "device", nil, "target Device by name (repeatable, or comma-separated)")
	f.StringArrayVar(&o.config, "config", nil, "configuration key=value the application reads with config_get (repeatable)")
	f.StringVar(&o.canary, "canary", "", "canary rollout steps: increasing percentages of the devices, e.g. 10,50,100 (default: all at once)")
	f.StringVar(&o.language, "language", "", "source language when the extension does not say: c, rust, assemblyscript or wat")
	f.BoolVar(&o.wait, "wait", false, "wait for the rollout like 'wasmbed rollout status'")
	f.DurationVar(&o.timeout, "timeout", 10*time.Minute, "with --wait, give up after this long (0: wait forever)")
	f.BoolVar(&o.forceConflicts, "force-conflicts", false, "take over Application fields another manager (kubectl, the console) set")
	_ = cmd.RegisterFlagCompletionFunc("language", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return []cobra.Completion{"c", "rust", "assemblyscript", "wat"}, cobra.ShellCompDirectiveNoFileComp
	})
	_ = cmd.RegisterFlagCompletionFunc("device", func(cmd *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return completeNames(cmd, k, "devices"), cobra.ShellCompDirectiveNoFileComp
	})
	k.bind(f)
	return cmd
}

func runDeploy(cmd *cobra.Command, k *kubeFlags, file string, o *deployOptions) error {
	if errs := validation.IsDNS1123Label(o.name); len(errs) > 0 {
		if o.name == "" {
			return usageError("--name is required")
		}
		return usageError("--name %q: %s", o.name, errs[0])
	}
	selectorSet := cmd.Flags().Changed("selector")
	if selectorSet == (len(o.devices) > 0) {
		return usageError("give exactly one of --selector and --device")
	}
	var selector map[string]any
	if selectorSet {
		sel, err := metav1.ParseToLabelSelector(o.selector)
		if err != nil {
			return usageError("--selector %q: %v", o.selector, err)
		}
		if selector, err = runtime.DefaultUnstructuredConverter.ToUnstructured(sel); err != nil {
			return fmt.Errorf("selector: %w", err)
		}
	} else {
		for _, d := range o.devices {
			if errs := validation.IsValidLabelValue(d); len(errs) > 0 || d == "" {
				return usageError("--device %q: not a Device name that fits a label value (%s)", d, strings.Join(errs, "; "))
			}
		}
		selector = map[string]any{"matchExpressions": []any{map[string]any{
			"key": labelDevice, "operator": "In", "values": toAny(o.devices)}}}
	}
	config, err := parseConfig(o.config)
	if err != nil {
		return err
	}
	rollout, err := parseCanary(o.canary)
	if err != nil {
		return err
	}
	if o.timeout < 0 {
		return usageError("--timeout must not be negative")
	}
	art, err := wasmfile.Read(file, o.language)
	if errors.Is(err, wasmfile.ErrUsage) {
		return usageError("%s", strings.TrimPrefix(err.Error(), wasmfile.ErrUsage.Error()+": "))
	}
	if err != nil {
		return err
	}

	kc, err := k.connect()
	if err != nil {
		return err
	}
	ns, out := kc.namespace, cmd.OutOrStdout()
	ctx, cancel := context.WithTimeout(cmd.Context(), requestTimeout)
	defer cancel()
	if len(o.devices) > 0 {
		if err := labelDevices(ctx, kc.client, ns, o.devices, out); err != nil {
			return err
		}
	}
	d := &deployment{c: kc.client, ns: ns, name: o.name, force: o.forceConflicts}
	if err := d.apply(ctx, art, selector, config, rollout, out); err != nil {
		return err
	}
	if !o.wait {
		return nil
	}
	return rolloutStatus(cmd.Context(), kc.client, ns, o.name, out, true, o.timeout)
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// parseConfig turns --config key=value flags into spec.config.
func parseConfig(kvs []string) (map[string]any, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := map[string]any{}
	for _, kv := range kvs {
		key, value, ok := strings.Cut(kv, "=")
		if !ok || key == "" {
			return nil, usageError("--config %q: want key=value", kv)
		}
		if _, dup := out[key]; dup {
			return nil, usageError("--config: key %q given twice", key)
		}
		out[key] = value
	}
	return out, nil
}

// parseCanary turns --canary 10,50,100 into spec.rollout.
func parseCanary(s string) (map[string]any, error) {
	if s == "" {
		return nil, nil
	}
	var steps []any
	prev := 0
	for _, f := range strings.Split(s, ",") {
		p, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(f), "%"))
		if err != nil || p < 1 || p > 100 {
			return nil, usageError("--canary %q: each step is a percentage from 1 to 100", s)
		}
		if p <= prev {
			return nil, usageError("--canary %q: percentages must increase from step to step", s)
		}
		prev = p
		steps = append(steps, map[string]any{"percent": int64(p)})
	}
	if len(steps) > 10 {
		return nil, usageError("--canary %q: at most 10 steps", s)
	}
	return map[string]any{"strategy": string(v1.RolloutCanary), "steps": steps}, nil
}

// labelDevices gives each named Device the label wasmbed.dev/device=<its name>, with
// server-side apply, after checking that it exists.
func labelDevices(ctx context.Context, c client.Client, ns string, names []string, out io.Writer) error {
	for _, n := range names {
		var dev v1.Device
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: n}, &dev); err != nil {
			if apierrors.IsNotFound(err) {
				return fmt.Errorf("device %s/%s not found: --device names existing Devices", ns, n)
			}
			return fmt.Errorf("get device %s/%s: %w", ns, n, err)
		}
		if dev.Labels[labelDevice] == n {
			continue
		}
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": v1.SchemeGroupVersion.String(), "kind": "Device",
			"metadata": map[string]any{"name": n, "namespace": ns, "labels": map[string]any{labelDevice: n}},
		}}
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(fieldManager)); err != nil {
			return fmt.Errorf("label device %s/%s %s=%s: %w", ns, n, labelDevice, n, err)
		}
		fmt.Fprintf(out, "device.wasmbed.dev/%s labeled %s=%s\n", n, labelDevice, n)
	}
	return nil
}

// deployment applies one Application and, for a module, its ConfigMap.
type deployment struct {
	c     client.Client
	ns    string
	name  string
	force bool
}

func (d *deployment) apply(ctx context.Context, art *wasmfile.File, selector, config, rollout map[string]any, out io.Writer) error {
	var existing v1.Application
	err := d.c.Get(ctx, client.ObjectKey{Namespace: d.ns, Name: d.name}, &existing)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("get application %s/%s: %w", d.ns, d.name, err)
	}
	// Apply removes only the fields the CLI set: another manager's source of another
	// kind would stay next to the new one, which the CRD refuses.
	if was, now := sourceKind(existing.Spec.Source), sourceKind(newSource(art)); was != "" && was != now && !ownsField(&existing, "spec", "source", was) {
		return fmt.Errorf("application %s/%s has a source.%s that another manager than %s set, and deploy would add source.%s next to it: remove it (kubectl edit) or delete the Application first",
			d.ns, d.name, was, fieldManager, now)
	}
	var source map[string]any
	if art.Module != nil {
		if err := d.checkModuleConfigMap(ctx); err != nil {
			return err
		}
		if err := d.applyModule(ctx, art.Module, existing.UID); err != nil {
			return err
		}
		source = map[string]any{"module": map[string]any{
			"configMap": map[string]any{"name": moduleConfigMapName(d.name), "key": moduleKey},
			"digest":    digest.Of(art.Module).String(),
		}}
	} else {
		source = map[string]any{"inline": map[string]any{"language": string(art.Language), "code": art.Code}}
	}
	spec := map[string]any{"source": source, "selector": selector}
	if config != nil {
		spec["config"] = config
	}
	if rollout != nil {
		spec["rollout"] = rollout
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1.SchemeGroupVersion.String(), "kind": "Application",
		"metadata": map[string]any{"name": d.name, "namespace": d.ns},
		"spec":     spec,
	}}
	opts := []client.ApplyOption{client.FieldOwner(fieldManager)}
	if d.force {
		opts = append(opts, client.ForceOwnership)
	}
	if err := d.c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), opts...); err != nil {
		if apierrors.IsConflict(err) {
			return fmt.Errorf("apply application %s/%s: %w (another manager set these fields: --force-conflicts takes them over)", d.ns, d.name, err)
		}
		return fmt.Errorf("apply application %s/%s: %w", d.ns, d.name, err)
	}
	var app v1.Application
	if err := d.c.Get(ctx, client.ObjectKey{Namespace: d.ns, Name: d.name}, &app); err != nil {
		return fmt.Errorf("get application %s/%s: %w", d.ns, d.name, err)
	}
	if art.Module != nil {
		if existing.UID != app.UID {
			// A new Application: now that it has a UID, it owns its module.
			if err := d.applyModule(ctx, art.Module, app.UID); err != nil {
				return err
			}
		}
		fmt.Fprintf(out, "configmap/%s serverside-applied (%s, %d bytes)\n", moduleConfigMapName(d.name), digest.Of(art.Module), len(art.Module))
	}
	verb := "configured"
	if existing.UID == "" {
		verb = "created"
	} else if existing.Generation == app.Generation {
		verb = "unchanged"
	}
	fmt.Fprintf(out, "application.wasmbed.dev/%s %s\n", d.name, verb)
	return nil
}

// checkModuleConfigMap refuses to overwrite a ConfigMap that does not hold this
// Application's module.
func (d *deployment) checkModuleConfigMap(ctx context.Context) error {
	var cm corev1.ConfigMap
	err := d.c.Get(ctx, client.ObjectKey{Namespace: d.ns, Name: moduleConfigMapName(d.name)}, &cm)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("get configmap %s/%s: %w", d.ns, moduleConfigMapName(d.name), err)
	case cm.Labels[labelApplication] != d.name:
		return fmt.Errorf("ConfigMap %s/%s exists and does not hold the module of application %s (no label %s=%s): rename the application or delete the ConfigMap",
			d.ns, cm.Name, d.name, labelApplication, d.name)
	}
	return nil
}

// applyModule writes the module's ConfigMap, owned by the Application once it has a
// UID. The ConfigMap is this Application's (checkModuleConfigMap), so the CLI takes
// over its fields even when the console wrote them.
func (d *deployment) applyModule(ctx context.Context, wasm []byte, owner types.UID) error {
	meta := map[string]any{
		"name": moduleConfigMapName(d.name), "namespace": d.ns,
		"labels": map[string]any{labelApplication: d.name, labelManagedBy: fieldManager},
	}
	if uid := string(owner); uid != "" {
		meta["ownerReferences"] = []any{map[string]any{
			"apiVersion": v1.SchemeGroupVersion.String(), "kind": "Application", "name": d.name, "uid": uid,
		}}
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
		"binaryData": map[string]any{moduleKey: base64.StdEncoding.EncodeToString(wasm)},
	}}
	if err := d.c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply configmap %s/%s: %w", d.ns, moduleConfigMapName(d.name), err)
	}
	return nil
}

// sourceKind names the kind of an Application's source: inline, configMap or module.
func sourceKind(s v1.ApplicationSource) string {
	switch {
	case s.Inline != nil:
		return "inline"
	case s.ConfigMap != nil:
		return "configMap"
	case s.Module != nil:
		return "module"
	}
	return ""
}

// newSource is the kind of source a deployed file becomes.
func newSource(f *wasmfile.File) v1.ApplicationSource {
	if f.Module != nil {
		return v1.ApplicationSource{Module: &v1.ModuleSource{}}
	}
	return v1.ApplicationSource{Inline: &v1.InlineSource{}}
}

// ownsField reports whether the CLI's server-side apply owns the field at path of obj.
func ownsField(obj metav1.Object, path ...string) bool {
	for _, mf := range obj.GetManagedFields() {
		if mf.Manager != fieldManager || mf.Operation != metav1.ManagedFieldsOperationApply || mf.FieldsV1 == nil {
			continue
		}
		var cur map[string]any
		if json.Unmarshal(mf.FieldsV1.Raw, &cur) != nil {
			continue
		}
		owned := true
		for _, p := range path {
			next, ok := cur["f:"+p].(map[string]any)
			if !ok {
				owned = false
				break
			}
			cur = next
		}
		if owned {
			return true
		}
	}
	return false
}
