package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
)

// resource is a Wasmbed kind as `wasmbed get` knows it: the names a user may type, and
// its columns, those of the CRD's additionalPrinterColumns.
type resource struct {
	plural  string
	names   []string
	newObj  func() client.Object
	newList func() client.ObjectList
	columns []column
}

var resources = []resource{
	{
		plural: "applications",
		names:  []string{"apps", "app", "application", "applications", "wbapp", "wbapps"},
		newObj: func() client.Object { return &v1.Application{} }, newList: func() client.ObjectList { return &v1.ApplicationList{} },
		columns: []column{
			{header: "PHASE", cell: func(o client.Object) string { return string(o.(*v1.Application).Status.Phase) }},
			{header: "DIGEST", cell: func(o client.Object) string {
				if b := o.(*v1.Application).Status.Build; b != nil {
					return b.Digest.String()
				}
				return ""
			}},
			{header: "PROGRESS", cell: func(o client.Object) string {
				if r := o.(*v1.Application).Status.Rollout; r != nil {
					return r.Progress
				}
				return ""
			}},
			{header: "READY", cell: func(o client.Object) string {
				return conditionStatus(o.(*v1.Application).Status.Conditions, v1.ConditionReady)
			}},
			{header: "REASON", wide: true, cell: func(o client.Object) string {
				return conditionReason(o.(*v1.Application).Status.Conditions, v1.ConditionReady)
			}},
			{header: "FAILED", wide: true, cell: func(o client.Object) string {
				if r := o.(*v1.Application).Status.Rollout; r != nil {
					return strconv.Itoa(int(r.Failed))
				}
				return ""
			}},
			{header: "RATE", wide: true, cell: func(o client.Object) string {
				if r := o.(*v1.Application).Status.Rollout; r != nil && r.Rate != nil {
					return strconv.Itoa(int(r.Rate.DevicesPerMinute))
				}
				return ""
			}},
			{header: "WAITING", wide: true, cell: func(o client.Object) string {
				if r := o.(*v1.Application).Status.Rollout; r != nil {
					return r.WaitingFor
				}
				return ""
			}},
			{header: "AGE", cell: func(o client.Object) string { return age(ptrTime(o.GetCreationTimestamp())) }},
		},
	},
	{
		plural: "devices",
		names:  []string{"devices", "device", "dev", "devs", "wbdev", "wbdevs"},
		newObj: func() client.Object { return &v1.Device{} }, newList: func() client.ObjectList { return &v1.DeviceList{} },
		columns: []column{
			{header: "BOARD", cell: func(o client.Object) string { return o.(*v1.Device).Spec.Board }},
			{header: "PHASE", cell: func(o client.Object) string { return string(o.(*v1.Device).Status.Phase) }},
			{header: "GATEWAY", cell: func(o client.Object) string { return o.(*v1.Device).Status.Gateway }},
			{header: "LAST SEEN", cell: func(o client.Object) string { return age(o.(*v1.Device).Status.LastSeen) }},
			{header: "FIRMWARE", wide: true, cell: func(o client.Object) string { return o.(*v1.Device).Status.FirmwareVersion }},
			{header: "KEY", wide: true, cell: func(o client.Object) string { return o.(*v1.Device).Status.PublicKeyHash }},
			{header: "AGE", cell: func(o client.Object) string { return age(ptrTime(o.GetCreationTimestamp())) }},
		},
	},
	{
		plural: "gateways",
		names:  []string{"gateways", "gateway", "gw", "gws", "wbgw", "wbgws"},
		newObj: func() client.Object { return &v1.Gateway{} }, newList: func() client.ObjectList { return &v1.GatewayList{} },
		columns: []column{
			{header: "ENDPOINT", cell: func(o client.Object) string { return o.(*v1.Gateway).Status.Endpoint }},
			{header: "DEVICES", cell: func(o client.Object) string {
				return strconv.Itoa(int(o.(*v1.Gateway).Status.ConnectedDevices))
			}},
			{header: "MAX", wide: true, cell: func(o client.Object) string { return strconv.Itoa(int(o.(*v1.Gateway).Spec.MaxDevices)) }},
			{header: "READY", cell: func(o client.Object) string {
				return conditionStatus(o.(*v1.Gateway).Status.Conditions, v1.ConditionReady)
			}},
			{header: "AGE", cell: func(o client.Object) string { return age(ptrTime(o.GetCreationTimestamp())) }},
		},
	},
}

// lookupResource finds a kind by any of its names.
func lookupResource(name string) (*resource, error) {
	name = strings.ToLower(name)
	for i := range resources {
		for _, n := range resources[i].names {
			if n == name || n+".wasmbed.dev" == name {
				return &resources[i], nil
			}
		}
	}
	return nil, usageError("unknown resource type %q: use apps, devices or gateways", name)
}

type getOptions struct {
	allNamespaces bool
	selector      string
	output        string
}

func newGetCommand(k *kubeFlags) *cobra.Command {
	var o getOptions
	cmd := &cobra.Command{
		Use:   "get apps|devices|gateways [NAME...]",
		Short: "list Applications, Devices or Gateways, or show some by name",
		Long: `List Applications, Devices or Gateways of the namespace (all namespaces with -A), or
show the ones named. The table has the columns kubectl shows for the CRDs; -o wide
adds the wide ones (an Application's Ready reason, a Device's firmware and key, a
Gateway's session limit).`,
		Example: `  # Applications of the current namespace
  wasmbed get apps

  # Devices of every namespace with their firmware and key
  wasmbed get devices -A -o wide

  # Devices labelled env=lab, as names for scripts
  wasmbed get devices -l env=lab -o name

  # One application as YAML
  wasmbed get app blink -o yaml`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError("name a resource type: apps, devices or gateways")
			}
			_, err := lookupResource(args[0])
			return err
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return []cobra.Completion{"apps", "devices", "gateways"}, cobra.ShellCompDirectiveNoFileComp
			}
			return completeNames(cmd, k, args[0]), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(o.output); err != nil {
				return err
			}
			res, _ := lookupResource(args[0])
			if o.allNamespaces && len(args) > 1 {
				return usageError("a resource cannot be retrieved by name across all namespaces (drop -A)")
			}
			kc, err := k.connect()
			if err != nil {
				return err
			}
			return runGet(cmd, kc, res, args[1:], o)
		},
	}
	cmd.Flags().BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "list the objects of every namespace")
	cmd.Flags().StringVarP(&o.selector, "selector", "l", "", "label selector, e.g. env=lab,board!=virtual")
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "output format: json, yaml, wide or name (default: a table)")
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return []cobra.Completion{"json", "yaml", "wide", "name"}, cobra.ShellCompDirectiveNoFileComp
	})
	k.bind(cmd.Flags())
	return cmd
}

func runGet(cmd *cobra.Command, kc *kube, res *resource, names []string, o getOptions) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), requestTimeout)
	defer cancel()
	scheme := kc.client.Scheme()
	var objs []client.Object
	if len(names) > 0 {
		for _, n := range names {
			obj := res.newObj()
			if err := kc.client.Get(ctx, client.ObjectKey{Namespace: kc.namespace, Name: n}, obj); err != nil {
				return fmt.Errorf("get %s %s/%s: %w", res.plural, kc.namespace, n, err)
			}
			objs = append(objs, obj)
		}
		return printObjects(cmd.OutOrStdout(), scheme, o.output, objs, res.columns, len(names) == 1, false)
	}
	var opts []client.ListOption
	if !o.allNamespaces {
		opts = append(opts, client.InNamespace(kc.namespace))
	}
	if o.selector != "" {
		sel, err := labels.Parse(o.selector)
		if err != nil {
			return usageError("--selector %q: %v", o.selector, err)
		}
		opts = append(opts, client.MatchingLabelsSelector{Selector: sel})
	}
	list := res.newList()
	if err := kc.client.List(ctx, list, opts...); err != nil {
		return fmt.Errorf("list %s: %w", res.plural, err)
	}
	_ = meta.EachListItem(list, func(ro runtime.Object) error {
		objs = append(objs, ro.(client.Object))
		return nil
	})
	if len(objs) == 0 && (o.output == outputTable || o.output == outputWide) {
		where := "in " + kc.namespace + " namespace"
		if o.allNamespaces {
			where = "in any namespace"
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "No %s found %s.\n", res.plural, where)
		return nil
	}
	return printObjects(cmd.OutOrStdout(), scheme, o.output, objs, res.columns, false, o.allNamespaces)
}

// completeNames lists the names of a kind for shell completion; errors complete nothing.
func completeNames(cmd *cobra.Command, k *kubeFlags, kind string) []cobra.Completion {
	res, err := lookupResource(kind)
	if err != nil {
		return nil
	}
	kc, err := k.connect()
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
	defer cancel()
	list := res.newList()
	if err := kc.client.List(ctx, list, client.InNamespace(kc.namespace)); err != nil {
		return nil
	}
	var out []cobra.Completion
	_ = meta.EachListItem(list, func(ro runtime.Object) error {
		out = append(out, ro.(client.Object).GetName())
		return nil
	})
	return out
}
