// Package config_test checks that every manifest under config/ is accepted by a real
// apiserver, with the Wasmbed and Knative CRDs installed, in the order
// `ko apply -Rf config/` applies them.
package config_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/internal/testenv"
)

// manifests returns config/'s YAML files in the order ko (and kubectl -R) reads them.
func manifests(t *testing.T) []string {
	t.Helper()
	root := filepath.Join(testenv.RepoRoot(), "config")
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	if len(files) == 0 {
		t.Fatal("no manifests under config/")
	}
	return files
}

func objects(t *testing.T, file string) []*unstructured.Unstructured {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	var out []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return out
			}
			t.Fatalf("%s: parse: %v", file, err)
		}
		if len(u.Object) == 0 {
			continue
		}
		out = append(out, u)
	}
}

func TestManifestsApplyOnARealAPIServer(t *testing.T) {
	env := testenv.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, file := range manifests(t) {
		rel, _ := filepath.Rel(testenv.RepoRoot(), file)
		for _, obj := range objects(t, file) {
			name := rel + ": " + obj.GetKind() + "/" + obj.GetName()
			if obj.GetKind() == "" || obj.GetName() == "" {
				t.Errorf("%s: object without kind or name", rel)
				continue
			}
			if err := env.Client.Patch(ctx, obj.DeepCopy(), client.Apply, client.FieldOwner("config-test"), client.ForceOwnership, client.DryRunAll); err != nil {
				t.Errorf("%s: server-side dry-run apply: %v", name, err)
				continue
			}
			// Apply for real so later manifests find their namespace, as ko apply would.
			if err := env.Client.Patch(ctx, obj.DeepCopy(), client.Apply, client.FieldOwner("config-test"), client.ForceOwnership); err != nil {
				t.Errorf("%s: apply: %v", name, err)
			}
		}
	}
}

// TestTriggersMatchSubscriptions keeps config/500-eventing in step with the table the
// embedded broker uses (events.Subscriptions).
func TestTriggersMatchSubscriptions(t *testing.T) {
	got := map[string]bool{}
	for _, file := range manifests(t) {
		for _, obj := range objects(t, file) {
			if obj.GetKind() != "Trigger" {
				continue
			}
			typ, _, _ := unstructured.NestedString(obj.Object, "spec", "filter", "attributes", "type")
			sub, _, _ := unstructured.NestedString(obj.Object, "spec", "subscriber", "ref", "name")
			got[strings.TrimPrefix(sub, "wasmbed-")+" "+typ] = true
		}
	}
	want := map[string]bool{}
	for consumer, types := range events.Subscriptions {
		for _, typ := range types {
			want[consumer+" "+string(typ)] = true
		}
	}
	for k := range want {
		if !got[k] {
			t.Errorf("no Trigger for %s", k)
		}
	}
	for k := range got {
		if !want[k] {
			t.Errorf("Trigger %s is not in events.Subscriptions", k)
		}
	}
}

// orderedTypes are the events a gateway sends about one device, with the device as
// their partitionkey (gateway.Server.emitFor).
var orderedTypes = map[string]bool{
	string(events.DeviceConnected):     true,
	string(events.DeviceDisconnected):  true,
	string(events.DeviceTelemetry):     true,
	string(events.DeploymentSucceeded): true,
	string(events.DeploymentFailed):    true,
}

// TestDeviceTriggersAskForOrder: the Triggers of events partitioned by device ask
// for ordered delivery, and no other Trigger does (it would serialise them for nothing).
func TestDeviceTriggersAskForOrder(t *testing.T) {
	const annotation = "kafka.eventing.knative.dev/delivery.order"
	seen := 0
	for _, file := range manifests(t) {
		for _, obj := range objects(t, file) {
			if obj.GetKind() != "Trigger" {
				continue
			}
			typ, _, _ := unstructured.NestedString(obj.Object, "spec", "filter", "attributes", "type")
			got := obj.GetAnnotations()[annotation]
			switch {
			case orderedTypes[typ] && got != "ordered":
				t.Errorf("Trigger %s (%s): %s is %q, want ordered", obj.GetName(), typ, annotation, got)
			case !orderedTypes[typ] && got != "":
				t.Errorf("Trigger %s (%s): %s is set, but its events are not partitioned by device", obj.GetName(), typ, annotation)
			}
			if orderedTypes[typ] {
				seen++
			}
		}
	}
	if seen < len(orderedTypes) {
		t.Errorf("%d Triggers of device events; every type has at least one", seen)
	}
}

// TestConfigMapsComeFirst: a ConfigMap config/ defines is applied before the objects
// that read it, so that no revision starts without it.
func TestConfigMapsComeFirst(t *testing.T) {
	defined := map[string]string{} // ConfigMap name -> file
	files := manifests(t)
	for _, file := range files {
		for _, obj := range objects(t, file) {
			if obj.GetKind() == "ConfigMap" {
				defined[obj.GetName()] = file
			}
		}
	}
	if len(defined) == 0 {
		t.Fatal("no ConfigMap in config/")
	}
	checked := 0
	for _, file := range files {
		for _, obj := range objects(t, file) {
			for _, name := range configMapsRead(obj.Object) {
				def, ok := defined[name]
				if !ok {
					continue // made by the admin or by Kubernetes (kube-root-ca.crt)
				}
				checked++
				if def >= file {
					t.Errorf("%s reads ConfigMap %s, defined in %s, which ko applies later", file, name, def)
				}
			}
		}
	}
	if checked == 0 {
		t.Error("no object reads a ConfigMap config/ defines: the check read nothing")
	}
}

// configMapsRead returns the names of ConfigMaps an object refers to (configMapKeyRef,
// configMapRef, configMap volumes and projections).
func configMapsRead(v any) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if k == "configMapKeyRef" || k == "configMapRef" || k == "configMap" {
				if m, ok := e.(map[string]any); ok {
					if n, ok := m["name"].(string); ok {
						out = append(out, n)
					}
				}
			}
			out = append(out, configMapsRead(e)...)
		}
	case []any:
		for _, e := range x {
			out = append(out, configMapsRead(e)...)
		}
	}
	return out
}
