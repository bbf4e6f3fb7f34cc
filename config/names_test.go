package config_test

import (
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/wasmbed/wasmbed/internal/testenv"
)

// taken are short names and plurals that common cluster software already registers;
// kubectl resolves a short name to whichever resource it meets first, so ours must not
// be among them.
var taken = map[string]string{
	"app": "Argo CD Application", "apps": "Argo CD Application",
	"appproj": "Argo CD AppProject", "appset": "Argo CD ApplicationSet", "appsets": "Argo CD ApplicationSet",
	"gw": "Istio Gateway", "gtw": "Gateway API Gateway",
	"ksvc": "Knative Service", "rt": "Knative Route", "cfg": "Knative Configuration", "rev": "Knative Revision",
	"cert": "cert-manager Certificate", "certs": "cert-manager Certificate",
	"po": "Pod", "svc": "Service", "deploy": "Deployment", "ds": "DaemonSet", "ev": "Event", "ep": "Endpoints", "sa": "ServiceAccount",
}

// TestShortNamesDoNotCollide checks that the Wasmbed CRDs' short names are their own.
func TestShortNamesDoNotCollide(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "300-crds", "*.yaml"))
	if err != nil || len(files) != 3 {
		t.Fatalf("CRD files %v (%v), want 3", files, err)
	}
	for _, f := range files {
		for _, o := range objects(t, f) {
			short, _, err := unstructured.NestedStringSlice(o.Object, "spec", "names", "shortNames")
			if err != nil || len(short) == 0 {
				t.Errorf("%s: no short names (%v)", o.GetName(), err)
			}
			for _, s := range short {
				if who, ok := taken[s]; ok {
					t.Errorf("%s: short name %q is already %s's", o.GetName(), s, who)
				}
			}
		}
	}
}
