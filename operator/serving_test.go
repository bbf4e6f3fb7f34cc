package operator_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"

	"github.com/wasmbed/wasmbed/internal/testenv"
	"github.com/wasmbed/wasmbed/operator"
)

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// serviceAccountToken creates namespace/name and returns a token the apiserver issues
// to it for the apiserver's own audience, as a pod's default token is.
func serviceAccountToken(t *testing.T, ctx context.Context, namespace, name string) string {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if err := env.Client.Create(ctx, sa); err != nil {
		t.Fatal(err)
	}
	req := &authnv1.TokenRequest{}
	if err := env.Client.SubResource("token").Create(ctx, sa, req); err != nil {
		t.Fatal(err)
	}
	return req.Status.Token
}

// get fetches url with an optional bearer token, trusting any certificate (the
// metrics server's is self-signed, as a scraper is told to accept).
func get(ctx context.Context, url, token string) (int, string, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the test checks authentication, not the certificate
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), nil
}

// TestMetricsNeedAnAuthorizedCaller checks that /metrics is served over HTTPS only to
// callers the apiserver authenticates and authorizes for it, as the
// wasmbed-metrics-reader ClusterRole grants.
func TestMetricsNeedAnAuthorizedCaller(t *testing.T) {
	metrics := freeAddr(t)
	h := startWith(t, func(o *operator.Options) { o.MetricsAddr = metrics })
	ctx := h.ctx
	stranger := serviceAccountToken(t, ctx, h.ns, "stranger")
	scraper := serviceAccountToken(t, ctx, h.ns, "prometheus")
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: h.ns + "-metrics"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "wasmbed-metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: h.ns, Name: "prometheus"}},
	}
	applyConfigRole(t, ctx, "400-metrics-reader.yaml")
	if err := env.Client.Create(ctx, binding); err != nil {
		t.Fatal(err)
	}
	url := "https://" + metrics + "/metrics"
	cases := []struct {
		name, token string
		status      int
	}{
		{"no token", "", http.StatusUnauthorized},
		// controller-runtime's filter answers a token the apiserver cannot review with 500.
		{"a forged token", "not-a-token", http.StatusInternalServerError},
		{"a caller without the role", stranger, http.StatusForbidden},
		{"the scraper", scraper, http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var status int
			var body string
			h.eventually("the metrics server", func() bool {
				var err error
				status, body, err = get(ctx, url, tc.token)
				return err == nil
			})
			if status != tc.status {
				t.Fatalf("GET /metrics: %d %q, want %d", status, body, tc.status)
			}
			if tc.status == http.StatusOK && !strings.Contains(body, "controller_runtime_reconcile_total") {
				t.Errorf("the scraper got no controller metrics: %.200q", body)
			}
		})
	}
	if status, _, err := get(ctx, "http://"+metrics+"/metrics", scraper); err == nil && status == http.StatusOK {
		t.Error("metrics were served over plain HTTP")
	}
}

// TestReadyzMeansServing checks that the operator reports ready only once its events
// receiver serves, and not while it cannot read what it needs.
func TestReadyzMeansServing(t *testing.T) {
	t.Run("ready once the receiver serves", func(t *testing.T) {
		health := freeAddr(t)
		var served atomic.Bool
		h := startWith(t, func(o *operator.Options) {
			o.HealthAddr = health
			o.Ready = func(net.Addr) { served.Store(true) }
		})
		h.eventually("ready", func() bool {
			status, _, err := get(h.ctx, "http://"+health+"/readyz", "")
			if err == nil && status == http.StatusOK && !served.Load() {
				t.Fatal("/readyz said ready before the receiver served")
			}
			return err == nil && status == http.StatusOK
		})
	})
	t.Run("not ready while the cache cannot sync", func(t *testing.T) {
		health := freeAddr(t)
		// A user with no permissions: its informers never sync.
		nobody := rest.CopyConfig(env.Config)
		nobody.Impersonate = rest.ImpersonationConfig{UserName: "nobody"}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- operator.Run(ctx, operator.Options{
				Config: nobody, Sender: &broker{}, EventsAddr: "127.0.0.1:0", MetricsAddr: "0", HealthAddr: health,
				Logger: logr.Discard(), SkipNameValidation: true,
			})
		}()
		defer func() { cancel(); <-done }()
		var status int
		var body string
		deadline := time.Now().Add(20 * time.Second)
		for {
			var err error
			status, body, err = get(ctx, "http://"+health+"/readyz?verbose", "")
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		// controller-runtime answers a failed check with 500; a kubelet takes any status
		// from 400 up as not ready.
		if status != http.StatusInternalServerError || !strings.Contains(body, "events-receiver failed") {
			t.Errorf("/readyz: %d %q, want 500 naming the events receiver", status, body)
		}
		if status, _, err := get(ctx, "http://"+health+"/healthz", ""); err != nil || status != http.StatusOK {
			t.Errorf("/healthz: %d %v, want 200 (alive, only not ready)", status, err)
		}
	})
}

// applyConfigRole creates the ClusterRole in config/200-rbac/<file> as an administrator
// applies it.
func applyConfigRole(t *testing.T, ctx context.Context, file string) {
	t.Helper()
	for _, o := range configObjects(t, "200-rbac/"+file) {
		if err := env.Client.Create(ctx, o); err != nil && !strings.Contains(err.Error(), "already exists") {
			t.Fatal(fmt.Errorf("apply %s: %w", file, err))
		}
	}
}

// configObjects decodes the objects of config/<path>.
func configObjects(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", path))
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	var out []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}
