package main

import (
	"io"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	gatewayctl "github.com/wasmbed/wasmbed/operator/gateway"
)

// TestOperatorArgs: the command line the operator gives the gateways it deploys is
// one this command accepts, and it means what the Gateway asks for.
func TestOperatorArgs(t *testing.T) {
	gw := &v1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Namespace: "edge", Name: "gw"},
		Spec: v1.GatewaySpec{Port: 9443, AllowTLS12: true, MaxDevices: 500,
			HeartbeatInterval: &metav1.Duration{Duration: 10 * time.Second}, HeartbeatTimeout: &metav1.Duration{Duration: 25 * time.Second}},
	}
	// The key reaches the gateway in the environment the operator sets.
	const key = "1e985ffbe45a77ee58253c6b392ae9272442cee842cec49dbf88fbb0fffd16a8"
	t.Setenv(gatewayctl.EnvDeploymentKey, key)
	var o options
	fs := newFlags(&o)
	fs.SetOutput(io.Discard)
	args := gatewayctl.Args(gw)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("cmd/gateway refuses the operator's arguments %v: %v", args, err)
	}
	if fs.NArg() != 0 {
		t.Fatalf("arguments left over: %v", fs.Args())
	}
	if o.deploymentKey != key {
		t.Fatalf("deployment key %q from %s, want %q", o.deploymentKey, gatewayctl.EnvDeploymentKey, key)
	}
	want := options{
		name: "edge/gw", addr: ":9443", httpAddr: ":8080", opsAddr: ":9090", tls12: true, maxSessions: 500,
		heartbeat: 10 * time.Second, heartbeatTimeout: 25 * time.Second,
		tlsDir: gatewayctl.TLSDir, stateDir: gatewayctl.StateDir, registry: "kube",
	}
	got := options{
		name: o.name, addr: o.addr, httpAddr: o.httpAddr, opsAddr: o.opsAddr, tls12: o.tls12, maxSessions: o.maxSessions,
		heartbeat: o.heartbeat, heartbeatTimeout: o.heartbeatTimeout, tlsDir: o.tlsDir, stateDir: o.stateDir, registry: o.registry,
	}
	if got != want {
		t.Errorf("the operator's arguments mean\n%+v\nwant\n%+v", got, want)
	}
}
func TestFetchAllowList(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		flag, store string
		want        string // the list, or "error: <substring>"
	}{
		{"", dir, ""},
		{"ghcr.io, *.example.com", dir, "ghcr.io,*.example.com"},
		{"", "oci+http://127.0.0.1:5000/wasmbed/modules", "127.0.0.1:5000"},
		{"ghcr.io", "oci://registry.wasmbed-system.svc.cluster.local:5000/wasmbed/modules", "ghcr.io,registry.wasmbed-system.svc.cluster.local:5000"},
		{"https://ghcr.io", dir, "error: --fetch-allow"},
	} {
		t.Run(tc.flag+" "+tc.store, func(t *testing.T) {
			store, err := openStore(tc.store)
			if err != nil {
				t.Fatal(err)
			}
			got, err := fetchAllowList(tc.flag, store)
			if msg, ok := strings.CutPrefix(tc.want, "error: "); ok {
				if err == nil || !strings.Contains(err.Error(), msg) {
					t.Fatalf("err = %v, want %q", err, msg)
				}
				return
			}
			if err != nil || got.String() != tc.want {
				t.Fatalf("allow-list = %q, %v; want %q", got.String(), err, tc.want)
			}
		})
	}
}
