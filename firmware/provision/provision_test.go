package provision_test

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmbed/wasmbed/firmware/internal/fwbuild"
	"github.com/wasmbed/wasmbed/firmware/provision"
)

// The emulated board itself checks that the provisioned key is the one it uses
// (firmware/qemutest, TestProvisionedBoardRequiresManifests); this checks the image.
func TestKey(t *testing.T) {
	image, err := os.ReadFile(fwbuild.Image(t, "mps2-an386"))
	if err != nil {
		t.Fatal(err)
	}
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := provision.ReadKey(image); err != nil || k != nil {
		t.Fatalf("the built image holds key %x (%v), want none", k, err)
	}
	out, err := provision.Key(image, pub)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := provision.ReadKey(out); err != nil || !bytes.Equal(k, pub) {
		t.Fatalf("provisioned key %x (%v), want %x", k, err, pub)
	}
	if diff := countDiff(image, out); diff > len(provision.Magic)+ed25519.PublicKeySize {
		t.Fatalf("provisioning changed %d bytes, more than the key section", diff)
	}

	dst := filepath.Join(t.TempDir(), "board", "firmware.elf")
	src := filepath.Join(t.TempDir(), "firmware.elf")
	if err := os.WriteFile(src, image, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := provision.File(src, dst, pub); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, out) {
		t.Fatal("File wrote another image than Key makes")
	}

	refused := []struct {
		name  string
		image []byte
		key   ed25519.PublicKey
		want  string
	}{
		{"short key", image, pub[:31], "31 bytes"},
		{"not an ELF", []byte("\x7fELF but not really"), pub, "not an ELF"},
		{"no key section", withoutSection(t, image), pub, "no .wb_keys section"},
		{"truncated", image[:len(image)/3], pub, ""},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			_, err := provision.Key(tc.image, tc.key)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func countDiff(a, b []byte) int {
	n := 0
	for i := range a {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

// withoutSection renames .wb_keys in the section name table, as in an image built
// before deployment keys existed.
func withoutSection(t *testing.T, image []byte) []byte {
	out := bytes.Clone(image)
	i := bytes.Index(out, []byte(".wb_keys\x00"))
	if i < 0 {
		t.Fatal("no .wb_keys name in the image")
	}
	copy(out[i:], ".wb_kez")
	return out
}
