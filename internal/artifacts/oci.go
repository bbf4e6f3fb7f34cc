package artifacts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/wasmbed/wasmbed/api/digest"

	godigest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
)

// Media types of the CNCF TAG Runtime "Wasm OCI Artifact layout"
// (https://tag-runtime.cncf.io/wgs/wasm/deliverables/wasm-oci-artifact/).
const (
	// MediaTypeWasmConfig is the media type of the artifact's config blob.
	MediaTypeWasmConfig = "application/vnd.wasm.config.v0+json"
	// MediaTypeWasmLayer is the media type of the layer that holds the module bytes.
	MediaTypeWasmLayer = "application/wasm"
)

// WasmOS is the "os" in the config of every module the OCI store pushes. The layout
// lists wasip1 and wasip2, but a Wasmbed module imports the wasmbed host ABI, not
// WASI: naming the ABI lets a runtime that checks os refuse the artifact up front
// instead of failing at instantiation. Fetch accepts any os.
const WasmOS = "wasmbed"

// TagPrefix starts the tag the OCI store gives each module: "sha256-" and the hex of
// the module's digest, since a tag cannot contain ':'.
const TagPrefix = "sha256-"

// maxManifestBytes bounds a manifest read from a registry (the distribution spec's
// recommended minimum a registry accepts).
const maxManifestBytes = 4 << 20

// ErrDigestMismatch is wrapped by the errors of OCI.Get and the Fetch functions when
// content does not hash to the digest it was named by, or a manifest tagged for one
// module carries another.
var ErrDigestMismatch = errors.New("digest mismatch")

// DigestTag returns the tag under which the OCI store keeps the module with digest:
// "sha256-<hex>".
func DigestTag(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", err
	}
	return TagPrefix + d.Hex(), nil
}

// wasmConfig is the config blob: the fields the layout requires, and no creation
// time, so the same module always yields the same manifest digest.
type wasmConfig struct {
	Architecture string   `json:"architecture"`
	OS           string   `json:"os"`
	LayerDigests []string `json:"layerDigests"`
}

// artifact is the OCI form of one module: a config, one layer, and the manifest.
type artifact struct {
	layer        ocispec.Descriptor
	config       ocispec.Descriptor
	configJSON   []byte
	manifest     ocispec.Descriptor
	manifestJSON []byte
}

func newArtifact(module []byte) (artifact, error) {
	var a artifact
	a.layer = ocispec.Descriptor{
		MediaType: MediaTypeWasmLayer,
		Digest:    godigest.FromBytes(module),
		Size:      int64(len(module)),
	}
	cfg, err := json.Marshal(wasmConfig{
		Architecture: "wasm",
		OS:           WasmOS,
		LayerDigests: []string{a.layer.Digest.String()},
	})
	if err != nil {
		return a, err
	}
	a.configJSON = cfg
	a.config = ocispec.Descriptor{
		MediaType: MediaTypeWasmConfig,
		Digest:    godigest.FromBytes(cfg),
		Size:      int64(len(cfg)),
	}
	m, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    a.config,
		Layers:    []ocispec.Descriptor{a.layer},
	})
	if err != nil {
		return a, err
	}
	a.manifestJSON = m
	a.manifest = ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageManifest,
		Digest:    godigest.FromBytes(m),
		Size:      int64(len(m)),
	}
	return a, nil
}

// OCI is a Store in one repository of an OCI registry. Each module is an artifact in
// the CNCF wasm layout: an image manifest with a MediaTypeWasmConfig config and one
// MediaTypeWasmLayer layer holding the module, tagged DigestTag(digest). The layer's
// digest is the module's digest, so Get also finds a module by its blob alone.
type OCI struct {
	repo *remote.Repository
	cfg  ClientConfig
}

// NewOCI returns a store in repository ("registry.example/wasm/modules", no tag or
// digest), reached as cfg says.
func NewOCI(repository string, cfg ClientConfig) (*OCI, error) {
	ref, err := registry.ParseReference(repository)
	if err != nil {
		return nil, fmt.Errorf("oci repository %q: %w", repository, err)
	}
	if ref.Reference != "" {
		return nil, fmt.Errorf("oci repository %q names a tag or digest; want registry/repository", repository)
	}
	repo, err := newRepository(ref, cfg, nil)
	if err != nil {
		return nil, err
	}
	return &OCI{repo: repo, cfg: cfg}, nil
}

// newRepository returns the repository of ref, reached over hc (nil: as cfg says).
func newRepository(ref registry.Reference, cfg ClientConfig, hc *http.Client) (*remote.Repository, error) {
	client, err := cfg.authClient(hc)
	if err != nil {
		return nil, err
	}
	return &remote.Repository{
		Client:    client,
		Reference: registry.Reference{Registry: ref.Registry, Repository: ref.Repository},
		PlainHTTP: cfg.plainHTTP,
	}, nil
}

// Registry returns the registry of the store's repository, host[:port] as OCI
// references write it: the entry that lets Fetch reach this store's registry.
func (o *OCI) Registry() string { return o.repo.Reference.Registry }

// String returns the repository as a store URL (oci:// or oci+http://).
func (o *OCI) String() string {
	scheme := "oci"
	if o.repo.PlainHTTP {
		scheme = "oci+http"
	}
	return scheme + "://" + o.repo.Reference.Registry + "/" + o.repo.Reference.Repository
}

// Put pushes module as a wasm artifact tagged DigestTag of its digest and returns the
// digest. When the tag already names the same manifest, Put sends nothing else.
func (o *OCI) Put(ctx context.Context, module []byte) (digest.Digest, error) {
	if err := checkSize(module); err != nil {
		return "", fmt.Errorf("put: %w", err)
	}
	d := digest.Of(module)
	tag := TagPrefix + d.Hex()
	a, err := newArtifact(module)
	if err != nil {
		return "", fmt.Errorf("put %s: %w", d, err)
	}
	ctx, cancel := o.cfg.callContext(ctx)
	defer cancel()

	have, err := o.repo.Manifests().Resolve(ctx, tag)
	switch {
	case err == nil && have.Digest == a.manifest.Digest:
		return d, nil
	case err != nil && !errors.Is(err, errdef.ErrNotFound):
		return "", fmt.Errorf("put %s: resolve tag: %w", d, err)
	}
	if err := pushBlob(ctx, o.repo, a.layer, module); err != nil {
		return "", fmt.Errorf("put %s: push layer: %w", d, err)
	}
	if err := pushBlob(ctx, o.repo, a.config, a.configJSON); err != nil {
		return "", fmt.Errorf("put %s: push config: %w", d, err)
	}
	if err := o.repo.Manifests().PushReference(ctx, a.manifest, bytes.NewReader(a.manifestJSON), tag); err != nil {
		return "", fmt.Errorf("put %s: push manifest: %w", d, err)
	}
	return d, nil
}

// pushBlob uploads b unless the repository already holds it.
func pushBlob(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, b []byte) error {
	ok, err := repo.Blobs().Exists(ctx, desc)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	err = repo.Blobs().Push(ctx, desc, bytes.NewReader(b))
	if errors.Is(err, errdef.ErrAlreadyExists) {
		return nil
	}
	return err
}

// Get returns the module with digest. It follows the tag DigestTag(digest) to the
// manifest and its wasm layer; without that tag it fetches the blob by digest. Sizes
// above MaxModuleBytes are refused before the body is read, and the bytes are checked
// against digest (a mismatch wraps ErrDigestMismatch).
func (o *OCI) Get(ctx context.Context, d digest.Digest) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	hex := d.Hex()
	ctx, cancel := o.cfg.callContext(ctx)
	defer cancel()

	_, m, err := readManifest(ctx, o.repo, TagPrefix+hex)
	if errors.Is(err, errdef.ErrNotFound) {
		b, err := o.getBlob(ctx, d)
		if err != nil {
			return nil, fmt.Errorf("get %s: %w", d, err)
		}
		return b, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", d, err)
	}
	layer, err := wasmLayer(m)
	if err != nil {
		return nil, fmt.Errorf("get %s: tag %s%s: %w", d, TagPrefix, hex, err)
	}
	if layer.Digest != d.OCI() {
		return nil, fmt.Errorf("get %s: tag %s%s names a manifest whose wasm layer is %s: %w",
			d, TagPrefix, hex, layer.Digest, ErrDigestMismatch)
	}
	b, err := readModule(ctx, o.repo, layer)
	if errors.Is(err, errdef.ErrNotFound) {
		return nil, fmt.Errorf("get %s: layer of tag %s%s: %w", d, TagPrefix, hex, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", d, err)
	}
	return b, nil
}

// getBlob fetches the module as a bare blob.
func (o *OCI) getBlob(ctx context.Context, d digest.Digest) ([]byte, error) {
	desc, rc, err := o.repo.Blobs().FetchReference(ctx, d.String())
	if errors.Is(err, errdef.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("fetch blob: %w", upstream(err))
	}
	defer rc.Close()
	if err := checkDeclaredSize(desc.Size); err != nil {
		return nil, err
	}
	return readVerified(rc, desc)
}

// readManifest fetches the image manifest at reference (tag or digest), bounded and
// checked against its digest. An index or another kind of manifest is refused.
func readManifest(ctx context.Context, repo *remote.Repository, reference string) (ocispec.Descriptor, ocispec.Manifest, error) {
	var m ocispec.Manifest
	desc, rc, err := repo.Manifests().FetchReference(ctx, reference)
	if err != nil {
		return desc, m, upstream(err)
	}
	defer rc.Close()
	// The media type is the registry's answer: named only when it is a known one.
	switch desc.MediaType {
	case ocispec.MediaTypeImageManifest, mediaTypeDockerManifest:
	case ocispec.MediaTypeImageIndex, mediaTypeDockerManifestList:
		return desc, m, fmt.Errorf("manifest %s is an index (%s): name one manifest by its digest", desc.Digest, desc.MediaType)
	default:
		return desc, m, fmt.Errorf("manifest %s has another media type than an image manifest (%s)", desc.Digest, ocispec.MediaTypeImageManifest)
	}
	if desc.Size > maxManifestBytes {
		return desc, m, fmt.Errorf("manifest %s is %d bytes; the limit is %d", desc.Digest, desc.Size, maxManifestBytes)
	}
	body, err := readLimited(rc, maxManifestBytes)
	if err != nil {
		return desc, m, fmt.Errorf("read manifest %s: %w", desc.Digest, upstreamRead(err))
	}
	if got := godigest.FromBytes(body); got != desc.Digest {
		return desc, m, fmt.Errorf("manifest %s hashes to %s: %w", desc.Digest, got, ErrDigestMismatch)
	}
	// The decoder's message may quote the body; say only that it did not decode.
	if err := json.Unmarshal(body, &m); err != nil {
		return desc, m, fmt.Errorf("manifest %s is not a JSON image manifest", desc.Digest)
	}
	return desc, m, nil
}

// Docker's manifest media types, which share the OCI JSON shape.
const (
	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// wasmLayer returns the one MediaTypeWasmLayer layer of m, with a valid digest. The
// manifest is the registry's answer, so messages count its layers but do not quote
// their media types or digests.
func wasmLayer(m ocispec.Manifest) (ocispec.Descriptor, error) {
	var found []ocispec.Descriptor
	for _, l := range m.Layers {
		if l.MediaType == MediaTypeWasmLayer {
			found = append(found, l)
		}
	}
	switch len(found) {
	case 1:
		if err := found[0].Digest.Validate(); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("the %s layer's digest is malformed", MediaTypeWasmLayer)
		}
		return found[0], nil
	case 0:
		if len(m.Layers) == 0 {
			return ocispec.Descriptor{}, fmt.Errorf("artifact has no layers; want one %s layer", MediaTypeWasmLayer)
		}
		return ocispec.Descriptor{}, fmt.Errorf("artifact has no %s layer (it has %d of other media types)", MediaTypeWasmLayer, len(m.Layers))
	default:
		return ocispec.Descriptor{}, fmt.Errorf("artifact has %d %s layers; want one", len(found), MediaTypeWasmLayer)
	}
}

// readModule fetches the layer desc, refusing a declared size above MaxModuleBytes
// before any request, and checks the bytes against desc.
func readModule(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor) ([]byte, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, errors.New("layer digest is malformed")
	}
	if desc.Digest.Algorithm() != godigest.SHA256 {
		return nil, fmt.Errorf("layer digest %s is not sha256", desc.Digest)
	}
	if err := checkDeclaredSize(desc.Size); err != nil {
		return nil, err
	}
	rc, err := repo.Blobs().Fetch(ctx, desc)
	if err != nil {
		return nil, fmt.Errorf("fetch layer: %w", upstream(err))
	}
	defer rc.Close()
	return readVerified(rc, desc)
}

func checkDeclaredSize(n int64) error {
	if n <= 0 {
		return errors.New("empty module")
	}
	if n > MaxModuleBytes {
		return fmt.Errorf("module is %d bytes; the store's limit is %d", n, MaxModuleBytes)
	}
	return nil
}

// readVerified reads exactly desc.Size bytes from r and checks them against desc.Digest.
func readVerified(r io.Reader, desc ocispec.Descriptor) ([]byte, error) {
	b, err := readLimited(r, desc.Size)
	if err != nil {
		return nil, fmt.Errorf("read module: %w", upstreamRead(err))
	}
	if int64(len(b)) != desc.Size {
		return nil, fmt.Errorf("read module: got %d of %d bytes", len(b), desc.Size)
	}
	if got := digest.Of(b); got.OCI() != desc.Digest {
		return nil, fmt.Errorf("module %s hashes to %s: the registry copy is corrupt: %w", desc.Digest, got, ErrDigestMismatch)
	}
	return b, nil
}

// upstreamRead is upstream for an error reading a body, which may be readLimited's own.
func upstreamRead(err error) error {
	if errors.Is(err, errOverLimit) {
		return err
	}
	return upstream(err)
}

// errOverLimit is returned by readLimited for content longer than its limit.
var errOverLimit = errors.New("over the size limit")

// readLimited reads r to the end, refusing more than limit bytes.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("more than %d bytes: %w", limit, errOverLimit)
	}
	return b, nil
}
