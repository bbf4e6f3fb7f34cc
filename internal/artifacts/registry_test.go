package artifacts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/wasmbed/wasmbed/internal/artifacts"
	"github.com/wasmbed/wasmbed/internal/testenv"
)

// A bcrypt (cost 4) hash of testPassword, for the registry's htpasswd file.
const (
	testUser     = "wasmbed"
	testPassword = "wasmbed-secret"
	testHtpasswd = testUser + ":$2a$04$42dY7m6XXMw0hfscYYf2S.pU/4eDaBQpl.cx.Er9m9TkPHj9MLaBG\n"
)

// testRegistry is a distribution registry process serving on loopback.
type testRegistry struct {
	host string // 127.0.0.1:<port>
	root string // its filesystem storage
}

// startRegistry runs a registry (testenv.StartRegistry) until t ends. With withAuth
// the registry demands basic auth as testUser.
func startRegistry(t *testing.T, withAuth bool) testRegistry {
	t.Helper()
	htpasswd := ""
	if withAuth {
		htpasswd = testHtpasswd
	}
	r := testenv.StartRegistry(t, htpasswd)
	return testRegistry{host: r.Host, root: r.Root}
}

// repo returns a raw oras client for repository name, to arrange what the store
// would never write itself.
func (r testRegistry) repo(t *testing.T, name string) *remote.Repository {
	t.Helper()
	repo, err := remote.NewRepository(r.host + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	return repo
}

// blobPath is where the filesystem driver keeps the blob with digest d.
func (r testRegistry) blobPath(d string) string {
	hex := strings.TrimPrefix(d, "sha256:")
	return filepath.Join(r.root, "docker", "registry", "v2", "blobs", "sha256", hex[:2], hex, "data")
}

// testLayer is one layer pushArtifact writes.
type testLayer struct {
	mediaType string
	content   []byte
}

// pushArtifact pushes a manifest with a wasm config and layers, tags it, and returns
// the manifest's descriptor.
func pushArtifact(t *testing.T, repo *remote.Repository, tag string, layers ...testLayer) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	cfgJSON, _ := json.Marshal(map[string]any{"architecture": "wasm", "os": "wasip1"})
	cfg, err := oras.PushBytes(ctx, repo, artifacts.MediaTypeWasmConfig, cfgJSON)
	if err != nil {
		t.Fatal(err)
	}
	var descs []ocispec.Descriptor
	for _, l := range layers {
		desc := ocispec.Descriptor{MediaType: l.mediaType, Digest: digest.FromBytes(l.content), Size: int64(len(l.content))}
		if ok, err := repo.Blobs().Exists(ctx, desc); err != nil {
			t.Fatal(err)
		} else if !ok {
			if err := repo.Blobs().Push(ctx, desc, bytes.NewReader(l.content)); err != nil {
				t.Fatal(err)
			}
		}
		descs = append(descs, desc)
	}
	m, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "", oras.PackManifestOptions{
		ConfigDescriptor: &cfg,
		Layers:           descs,
	})
	if err != nil {
		t.Fatal(err)
	}
	if tag != "" {
		if err := repo.Tag(ctx, m, tag); err != nil {
			t.Fatal(err)
		}
	}
	return m
}
