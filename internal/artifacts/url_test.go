package artifacts_test

import (
	"strings"
	"testing"

	"github.com/wasmbed/wasmbed/internal/artifacts"
)

func TestNewFromURL(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		url  string
		want string // "dir", an OCI store's String(), or an error substring after "error: "
	}{
		{dir, "dir"},
		{"file://" + dir, "dir"},
		{"file://localhost" + dir, "dir"},
		{"oci://registry.example/wasm/modules", "oci://registry.example/wasm/modules"},
		{"oci+https://registry.example/wasm", "oci://registry.example/wasm"},
		{"oci+http://127.0.0.1:5000/modules/", "oci+http://127.0.0.1:5000/modules"},
		{"", "error: empty"},
		{"file://nas" + dir, `error: file url names host "nas"`},
		{"file://", "error: names no path"},
		{"file:relative", "error: want scheme://"},
		{"oci:registry.example/x", "error: want scheme://"},
		{"oci://registry.example", "error: names no repository"},
		{"oci:///modules", "error: names no registry host"},
		{"oci://registry.example/modules:v1", `error: repository "modules:v1" carries a tag or digest`},
		{"oci://registry.example/modules@sha256:abc", "error: carries a tag or digest"},
		{"oci://registry.example/Modules", `error: "registry.example/Modules"`},
		{"oci://registry.example/modules?insecure=1", "error: unexpected query"},
		{"oci://user:hunter2@registry.example/modules", "error: credentials in the url"},
		{"s3://bucket/modules", `error: unsupported scheme "s3"`},
		{"https://registry.example/modules", `error: unsupported scheme "https"`},
	}
	for _, tc := range cases {
		t.Run(tc.url, func(t *testing.T) {
			s, err := artifacts.NewFromURL(tc.url, artifacts.NewClientConfig())
			if msg, ok := strings.CutPrefix(tc.want, "error: "); ok {
				if err == nil || !strings.Contains(err.Error(), msg) {
					t.Fatalf("err = %v, want %q", err, msg)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("err = %v shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch s := s.(type) {
			case *artifacts.Dir:
				if tc.want != "dir" {
					t.Fatalf("got a Dir, want %s", tc.want)
				}
			case *artifacts.OCI:
				if s.String() != tc.want {
					t.Fatalf("got %s, want %s", s.String(), tc.want)
				}
				if _, rest, _ := strings.Cut(tc.want, "://"); !strings.HasPrefix(rest, s.Registry()+"/") {
					t.Fatalf("Registry() = %q, want the host of %s", s.Registry(), tc.want)
				}
			default:
				t.Fatalf("got %T", s)
			}
		})
	}
}
