package pki

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
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

// Sign signs message (a deployment manifest, an attestation envelope).
func (k *SigningKey) Sign(message []byte) ([]byte, error) { return ed25519.Sign(k.priv, message), nil }

// KeyID names the key in signatures: the first 16 hex digits of the SHA-256 of its
// public key.
func (k *SigningKey) KeyID() string {
	sum := sha256.Sum256(k.Public())
	return hex.EncodeToString(sum[:8])
}

// LoadPublicKey reads an ed25519 public key from path: PEM "PUBLIC KEY" (PKIX) or the
// 64 hex digits of its raw bytes.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read public key: %w", err)
	}
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("public key %s: PEM %q, want PUBLIC KEY", path, blk.Type)
		}
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("public key %s: %w", path, err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("public key %s: %T is not an ed25519 key", path, k)
		}
		return pub, nil
	}
	pub, err := ParsePublicKeyHex(string(b))
	if err != nil {
		return nil, fmt.Errorf("public key %s: neither PEM nor %d hex digits", path, 2*ed25519.PublicKeySize)
	}
	return pub, nil
}

// ParsePublicKeyHex parses an ed25519 public key given as the 64 hex digits of its raw
// bytes (surrounding space ignored), as `wasmbed pki keys` writes signing.pub.
func ParsePublicKeyHex(s string) (ed25519.PublicKey, error) {
	raw, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("an ed25519 public key is %d hex digits", 2*ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(raw), nil
}
