package pki

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/wasmbed/wasmbed/api/digest"
)

// SigningKey is the platform's module signing key: it signs the sha256 digest of each
// module it deploys (ed25519, RFC 8032), and devices holding the public key verify it
// before running the module (docs/protocol.md, Deploy).
type SigningKey struct {
	priv ed25519.PrivateKey
}

// NewSigningKey generates a signing key.
func NewSigningKey() (*SigningKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	return &SigningKey{priv: priv}, nil
}

// LoadSigningKey reads a PKCS #8 PEM ed25519 key from path.
func LoadSigningKey(path string) (*SigningKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("signing key %s: not a PEM PRIVATE KEY", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing key %s: %T is not an ed25519 key", path, k)
	}
	return &SigningKey{priv: priv}, nil
}

// LoadOrCreateSigningKey loads the key at path, creating it (mode 0600) when missing.
func LoadOrCreateSigningKey(path string) (*SigningKey, error) {
	k, err := LoadSigningKey(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return k, err
	}
	if k, err = NewSigningKey(); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return nil, fmt.Errorf("encode signing key: %w", err)
	}
	if err := WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	return k, nil
}

// Public returns the verification key.
func (k *SigningKey) Public() ed25519.PublicKey { return k.priv.Public().(ed25519.PublicKey) }

// SignDigest signs a module digest: the signature covers its 32 bytes.
func (k *SigningKey) SignDigest(d digest.Digest) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return ed25519.Sign(k.priv, d.Bytes()), nil
}

// VerifyDigest reports whether sig is pub's signature of the 32-byte digest.
func VerifyDigest(pub ed25519.PublicKey, digest []byte, sig []byte) bool {
	return len(pub) == ed25519.PublicKeySize && len(digest) == 32 && len(sig) == ed25519.SignatureSize &&
		ed25519.Verify(pub, digest, sig)
}
