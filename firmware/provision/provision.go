// Package provision writes what a factory writes into a board's flash before it first
// boots: the platform's deployment verification key, into the firmware image's .wb_keys
// section (firmware/boards/common/main.c), so one image serves every platform; and, for
// a network image, the device's identity, bootstrap token, gateway address and platform
// CA, into its .wb_net section (firmware/net).
package provision

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wasmbed/wasmbed/internal/pki"
)

// Section is the ELF section that holds the deployment key: Magic, then the 32-byte
// Ed25519 public key.
const Section = ".wb_keys"

// Magic marks a provisioned key; a section without it holds no key.
var Magic = [4]byte{'W', 'B', 'K', '1'}

// maxImage bounds the images read: far above any board's flash.
const maxImage = 64 << 20

// Key returns a copy of the ELF firmware image with key written into its .wb_keys
// section, as a provisioning step writes it into flash.
func Key(image []byte, key ed25519.PublicKey) ([]byte, error) {
	if len(key) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("provision: the deployment key is %d bytes, want %d", len(key), ed25519.PublicKeySize)
	}
	off, err := keyOffset(image)
	if err != nil {
		return nil, err
	}
	out := bytes.Clone(image)
	copy(out[off:], Magic[:])
	copy(out[off+len(Magic):], key)
	return out, nil
}

// ReadKey returns the key provisioned in an image, or nil when it holds none.
func ReadKey(image []byte) (ed25519.PublicKey, error) {
	off, err := keyOffset(image)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(image[off:off+len(Magic)], Magic[:]) {
		return nil, nil
	}
	return bytes.Clone(image[off+len(Magic) : off+len(Magic)+ed25519.PublicKeySize]), nil
}

// File provisions the image at src with key and writes it to dst (replaced atomically).
func File(src, dst string, key ed25519.PublicKey) error {
	info, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("provision %s: %w", src, err)
	}
	if info.Size() > maxImage {
		return fmt.Errorf("provision %s: %d bytes, more than any board's image (%d)", src, info.Size(), maxImage)
	}
	image, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("provision %s: %w", src, err)
	}
	out, err := Key(image, key)
	if err != nil {
		return fmt.Errorf("provision %s: %w", src, err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("provision %s: %w", dst, err)
	}
	return pki.WriteFile(dst, out, 0o600)
}

// keyOffset finds the file offset of the .wb_keys section, checking that it is loaded
// from the file (into flash) and large enough.
func keyOffset(image []byte) (int, error) {
	return sectionOffset(image, Section, uint64(len(Magic)+ed25519.PublicKeySize))
}
