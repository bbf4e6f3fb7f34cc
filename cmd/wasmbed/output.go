package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"
)

// Output formats of the commands that list objects; "" is the table.
const (
	outputTable = ""
	outputWide  = "wide"
	outputJSON  = "json"
	outputYAML  = "yaml"
	outputName  = "name"
)

// checkOutput refuses an unknown -o value.
func checkOutput(o string) error {
	switch o {
	case outputTable, outputWide, outputJSON, outputYAML, outputName:
		return nil
	}
	return usageError("--output %q: use json, yaml, wide or name (default: a table)", o)
}

// printData writes v as indented JSON or as YAML.
func printData(w io.Writer, format string, v any) error {
	var (
		b   []byte
		err error
	)
	if format == outputYAML {
		b, err = yaml.Marshal(v)
	} else {
		b, err = json.MarshalIndent(v, "", "    ")
		b = append(b, '\n')
	}
	if err != nil {
		return fmt.Errorf("encode %s: %w", format, err)
	}
	_, err = w.Write(b)
	return err
}

// column is one column of a table: its header, whether only -o wide shows it, and how
// to read its cell from an object.
type column struct {
	header string
	wide   bool
	cell   func(client.Object) string
}

// printTable writes objs as kubectl does: NAME (after NAMESPACE with -A), then the
// columns, then -o wide's.
func printTable(w io.Writer, objs []client.Object, cols []column, wide, withNamespace bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	var header []string
	if withNamespace {
		header = append(header, "NAMESPACE")
	}
	header = append(header, "NAME")
	for _, c := range cols {
		if wide || !c.wide {
			header = append(header, c.header)
		}
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, o := range objs {
		var row []string
		if withNamespace {
			row = append(row, o.GetNamespace())
		}
		row = append(row, o.GetName())
		for _, c := range cols {
			if wide || !c.wide {
				row = append(row, c.cell(o))
			}
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// age is a timestamp as kubectl's date columns show it: the time since, e.g. "5m".
func age(t *metav1.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return duration.HumanDuration(time.Since(t.Time))
}

// conditionStatus and conditionReason read a condition for a column.
func conditionStatus(conds []metav1.Condition, typ string) string {
	if c := meta.FindStatusCondition(conds, typ); c != nil {
		return string(c.Status)
	}
	return ""
}

func conditionReason(conds []metav1.Condition, typ string) string {
	if c := meta.FindStatusCondition(conds, typ); c != nil {
		return c.Reason
	}
	return ""
}

// printObjects writes objs in format: a table, kubectl's "kind.group/name" lines, or
// JSON/YAML of one object (single) or of a v1 List.
func printObjects(w io.Writer, scheme *runtime.Scheme, format string, objs []client.Object, cols []column, single, withNamespace bool) error {
	switch format {
	case outputTable, outputWide:
		return printTable(w, objs, cols, format == outputWide, withNamespace)
	case outputName:
		for _, o := range objs {
			gvk, err := apiutil.GVKForObject(o, scheme)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "%s.%s/%s\n", strings.ToLower(gvk.Kind), gvk.Group, o.GetName())
		}
		return nil
	}
	items := make([]client.Object, 0, len(objs))
	for _, o := range objs {
		o = o.DeepCopyObject().(client.Object)
		gvk, err := apiutil.GVKForObject(o, scheme)
		if err != nil {
			return err
		}
		o.GetObjectKind().SetGroupVersionKind(gvk)
		o.SetManagedFields(nil)
		items = append(items, o)
	}
	if single && len(items) == 1 {
		return printData(w, format, items[0])
	}
	return printData(w, format, map[string]any{"apiVersion": "v1", "kind": "List", "metadata": map[string]any{"resourceVersion": ""}, "items": items})
}

// ptrTime returns a pointer to t, for the timestamp getters that return values.
func ptrTime(t metav1.Time) *metav1.Time { return &t }
