package artifacts_test

import (
	"github.com/wasmbed/wasmbed/api/digest"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"github.com/wasmbed/wasmbed/internal/artifacts"
)

// newOCI returns a plain-HTTP store in repository name of r.
func newOCI(t *testing.T, r testRegistry, name string) *artifacts.OCI {
	t.Helper()
	s, err := artifacts.NewOCI(r.host+"/"+name, artifacts.NewClientConfig().WithPlainHTTP(true))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// module returns a distinct small module: the wasm header and a custom section
// carrying n.
func module(n int) []byte {
	name := fmt.Sprintf("m%d", n)
	b := append([]byte{}, wasm...)
	b = append(b, 0x00, byte(1+len(name)), byte(len(name)))
	return append(b, name...)
}

func TestOCIPutGet(t *testing.T) {
	ctx := context.Background()
	r := startRegistry(t, false)
	s := newOCI(t, r, "wasm/modules")

	d, err := s.Put(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	if d != digest.Of(wasm) {
		t.Fatalf("put = %s, want %s", d, digest.Of(wasm))
	}
	got, err := s.Get(ctx, d)
	if err != nil || string(got) != string(wasm) {
		t.Fatalf("get = %x, %v", got, err)
	}

	// The artifact follows the CNCF wasm layout and is tagged sha256-<hex>.
	repo := r.repo(t, "wasm/modules")
	tag, err := artifacts.DigestTag(d)
	if err != nil || tag != "sha256-"+strings.TrimPrefix(string(d), "sha256:") {
		t.Fatalf("tag = %q, %v", tag, err)
	}
	mdesc, err := repo.Resolve(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	fetchJSON(t, repo, mdesc, &m)
	if m.MediaType != ocispec.MediaTypeImageManifest || m.SchemaVersion != 2 {
		t.Errorf("manifest mediaType %q schemaVersion %d", m.MediaType, m.SchemaVersion)
	}
	if m.Config.MediaType != "application/vnd.wasm.config.v0+json" {
		t.Errorf("config mediaType = %q", m.Config.MediaType)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != "application/wasm" || m.Layers[0].Digest != d.OCI() || m.Layers[0].Size != int64(len(wasm)) {
		t.Errorf("layers = %+v", m.Layers)
	}
	var cfg map[string]any
	fetchJSON(t, repo, m.Config, &cfg)
	want := map[string]any{"architecture": "wasm", "os": "wasmbed", "layerDigests": []any{d}}
	if fmt.Sprint(cfg) != fmt.Sprint(want) {
		t.Errorf("config = %v, want %v", cfg, want)
	}

	// A second Put of the same bytes changes nothing: same digest, same manifest.
	again, err := s.Put(ctx, wasm)
	if err != nil || again != d {
		t.Fatalf("second put = %q, %v", again, err)
	}
	if m2, err := repo.Resolve(ctx, tag); err != nil || m2.Digest != mdesc.Digest {
		t.Fatalf("after second put the tag names %v (%v), want %s", m2.Digest, err, mdesc.Digest)
	}
	// A second store on the same repository sees it: no state but the registry.
	if got, err := newOCI(t, r, "wasm/modules").Get(ctx, d); err != nil || string(got) != string(wasm) {
		t.Fatalf("get from a second store = %x, %v", got, err)
	}
	// Another repository of the same registry does not.
	if _, err := newOCI(t, r, "other").Get(ctx, d); !errors.Is(err, artifacts.ErrNotFound) {
		t.Fatalf("get from another repository = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, digest.Of([]byte("unknown"))); !errors.Is(err, artifacts.ErrNotFound) {
		t.Fatalf("get unknown = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, "md5:abc"); err == nil || !strings.Contains(err.Error(), "not sha256") {
		t.Fatalf("get bad digest = %v", err)
	}
	if got := s.String(); got != "oci+http://"+r.host+"/wasm/modules" {
		t.Errorf("String() = %q", got)
	}
}

// fetchJSON reads the blob or manifest desc from repo and decodes it into v.
func fetchJSON(t *testing.T, repo content.Fetcher, desc ocispec.Descriptor, v any) {
	t.Helper()
	b, err := content.FetchAll(context.Background(), repo, desc)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func TestOCIGetByBlobAlone(t *testing.T) {
	ctx := context.Background()
	r := startRegistry(t, false)
	repo := r.repo(t, "m")
	// Another tool pushed the module under its own tag: Get finds the blob by digest.
	mod := module(7)
	pushArtifact(t, repo, "v1", testLayer{"application/wasm", mod})
	got, err := newOCI(t, r, "m").Get(ctx, digest.Of(mod))
	if err != nil || string(got) != string(mod) {
		t.Fatalf("get = %x, %v", got, err)
	}
}

func TestOCIVerification(t *testing.T) {
	ctx := context.Background()
	r := startRegistry(t, false)
	s := newOCI(t, r, "m")

	t.Run("corrupt blob", func(t *testing.T) {
		mod := module(1)
		d, err := s.Put(ctx, mod)
		if err != nil {
			t.Fatal(err)
		}
		// Same length, other bytes, behind the registry's back.
		bad := append([]byte{}, mod...)
		bad[len(bad)-1] ^= 0xff
		if err := os.WriteFile(r.blobPath(string(d)), bad, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err = s.Get(ctx, d)
		if !errors.Is(err, artifacts.ErrDigestMismatch) || !strings.Contains(err.Error(), "corrupt") {
			t.Fatalf("get = %v, want a digest mismatch", err)
		}
	})
	t.Run("truncated blob", func(t *testing.T) {
		mod := module(5)
		d, err := s.Put(ctx, mod)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(r.blobPath(string(d)), mod[:len(mod)-1], 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, d); err == nil || !strings.Contains(err.Error(), "Content-Length") {
			t.Fatalf("get = %v, want a length mismatch", err)
		}
	})
	t.Run("tag names another module", func(t *testing.T) {
		a, b := module(2), module(3)
		m := pushArtifact(t, r.repo(t, "m"), "", testLayer{"application/wasm", b})
		tag, _ := artifacts.DigestTag(digest.Of(a))
		if err := r.repo(t, "m").Tag(ctx, m, tag); err != nil {
			t.Fatal(err)
		}
		_, err := s.Get(ctx, digest.Of(a))
		if !errors.Is(err, artifacts.ErrDigestMismatch) || !strings.Contains(err.Error(), string(digest.Of(b))) {
			t.Fatalf("get = %v, want a mismatch naming the layer", err)
		}
		// Put repairs the tag.
		if _, err := s.Put(ctx, a); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Get(ctx, digest.Of(a)); err != nil || string(got) != string(a) {
			t.Fatalf("get after put = %x, %v", got, err)
		}
	})
	t.Run("tag names an artifact without a wasm layer", func(t *testing.T) {
		a := module(4)
		tag, _ := artifacts.DigestTag(digest.Of(a))
		pushArtifact(t, r.repo(t, "m"), tag, testLayer{"application/octet-stream", a})
		_, err := s.Get(ctx, digest.Of(a))
		if err == nil || !strings.Contains(err.Error(), "no application/wasm layer") {
			t.Fatalf("get = %v", err)
		}
	})
}

func TestOCIOversize(t *testing.T) {
	ctx := context.Background()
	r := startRegistry(t, false)
	s := newOCI(t, r, "m")
	big := make([]byte, artifacts.MaxModuleBytes+1)
	copy(big, wasm)
	d := digest.Of(big)

	if _, err := s.Put(ctx, big); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("put = %v, want the size limit", err)
	}
	if _, err := s.Put(ctx, nil); err == nil || !strings.Contains(err.Error(), "empty module") {
		t.Fatalf("put empty = %v", err)
	}
	// Someone else pushed an oversize blob: refused on its Content-Length.
	repo := r.repo(t, "m")
	tag, _ := artifacts.DigestTag(d)
	m := pushArtifact(t, repo, "", testLayer{"application/wasm", big})
	if _, err := s.Get(ctx, d); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("get blob = %v, want the size limit", err)
	}
	// And tagged: refused on the layer's declared size.
	if err := repo.Tag(ctx, m, tag); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, d); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("get tagged = %v, want the size limit", err)
	}
	if _, _, err := artifacts.FetchOCI(ctx, r.host+"/m:"+tag, "", artifacts.NewClientConfig().WithPlainHTTP(true).WithAllowList(allow(t, r.host))); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("fetch = %v, want the size limit", err)
	}
}

func TestOCIAuth(t *testing.T) {
	ctx := context.Background()
	r := startRegistry(t, true)
	base := artifacts.NewClientConfig().WithPlainHTTP(true)

	anon, err := artifacts.NewOCI(r.host+"/m", base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.Put(ctx, wasm); err == nil || !strings.Contains(err.Error(), "credential not found") {
		t.Fatalf("anonymous put = %v, want no credential", err)
	}
	wrong, _ := artifacts.NewOCI(r.host+"/m", base.WithBasicAuth(r.host, testUser, "wrong"))
	if _, err := wrong.Put(ctx, wasm); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong password put = %v, want 401", err)
	}
	// Credentials for another host are not sent here.
	elsewhere, _ := artifacts.NewOCI(r.host+"/m", base.WithBasicAuth("registry.example", testUser, testPassword))
	if _, err := elsewhere.Put(ctx, wasm); err == nil || !strings.Contains(err.Error(), "credential not found") {
		t.Fatalf("put with another host's credentials = %v, want no credential", err)
	}

	explicit, err := artifacts.NewOCI(r.host+"/m", base.WithBasicAuth(r.host, testUser, testPassword))
	if err != nil {
		t.Fatal(err)
	}
	d, err := explicit.Put(ctx, wasm)
	if err != nil {
		t.Fatalf("put with basic auth: %v", err)
	}

	// The same credentials from a docker config.json.
	dockerConfig := t.TempDir() + "/config.json"
	cfgJSON := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, r.host, basicAuth(testUser, testPassword))
	if err := os.WriteFile(dockerConfig, []byte(cfgJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile, err := artifacts.NewOCI(r.host+"/m", base.WithDockerConfig(dockerConfig))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := fromFile.Get(ctx, d); err != nil || string(got) != string(wasm) {
		t.Fatalf("get with docker config = %x, %v", got, err)
	}
	if _, err := artifacts.NewOCI(r.host+"/m", base.WithDockerConfig(writeFile(t, "{not json"))); err == nil {
		t.Fatal("a broken docker config was accepted")
	}
}

func writeFile(t *testing.T, s string) string {
	t.Helper()
	p := t.TempDir() + "/f"
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOCITimeout(t *testing.T) {
	// A registry that accepts connections and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	s, err := artifacts.NewOCI(l.Addr().String()+"/m", artifacts.NewClientConfig().WithPlainHTTP(true).WithTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := s.Get(context.Background(), digest.Of(wasm)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("get = %v, want a deadline error", err)
	}
	if _, err := s.Put(context.Background(), wasm); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("put = %v, want a deadline error", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("two calls with a 200ms timeout took %v", time.Since(start))
	}
}

func TestOCIConcurrent(t *testing.T) {
	ctx := context.Background()
	r := startRegistry(t, false)
	s := newOCI(t, r, "hammer")
	const workers, each = 8, 4
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				// Half the modules are shared by every worker, half are the worker's own.
				mod := module(i)
				if i%2 == 1 {
					mod = module(100*(w+1) + i)
				}
				d, err := s.Put(ctx, mod)
				if err != nil {
					errs <- err
					continue
				}
				got, err := s.Get(ctx, d)
				if err != nil {
					errs <- err
				} else if string(got) != string(mod) {
					errs <- fmt.Errorf("get %s returned other bytes", d)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
