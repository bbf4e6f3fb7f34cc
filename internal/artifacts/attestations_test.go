package artifacts_test

import (
	"context"
	"errors"
	"testing"

	"github.com/wasmbed/wasmbed/api/digest"
	"github.com/wasmbed/wasmbed/internal/artifacts"
	fixtures "github.com/wasmbed/wasmbed/testdata/wasm"
)

// stores returns both kinds of store, each with its Attestations.
func attestationStores(t *testing.T) map[string]interface {
	artifacts.Store
	artifacts.Attestations
} {
	dir, err := artifacts.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return map[string]interface {
		artifacts.Store
		artifacts.Attestations
	}{"dir": dir, "oci": newOCI(t, startRegistry(t, false), "attested")}
}

func TestAttestations(t *testing.T) {
	ctx := context.Background()
	for name, s := range attestationStores(t) {
		t.Run(name, func(t *testing.T) {
			d, err := s.Put(ctx, fixtures.Blink)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Attestation(ctx, d); !errors.Is(err, artifacts.ErrNotFound) {
				t.Fatalf("attestation of an unattested module: %v, want ErrNotFound", err)
			}
			env := []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}`)
			if err := s.PutAttestation(ctx, d, env); err != nil {
				t.Fatal(err)
			}
			got, err := s.Attestation(ctx, d)
			if err != nil || string(got) != string(env) {
				t.Fatalf("Attestation = %q, %v", got, err)
			}
			for _, bad := range []struct {
				name string
				d    digest.Digest
				env  []byte
			}{
				{"empty envelope", d, nil},
				{"oversized envelope", d, make([]byte, 64<<10+1)},
				{"malformed digest", "sha256:nope", env},
			} {
				if err := s.PutAttestation(ctx, bad.d, bad.env); err == nil {
					t.Errorf("%s: stored", bad.name)
				}
			}
			if got, err := s.Attestation(ctx, d); err != nil || string(got) != string(env) {
				t.Fatalf("a refused put changed what is stored: %q, %v", got, err)
			}
		})
	}
}

func TestOCIAttestationNeedsItsModule(t *testing.T) {
	s := newOCI(t, startRegistry(t, false), "lonely")
	err := s.PutAttestation(context.Background(), digest.Of([]byte("never stored")), []byte("{}"))
	if !errors.Is(err, artifacts.ErrNotFound) {
		t.Fatalf("attestation of a missing module: %v, want ErrNotFound", err)
	}
}
