package main

import (
	"strings"
	"testing"
)

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
