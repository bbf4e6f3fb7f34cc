// Package rbactest runs a reconciler's tests with no more permission than its
// +kubebuilder:rbac markers grant: it generates the ClusterRole from the markers with
// controller-gen, binds it to a fresh user of the test apiserver and returns that
// user's rest.Config.
package rbactest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/wasmbed/wasmbed/internal/testenv"
)

// Role returns the ClusterRole controller-gen makes from the markers of the package
// in dir (relative to the repository root, e.g. "./operator/device").
func Role(name, dir string) (*rbacv1.ClusterRole, error) {
	root := testenv.RepoRoot()
	gen := filepath.Join(root, "bin", "controller-gen")
	if _, err := os.Stat(gen); err != nil {
		return nil, fmt.Errorf("controller-gen not found at %s: run make generate once", gen)
	}
	cmd := exec.Command(gen, "rbac:roleName="+name, "paths="+dir, "output:rbac:stdout")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("controller-gen rbac %s: %w: %s", dir, err, stderr.String())
	}
	// The output is one YAML document, preceded by a "---" line.
	out = bytes.TrimPrefix(bytes.TrimSpace(out), []byte("---"))
	var role rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(out, &role); err != nil {
		return nil, fmt.Errorf("parse generated role: %w", err)
	}
	if len(role.Rules) == 0 {
		return nil, fmt.Errorf("no rbac markers in %s", dir)
	}
	return &role, nil
}

// Config creates user on env's apiserver, grants it the ClusterRole generated from
// the markers in dir, and returns a rest.Config that authenticates as user.
func Config(ctx context.Context, env *testenv.Env, user, dir string) (*rest.Config, error) {
	role, err := Role(user, dir)
	if err != nil {
		return nil, err
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	if err := env.Client.Create(ctx, role); err != nil {
		return nil, fmt.Errorf("create role: %w", err)
	}
	if err := env.Client.Create(ctx, binding); err != nil {
		return nil, fmt.Errorf("create role binding: %w", err)
	}
	u, err := env.Environment.ControlPlane.AddUser(envtest.User{Name: user}, env.Config)
	if err != nil {
		return nil, fmt.Errorf("add user %s: %w", user, err)
	}
	return u.Config(), nil
}
