package main

import (
	"archive/tar"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmbed/wasmbed/hack/images/layer"
)

func root(t *testing.T) string {
	t.Helper()
	r, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestStaticImageIsPinned builds the static base from hack/images/static.lock, as
// `make images` does (without pushing), and checks that ko.yaml pins its digest: the
// build is reproducible, and ko.yaml is current. It also reads what the image holds.
func TestStaticImageIsPinned(t *testing.T) {
	ctx := context.Background()
	r := root(t)
	lock, err := readLock(r, "static")
	if err != nil {
		t.Fatal(err)
	}
	base, err := staticLayer(ctx, t.TempDir(), lock, defaultDebCache())
	if err != nil {
		t.Fatal(err)
	}
	idx, err := staticIndex(base)
	if err != nil {
		t.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	koYAML, err := os.ReadFile(filepath.Join(r, "ko.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pins, err := Pins(koYAML)
	if err != nil {
		t.Fatal(err)
	}
	if pins["static"] != d.String() {
		t.Errorf("ko.yaml pins the static base at %s, the build makes %s: pin the new digest if hack/images/static.lock changed, otherwise the build is not reproducible", pins["static"], d)
	}

	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 2 || im.Manifests[0].Platform.Architecture != "amd64" || im.Manifests[1].Platform.Architecture != "arm64" {
		t.Fatalf("index %+v, want linux/amd64 and linux/arm64", im.Manifests)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" || !cf.Created.Time.Equal(layer.Epoch) {
		t.Errorf("user %q, created %v; want 65532:65532 at the epoch", cf.Config.User, cf.Created)
	}

	files := map[string][]byte{}
	modes := map[string]int64{}
	l, err := img.LayerByDiffID(cf.RootFS.DiffIDs[0])
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name], modes[h.Name] = b, h.Mode
	}
	if !strings.Contains(string(files["etc/passwd"]), "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd has no nonroot user:\n%s", files["etc/passwd"])
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(files[certBundle]) || len(strings.Split(string(files[certBundle]), "BEGIN CERTIFICATE")) < 100 {
		t.Errorf("%s holds no usable bundle of CA certificates", certBundle)
	}
	for _, want := range []string{"usr/share/zoneinfo/Europe/Berlin", "usr/share/zoneinfo/UTC", "etc/services", "usr/share/doc/ca-certificates/copyright"} {
		if _, ok := files[want]; !ok {
			t.Errorf("no %s in the static base", want)
		}
	}
	if modes["tmp/"] != 0o1777 {
		t.Errorf("/tmp has mode %o, want 1777", modes["tmp/"])
	}
}

func TestPins(t *testing.T) {
	tests := []struct {
		name, koYAML string
		want         map[string]string
		fails        bool
	}{
		{"digests", "defaultBaseImage: r.io/w/static@sha256:aa\nbaseImageOverrides:\n  x/cmd/compile: r.io/w/builder@sha256:bb\n",
			map[string]string{"static": "sha256:aa", "builder": "sha256:bb"}, false},
		{"a tag", "defaultBaseImage: r.io/w/static:latest\n", nil, true},
		{"one image at two digests", "defaultBaseImage: r.io/w/static@sha256:aa\nbaseImageOverrides:\n  x/cmd/a: r.io/w/static@sha256:bb\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Pins([]byte(tt.koYAML))
			if (err != nil) != tt.fails {
				t.Fatalf("error %v, want failure %v", err, tt.fails)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s pinned at %q, want %q", k, got[k], v)
				}
			}
		})
	}
	// The repository's own ko.yaml pins both bases.
	b, err := os.ReadFile(filepath.Join(root(t), "ko.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pins, err := Pins(b)
	if err != nil || pins["static"] == "" || pins["builder"] == "" {
		t.Errorf("ko.yaml: pins %v, %v; want static and builder by digest", pins, err)
	}
}

func TestCheckPins(t *testing.T) {
	ko := filepath.Join(t.TempDir(), "ko.yaml")
	if err := os.WriteFile(ko, []byte("defaultBaseImage: ghcr.io/wasmbed/static@sha256:aa\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := checkPins(ko, []builtImage{{"static", "127.0.0.1:5000/wasmbed/static@sha256:aa"}}); err != nil {
		t.Errorf("the pinned digest was refused: %v", err)
	}
	if err := checkPins(ko, []builtImage{{"static", "127.0.0.1:5000/wasmbed/static@sha256:bb"}}); err == nil {
		t.Error("another digest than the pinned one passed")
	}
}

func TestCheckRefs(t *testing.T) {
	const repo = "127.0.0.1:5000/wasmbed"
	const digest = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	deployment := func(image, env string) string {
		return `apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      containers:
        - image: ` + image + `
          env:
            - name: WASMBED_GATEWAY_IMAGE
              value: ` + env + `
---
apiVersion: v1
kind: Namespace
metadata:
  name: wasmbed-system
`
	}
	tests := []struct {
		name, yaml string
		refs       int
	}{
		{"digests", deployment(repo+"/operator"+digest, repo+"/gateway"+digest), 2},
		{"a tag", deployment(repo+"/operator:latest", repo+"/gateway"+digest), -1},
		{"a ko:// reference left", deployment(repo+"/operator"+digest, "ko://github.com/wasmbed/wasmbed/cmd/gateway"), -1},
		{"an image from elsewhere", deployment("docker.io/library/busybox"+digest, repo+"/gateway"+digest), -1},
		{"a reference to the repository without a digest", deployment(repo+"/operator"+digest, repo+"/gateway"), -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refs, err := CheckRefs([]byte(tt.yaml), repo)
			if tt.refs < 0 {
				if err == nil {
					t.Errorf("passed with refs %v", refs)
				}
				return
			}
			if err != nil || len(refs) != tt.refs {
				t.Errorf("refs %v, error %v; want %d", refs, err, tt.refs)
			}
		})
	}
}
