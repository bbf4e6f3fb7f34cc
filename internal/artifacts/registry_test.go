package artifacts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/wasmbed/wasmbed/internal/artifacts"
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

// startRegistry runs the registry binary named by WASMBED_REGISTRY_BIN with storage in
// a temporary directory, waits until /v2/ answers, and stops it when t ends. With
// withAuth the registry demands basic auth as testUser.
func startRegistry(t *testing.T, withAuth bool) testRegistry {
	t.Helper()
	bin := os.Getenv("WASMBED_REGISTRY_BIN")
	if bin == "" {
		t.Fatal("WASMBED_REGISTRY_BIN is not set: build the registry once with hack/registry.sh, then run " +
			"WASMBED_REGISTRY_BIN=\"$(hack/registry.sh)\" go test ./internal/artifacts/ (make test sets it)")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("WASMBED_REGISTRY_BIN: %v (rebuild with hack/registry.sh)", err)
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "storage")
	authBlock := ""
	if withAuth {
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(testHtpasswd), 0o600); err != nil {
			t.Fatal(err)
		}
		authBlock = fmt.Sprintf("auth:\n  htpasswd:\n    realm: wasmbed-test\n    path: %s\n", htpasswd)
	}
	var lastLog string
	for attempt := 0; attempt < 3; attempt++ {
		host := freeAddr(t)
		config := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
%s`, root, host, authBlock)
		cfgPath := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		logPath := filepath.Join(dir, fmt.Sprintf("registry-%d.log", attempt))
		logFile, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "serve", cfgPath)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		cmd.Env = append(os.Environ(), "OTEL_SDK_DISABLED=true", "OTEL_TRACES_EXPORTER=none", "OTEL_METRICS_EXPORTER=none")
		if err := cmd.Start(); err != nil {
			logFile.Close()
			t.Fatalf("start registry: %v", err)
		}
		exited := make(chan struct{})
		go func() {
			cmd.Wait()
			logFile.Close()
			close(exited)
		}()
		stop := func() {
			cmd.Process.Kill()
			<-exited
		}
		if waitReady(host, withAuth, exited) {
			t.Cleanup(stop)
			return testRegistry{host: host, root: root}
		}
		stop()
		b, _ := os.ReadFile(logPath)
		lastLog = string(b)
	}
	t.Fatalf("registry did not answer /v2/ after 3 starts; last log:\n%s", lastLog)
	return testRegistry{}
}

// waitReady polls /v2/ until it answers 200 (401 with auth), the process exits, or
// a deadline passes.
func waitReady(host string, withAuth bool, exited <-chan struct{}) bool {
	want := http.StatusOK
	if withAuth {
		want = http.StatusUnauthorized
	}
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		resp, err := client.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// freeAddr returns a loopback address with a port nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
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
