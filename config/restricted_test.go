package config_test

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// seccompExceptions are containers that may run without RuntimeDefault, and why.
var seccompExceptions = map[string]string{
	"wasmbed-compile": "bubblewrap needs unshare and mount (600-functions.yaml, builder/README.md)",
}

// TestPodsAreRestricted: every pod template in config/ (Deployments and Knative
// Services) meets the restricted Pod Security Standard: non-root, no privilege
// escalation, every capability dropped, and the runtime's seccomp profile.
func TestPodsAreRestricted(t *testing.T) {
	pods := 0
	for _, file := range manifests(t) {
		for _, obj := range objects(t, file) {
			var path []string
			switch obj.GetKind() {
			case "Deployment":
				path = []string{"spec", "template", "spec"}
			case "Service":
				if obj.GetAPIVersion() != "serving.knative.dev/v1" {
					continue
				}
				path = []string{"spec", "template", "spec"}
			default:
				continue
			}
			spec, ok, _ := unstructured.NestedMap(obj.Object, path...)
			if !ok {
				t.Errorf("%s %s has no pod template", obj.GetKind(), obj.GetName())
				continue
			}
			pods++
			podNonRoot, _, _ := unstructured.NestedBool(spec, "securityContext", "runAsNonRoot")
			podSeccomp, _, _ := unstructured.NestedString(spec, "securityContext", "seccompProfile", "type")
			containers, _, _ := unstructured.NestedSlice(spec, "containers")
			for _, c := range containers {
				cm := c.(map[string]any)
				name := obj.GetName()
				nonRoot, set, _ := unstructured.NestedBool(cm, "securityContext", "runAsNonRoot")
				if !(nonRoot || (!set && podNonRoot)) {
					t.Errorf("%s: may run as root", name)
				}
				if esc, ok, _ := unstructured.NestedBool(cm, "securityContext", "allowPrivilegeEscalation"); !ok || esc {
					t.Errorf("%s: allowPrivilegeEscalation is not false", name)
				}
				if drop, _, _ := unstructured.NestedStringSlice(cm, "securityContext", "capabilities", "drop"); len(drop) != 1 || drop[0] != "ALL" {
					t.Errorf("%s: capabilities drop %v, want [ALL]", name, drop)
				}
				if add, _, _ := unstructured.NestedStringSlice(cm, "securityContext", "capabilities", "add"); len(add) > 0 {
					t.Errorf("%s: adds capabilities %v", name, add)
				}
				seccomp, set, _ := unstructured.NestedString(cm, "securityContext", "seccompProfile", "type")
				if !set {
					seccomp = podSeccomp
				}
				if seccomp != "RuntimeDefault" && seccomp != "Localhost" && seccompExceptions[name] == "" {
					t.Errorf("%s: seccomp profile %q, want RuntimeDefault (or Localhost)", name, seccomp)
				}
			}
		}
	}
	if pods < 5 {
		t.Errorf("checked %d pod templates; config/ has more", pods)
	}
}
