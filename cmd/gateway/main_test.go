package main

import (
	"io"
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
