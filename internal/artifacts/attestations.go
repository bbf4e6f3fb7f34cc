package artifacts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	godigest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/errdef"

	"github.com/wasmbed/wasmbed/api/attestation"
	"github.com/wasmbed/wasmbed/api/digest"
)

// Attestations keeps, beside each module, the signed record that it passed validation
// (an attestation.MediaType envelope). Putting one again replaces it.
type Attestations interface {
	PutAttestation(ctx context.Context, d digest.Digest, envelope []byte) error
	// Attestation returns the module's latest envelope, or an error wrapping ErrNotFound.
	Attestation(ctx context.Context, d digest.Digest) ([]byte, error)
}

func checkEnvelope(d digest.Digest, envelope []byte) error {
	if err := d.Validate(); err != nil {
		return err
	}
	if len(envelope) == 0 || len(envelope) > attestation.MaxEnvelopeBytes {
		return fmt.Errorf("attestation of %s is %d bytes; want 1 to %d", d, len(envelope), attestation.MaxEnvelopeBytes)
	}
	return nil
}

func (d *Dir) attestationPath(dg digest.Digest) string { return d.path(dg.Hex()) + ".validation.dsse" }

// PutAttestation stores envelope beside the module d.
func (d *Dir) PutAttestation(ctx context.Context, dg digest.Digest, envelope []byte) error {
	if err := checkEnvelope(dg, envelope); err != nil {
		return fmt.Errorf("put attestation: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put attestation of %s: %w", dg, err)
	}
	final := d.attestationPath(dg)
	tmp, err := os.CreateTemp(filepath.Dir(final), ".att-*")
	if err != nil {
		return fmt.Errorf("put attestation of %s: %w", dg, err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(envelope)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("put attestation of %s: %w", dg, err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return fmt.Errorf("put attestation of %s: %w", dg, err)
	}
	return nil
}

// Attestation returns the envelope stored beside module d.
func (d *Dir) Attestation(ctx context.Context, dg digest.Digest) ([]byte, error) {
	if err := dg.Validate(); err != nil {
		return nil, fmt.Errorf("get attestation: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get attestation of %s: %w", dg, err)
	}
	f, err := os.Open(d.attestationPath(dg))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("get attestation of %s: %w", dg, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get attestation of %s: %w", dg, err)
	}
	defer f.Close()
	b, err := readLimited(f, attestation.MaxEnvelopeBytes)
	if err != nil {
		return nil, fmt.Errorf("get attestation of %s: %w", dg, err)
	}
	return b, nil
}

// PutAttestation pushes envelope as an OCI referrer of the module's manifest (artifact
// type attestation.MediaType), so it travels with the artifact.
func (o *OCI) PutAttestation(ctx context.Context, d digest.Digest, envelope []byte) error {
	if err := checkEnvelope(d, envelope); err != nil {
		return fmt.Errorf("put attestation: %w", err)
	}
	ctx, cancel := o.cfg.callContext(ctx)
	defer cancel()
	subject, err := o.repo.Manifests().Resolve(ctx, TagPrefix+d.Hex())
	if errors.Is(err, errdef.ErrNotFound) {
		return fmt.Errorf("put attestation of %s: the module is not in the store: %w", d, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("put attestation of %s: %w", d, err)
	}
	layer := ocispec.Descriptor{MediaType: attestation.MediaType, Digest: godigest.FromBytes(envelope), Size: int64(len(envelope))}
	if err := pushBlob(ctx, o.repo, layer, envelope); err != nil {
		return fmt.Errorf("put attestation of %s: %w", d, err)
	}
	_, err = oras.PackManifest(ctx, o.repo, oras.PackManifestVersion1_1, attestation.MediaType, oras.PackManifestOptions{
		Subject: &subject, Layers: []ocispec.Descriptor{layer},
	})
	if err != nil {
		return fmt.Errorf("put attestation of %s: push referrer: %w", d, err)
	}
	return nil
}

// Attestation returns the newest envelope among the module's referrers.
func (o *OCI) Attestation(ctx context.Context, d digest.Digest) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("get attestation: %w", err)
	}
	ctx, cancel := o.cfg.callContext(ctx)
	defer cancel()
	subject, err := o.repo.Manifests().Resolve(ctx, TagPrefix+d.Hex())
	if errors.Is(err, errdef.ErrNotFound) {
		return nil, fmt.Errorf("get attestation of %s: %w", d, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get attestation of %s: %w", d, err)
	}
	var newest *ocispec.Descriptor
	err = o.repo.Referrers(ctx, subject, attestation.MediaType, func(refs []ocispec.Descriptor) error {
		for i := range refs {
			r := refs[i]
			if newest == nil || r.Annotations[ocispec.AnnotationCreated] > newest.Annotations[ocispec.AnnotationCreated] {
				newest = &r
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get attestation of %s: referrers: %w", d, err)
	}
	if newest == nil {
		return nil, fmt.Errorf("get attestation of %s: %w", d, ErrNotFound)
	}
	_, m, err := readManifest(ctx, o.repo, newest.Digest.String())
	if err != nil {
		return nil, fmt.Errorf("get attestation of %s: %w", d, err)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != attestation.MediaType || m.Layers[0].Size > attestation.MaxEnvelopeBytes {
		return nil, fmt.Errorf("get attestation of %s: referrer %s is not one envelope", d, newest.Digest)
	}
	rc, err := o.repo.Blobs().Fetch(ctx, m.Layers[0])
	if err != nil {
		return nil, fmt.Errorf("get attestation of %s: %w", d, err)
	}
	defer rc.Close()
	b, err := readLimited(rc, attestation.MaxEnvelopeBytes)
	if err != nil {
		return nil, fmt.Errorf("get attestation of %s: %w", d, err)
	}
	if godigest.FromBytes(b) != m.Layers[0].Digest {
		return nil, fmt.Errorf("get attestation of %s: envelope does not match its digest: %w", d, ErrDigestMismatch)
	}
	return bytes.Clone(b), nil
}
