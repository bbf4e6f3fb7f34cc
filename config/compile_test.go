package config_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wasmbed/wasmbed/internal/testenv"
)

// TestCompileServiceHoldsNoCredentials checks the compile function's Service as the
// apiserver stores it (a field its schema dropped would not count): no service
// account token, no Secret, non-root, read-only root, no privilege escalation, no
// capabilities, and a writable /tmp for build directories.
func TestCompileServiceHoldsNoCredentials(t *testing.T) {
	var svc *unstructured.Unstructured
	for _, obj := range objects(t, filepath.Join(testenv.RepoRoot(), "config", "600-functions.yaml")) {
		if obj.GetKind() == "Service" && obj.GetName() == "wasmbed-compile" {
			svc = obj
		}
	}
	if svc == nil {
		t.Fatal("no Service wasmbed-compile in config/600-functions.yaml")
	}
	env := testenv.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, file := range manifests(t) {
		for _, obj := range objects(t, file) {
			if obj.GetKind() == "Namespace" {
				if err := env.Client.Patch(ctx, obj, client.Apply, client.FieldOwner("config-test"), client.ForceOwnership); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := env.Client.Patch(ctx, svc, client.Apply, client.FieldOwner("config-test"), client.ForceOwnership, client.DryRunAll); err != nil {
		t.Fatalf("apply: %v", err)
	}
	var s servingv1.Service
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(svc.Object, &s); err != nil {
		t.Fatal(err)
	}
	pod := s.Spec.Template.Spec.PodSpec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	checks := []struct {
		what string
		ok   bool
	}{
		{"automountServiceAccountToken: false", pod.AutomountServiceAccountToken != nil && !*pod.AutomountServiceAccountToken},
		{"no Secret, and no token but one for the apiserver (TokenReviews)", !secretVolumes(pod.Volumes)},
		{"no environment from a Secret", !secretEnv(c)},
		{"runAsNonRoot: true", sc.RunAsNonRoot != nil && *sc.RunAsNonRoot},
		{"a non-root runAsUser", sc.RunAsUser != nil && *sc.RunAsUser != 0},
		{"readOnlyRootFilesystem: true", sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem},
		{"allowPrivilegeEscalation: false", sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation},
		{"capabilities dropped", sc.Capabilities != nil && len(sc.Capabilities.Drop) == 1 && sc.Capabilities.Drop[0] == "ALL" && len(sc.Capabilities.Add) == 0},
		{"an emptyDir on /tmp for build directories", tmpIsEmptyDir(pod.Volumes, c.VolumeMounts)},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("the compile Service as stored has not %s", c.what)
		}
	}
}

// secretVolumes reports a Secret, or a projected token for anything but the apiserver
// (the one compile needs to create TokenReviews, with the apiserver's CA).
func secretVolumes(vols []corev1.Volume) bool {
	for _, v := range vols {
		if v.Secret != nil {
			return true
		}
		if v.Projected == nil {
			continue
		}
		for _, src := range v.Projected.Sources {
			if src.Secret != nil || (src.ServiceAccountToken != nil && src.ServiceAccountToken.Audience != "") || src.ClusterTrustBundle != nil {
				return true
			}
		}
	}
	return false
}

func secretEnv(c corev1.Container) bool {
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			return true
		}
	}
	for _, e := range c.EnvFrom {
		if e.SecretRef != nil {
			return true
		}
	}
	return false
}

func tmpIsEmptyDir(vols []corev1.Volume, mounts []corev1.VolumeMount) bool {
	for _, m := range mounts {
		if m.MountPath != "/tmp" || m.ReadOnly {
			continue
		}
		for _, v := range vols {
			if v.Name == m.Name && v.EmptyDir != nil {
				return true
			}
		}
	}
	return false
}
