package qemutest

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/api/protocol"
	"github.com/wasmbed/wasmbed/firmware/internal/fwbuild"
	"github.com/wasmbed/wasmbed/firmware/provision"
	wasmfix "github.com/wasmbed/wasmbed/testdata/wasm"
)

// TestProvisionedBoardRequiresManifests boots the mps2-an386 image provisioned with a
// deployment key, as the board manager flashes it: the board refuses an unsigned
// module, a forged manifest, one for another namespace and an old one replayed, and
// runs the module its manifest names.
func TestProvisionedBoardRequiresManifests(t *testing.T) {
	requireTools(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	elf := filepath.Join(t.TempDir(), "firmware.elf")
	if err := provision.File(fwbuild.Image(t, "mps2-an386"), elf, pub); err != nil {
		t.Fatal(err)
	}
	b := startQEMU(ctx, t, "mps2-an386", elf)
	h, maxFrame := b.hello()
	ns, _, _ := strings.Cut(h.DeviceID, "/")
	module := wasmfix.Blink
	sum := sha256.Sum256(module)
	config := map[string]string{"greeting": "hi"}

	sign := func(key ed25519.PrivateKey, edit func(*protocol.Manifest)) func(*protocol.Deploy) {
		hash, err := protocol.ConfigHash(config)
		if err != nil {
			t.Fatal(err)
		}
		m := &protocol.Manifest{Type: protocol.ManifestType, Namespace: ns, App: "blink", UID: "uid-blink",
			Generation: 3, Version: 30, Digest: sum[:], ConfigHash: hash}
		if edit != nil {
			edit(m)
		}
		raw, sig, err := protocol.SignManifest(key, m)
		if err != nil {
			t.Fatal(err)
		}
		return func(d *protocol.Deploy) { d.Manifest, d.Signature = raw, sig }
	}
	refused := []struct {
		name string
		edit func(*protocol.Deploy)
	}{
		{"unsigned", func(*protocol.Deploy) {}},
		{"signed by another key", sign(other, nil)},
		{"for another namespace", sign(priv, func(m *protocol.Manifest) { m.Namespace = "elsewhere" })},
		{"for another configuration", sign(priv, func(m *protocol.Manifest) { m.ConfigHash = sum[:] })},
	}
	for _, tc := range refused {
		d := &protocol.Deploy{App: "blink", Digest: sum[:], Size: uint32(len(module)),
			ChunkSize: protocol.ChunkSizeFor(maxFrame), Config: config}
		tc.edit(d)
		b.send(d)
		if e := b.refusal(ctx, tc.name); e.Code != protocol.CodeBadSignature || e.Related != protocol.TypeDeploy {
			t.Fatalf("%s: the board answered %v, want bad_signature for the Deploy", tc.name, e)
		}
	}

	b.deployWith(ctx, "blink", module, maxFrame, sign(priv, nil))
	b.send(&protocol.Start{App: "blink"})
	b.status(ctx, "blink", protocol.StateRunning)

	old := &protocol.Deploy{App: "blink", Digest: sum[:], Size: uint32(len(module)),
		ChunkSize: protocol.ChunkSizeFor(maxFrame), Config: config}
	sign(priv, func(m *protocol.Manifest) { m.Version = 29 })(old)
	b.send(old)
	if e := b.refusal(ctx, "an older version"); e.Code != protocol.CodeBadSignature || !strings.Contains(e.Message, "version") {
		t.Fatalf("an older manifest: the board answered %v, want bad_signature naming the version", e)
	}
}
