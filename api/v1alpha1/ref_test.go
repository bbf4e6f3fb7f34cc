package v1alpha1_test

import (
	"encoding/json"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
)

func TestParseRef(t *testing.T) {
	tests := []struct {
		in      string
		want    v1.Ref
		wantErr string
	}{
		{in: "wasmbed-system/gateway", want: v1.Ref{Namespace: "wasmbed-system", Name: "gateway"}},
		{in: "default/sim-0.eu", want: v1.Ref{Namespace: "default", Name: "sim-0.eu"}},
		{in: "gateway", wantErr: "is not <namespace>/<name>"},
		{in: "wasmbed-system.gateway", wantErr: "is not <namespace>/<name>"},
		{in: "/gateway", wantErr: "namespace"},
		{in: "ns/", wantErr: "name"},
		{in: "Default/gw", wantErr: "namespace"},
		{in: "a.b/gw", wantErr: "namespace"},
		{in: "ns/gw/extra", wantErr: "name"},
		{in: "ns/" + strings.Repeat("x", 300), wantErr: "name"},
	}
	for _, tt := range tests {
		got, err := v1.ParseRef(tt.in)
		switch {
		case tt.wantErr == "" && (err != nil || got != tt.want):
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ParseRef(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
		case tt.wantErr == "" && (got.String() != tt.in || got.Extension() != strings.Replace(tt.in, "/", ".", 1)):
			t.Errorf("%q: String %q Extension %q", tt.in, got.String(), got.Extension())
		}
	}
}

func TestRefJSON(t *testing.T) {
	type payload struct {
		Gateway v1.Ref `json:"gateway,omitzero"`
	}
	b, err := json.Marshal(payload{Gateway: v1.Ref{Namespace: "ns", Name: "gw"}})
	if err != nil || string(b) != `{"gateway":"ns/gw"}` {
		t.Fatalf("marshal = %s, %v", b, err)
	}
	if b, _ := json.Marshal(payload{}); string(b) != `{}` {
		t.Fatalf("zero Ref marshals to %s", b)
	}
	var p payload
	if err := json.Unmarshal([]byte(`{"gateway":"ns.gw"}`), &p); err == nil {
		t.Fatal("the extension form is accepted in JSON")
	}
	if err := json.Unmarshal([]byte(`{"gateway":"ns/gw"}`), &p); err != nil || p.Gateway.Name != "gw" {
		t.Fatalf("unmarshal = %+v, %v", p, err)
	}
}

func TestGatewayRef(t *testing.T) {
	def := v1.Ref{Namespace: "wasmbed-system", Name: "gateway"}
	dev := func(status, spec string) *v1.Device {
		d := &v1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: "fleet", Name: "d1"}}
		d.Status.Gateway, d.Spec.Gateway = status, spec
		return d
	}
	tests := []struct {
		name string
		dev  *v1.Device
		want string
	}{
		{"session wins", dev("edge/gw-1", "gw-2"), "edge/gw-1"},
		{"spec, in the device's namespace", dev("", "gw-2"), "fleet/gw-2"},
		{"default", dev("", ""), "wasmbed-system/gateway"},
		{"an unreadable status falls through to the spec", dev("garbage", "gw-2"), "fleet/gw-2"},
	}
	for _, tt := range tests {
		if got := tt.dev.GatewayRef(def).String(); got != tt.want {
			t.Errorf("%s: GatewayRef = %s, want %s", tt.name, got, tt.want)
		}
	}
}
