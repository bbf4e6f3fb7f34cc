package console

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite openapi.yaml's object schemas from the CRDs")

// crdSchemas are the console API's object schemas, taken from the CRDs that
// controller-gen generates from api/v1alpha1: the API cannot describe objects other than
// the ones the apiserver stores.
var crdSchemas = map[string]string{
	"Device":      "wasmbed.dev_devices.yaml",
	"Application": "wasmbed.dev_applications.yaml",
	"Gateway":     "wasmbed.dev_gateways.yaml",
}

// crdSchema returns the openAPIV3Schema of the served version of the CRD in file, as a
// node, with metadata given the ObjectMeta fields the console returns.
func crdSchema(t *testing.T, file string) *yaml.Node {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "config", "300-crds", file))
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := sigsyaml.UnmarshalStrict(raw, &crd); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if len(crd.Spec.Versions) != 1 || crd.Spec.Versions[0].Schema == nil {
		t.Fatalf("%s: want one version with a schema", file)
	}
	s := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.DeepCopy()
	s.Required = append(s.Required, "metadata")
	s.Properties["metadata"] = apiextensionsv1.JSONSchemaProps{Ref: ptr("#/components/schemas/ObjectMeta")}
	j, err := sigsyaml.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var n yaml.Node
	if err := yaml.Unmarshal(j, &n); err != nil {
		t.Fatal(err)
	}
	return n.Content[0]
}

func ptr(s string) *string { return &s }

// TestOpenAPIObjectsAreTheCRDs checks that openapi.yaml's Device, Application and
// Gateway schemas are the CRDs' (make generate rewrites them with -update), so the UI's
// types, generated from openapi.yaml, follow api/v1alpha1.
func TestOpenAPIObjectsAreTheCRDs(t *testing.T) {
	raw, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	schemas := lookup(t, doc.Content[0], "components", "schemas")
	for name, file := range crdSchemas {
		want := crdSchema(t, file)
		got := child(schemas, name)
		if got == nil {
			schemas.Content = append(schemas.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: name}, want)
			continue
		}
		*got = *want
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("openapi.yaml", out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(out.Bytes(), raw) {
		t.Fatal("openapi.yaml's object schemas are not the CRDs': run make generate")
	}
}

// lookup walks a mapping node along keys.
func lookup(t *testing.T, n *yaml.Node, keys ...string) *yaml.Node {
	t.Helper()
	for _, k := range keys {
		c := child(n, k)
		if c == nil {
			t.Fatalf("openapi.yaml has no %s", strings.Join(keys, "."))
		}
		n = c
	}
	return n
}

// child returns the value of key in mapping node n, or nil.
func child(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// TestUITypesAreCurrent checks that the UI's types (web/src/api-types.ts) are what
// openapi-typescript makes of openapi.yaml now (`npm --prefix console/web run gen:api`
// rewrites them), so a change of the API or of the CRDs reaches the UI's type check.
func TestUITypesAreCurrent(t *testing.T) {
	cli := filepath.Join("web", "node_modules", "openapi-typescript", "bin", "cli.js")
	if _, err := os.Stat(cli); err != nil {
		t.Fatalf("openapi-typescript is not installed (%v): run console/web/install.sh (make test does, through hack/deps.sh)", err)
	}
	out := filepath.Join(t.TempDir(), "api-types.ts")
	cmd := exec.Command("node", cli, "openapi.yaml", "--default-non-nullable", "false", "-o", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openapi-typescript: %v\n%s", err, msg)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("web", "src", "api-types.ts"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("console/web/src/api-types.ts is not what openapi.yaml makes: run npm --prefix console/web run gen:api, rebuild the UI (npm --prefix console/web run build) and commit both")
	}
}

// TestOpenAPIMatchesTheGoTypes checks that the API's own schemas name exactly the JSON
// fields of the Go types the handlers read and write, and require those always written.
func TestOpenAPIMatchesTheGoTypes(t *testing.T) {
	raw, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Required   []string       `yaml:"required"`
				Properties map[string]any `yaml:"properties"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for name, typ := range map[string]reflect.Type{
		"WhoAmI": reflect.TypeFor[WhoAmI](), "ApplicationRequest": reflect.TypeFor[ApplicationRequest](),
		"DeviceLog": reflect.TypeFor[DeviceLog](), "LogLine": reflect.TypeFor[LogLine](),
		"Error": reflect.TypeFor[Error](), "CloudEvent": reflect.TypeFor[CloudEvent](),
	} {
		s, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("openapi.yaml has no schema %s", name)
			continue
		}
		var fields, always []string
		for i := range typ.NumField() {
			tag, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			if tag == "" || tag == "-" {
				continue
			}
			fields = append(fields, tag)
			if !strings.Contains(typ.Field(i).Tag.Get("json"), "omitempty") {
				always = append(always, tag)
			}
		}
		var props []string
		for p := range s.Properties {
			props = append(props, p)
		}
		slices.Sort(fields)
		slices.Sort(props)
		if !slices.Equal(fields, props) {
			t.Errorf("%s: openapi.yaml has properties %v, the Go type writes %v", name, props, fields)
		}
		for _, f := range always {
			if !slices.Contains(s.Required, f) && name != "ApplicationRequest" {
				t.Errorf("%s: %q is always written but not required in openapi.yaml", name, f)
			}
		}
	}
}
