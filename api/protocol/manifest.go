package protocol

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"

	"github.com/fxamacker/cbor/v2"
)

// ManifestType is the first field of every deployment manifest; it keeps a signature
// made for one purpose from being accepted for another.
const ManifestType = "wasmbed.dev/deploy/v1"

// Manifest limits, in bytes.
const (
	// MaxManifestSize bounds an encoded manifest (Deploy key 7).
	MaxManifestSize = 320
	// MaxNamespaceLen bounds a manifest's namespace (a Kubernetes namespace).
	MaxNamespaceLen = 63
	// MaxUIDLen bounds a manifest's Application uid.
	MaxUIDLen = 64
)

// Manifest is what the platform's deployment signer vouches for: this module, with
// this configuration, for this application, at this version. A device runs a module
// only under a manifest whose signature verifies, that names its namespace and the
// Deploy's app, digest and configuration, and whose version is not lower than the
// one it holds for the app (docs/protocol.md, "Deployment manifest").
type Manifest struct {
	// Type is ManifestType.
	Type string `cbor:"1,keyasint"`
	// Namespace is the Application's namespace, which is also the device's.
	Namespace string `cbor:"2,keyasint"`
	// App is the Application's name, the app name on the device.
	App string `cbor:"3,keyasint"`
	// UID is the Application's metadata.uid.
	UID string `cbor:"4,keyasint"`
	// Generation is the Application generation the deployment belongs to.
	Generation uint64 `cbor:"5,keyasint"`
	// Version only grows for one app name: a device refuses a lower one.
	Version uint64 `cbor:"6,keyasint"`
	// Digest is the module's sha256.
	Digest []byte `cbor:"7,keyasint"`
	// ConfigHash is ConfigHash of the configuration.
	ConfigHash []byte `cbor:"8,keyasint"`
}

// ConfigHash returns the sha256 of a configuration's encoding as Deploy carries it
// (a canonical CBOR map; empty or nil is 0xa0), which is what a device hashes.
func ConfigHash(config map[string]string) ([]byte, error) {
	if len(config) == 0 {
		config = map[string]string{}
	}
	b, err := encMode.Marshal(config)
	if err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	sum := sha256.Sum256(b)
	return sum[:], nil
}

// Validate checks every field's range.
func (m *Manifest) Validate() error {
	if m.Type != ManifestType {
		return manifestError("type is %q, want %q", truncate(m.Type, 32), ManifestType)
	}
	if err := checkLabel("namespace", m.Namespace, MaxNamespaceLen); err != nil {
		return err
	}
	if err := checkLabel("app", m.App, MaxAppNameLen); err != nil {
		return err
	}
	if len(m.UID) == 0 || len(m.UID) > MaxUIDLen {
		return manifestError("uid is %d bytes, want 1 to %d", len(m.UID), MaxUIDLen)
	}
	for i := 0; i < len(m.UID); i++ {
		if c := m.UID[i]; c < 0x21 || c > 0x7e {
			return manifestError("uid has a byte outside printable ascii")
		}
	}
	if m.Generation == 0 {
		return manifestError("generation is 0")
	}
	if m.Version == 0 {
		return manifestError("version is 0")
	}
	if len(m.Digest) != DigestSize {
		return manifestError("digest is %d bytes, want %d", len(m.Digest), DigestSize)
	}
	if len(m.ConfigHash) != DigestSize {
		return manifestError("config hash is %d bytes, want %d", len(m.ConfigHash), DigestSize)
	}
	return nil
}

// EncodeManifest validates m and returns its canonical CBOR encoding, the bytes the
// signer signs.
func EncodeManifest(m *Manifest) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b, err := encMode.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	if len(b) > MaxManifestSize {
		return nil, manifestError("encodes to %d bytes, limit %d", len(b), MaxManifestSize)
	}
	return b, nil
}

// DecodeManifest parses a manifest by the protocol's decoding rules (unknown keys
// ignored) and validates it.
func DecodeManifest(b []byte) (*Manifest, error) {
	if len(b) == 0 || len(b) > MaxManifestSize {
		return nil, manifestError("is %d bytes, want 1 to %d", len(b), MaxManifestSize)
	}
	var top map[uint64]cbor.RawMessage
	if err := decMode.Unmarshal(b, &top); err != nil {
		return nil, manifestError("%s", describe(err))
	}
	m := new(Manifest)
	if err := checkFields(fieldsOfMap(top), reflect.TypeOf(*m)); err != nil {
		return nil, manifestError("%s", describe(err))
	}
	if err := decMode.Unmarshal(b, m); err != nil {
		return nil, manifestError("%s", describe(err))
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// SignManifest encodes m and signs the encoding with the deployment key.
func SignManifest(key ed25519.PrivateKey, m *Manifest) (manifest, signature []byte, err error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, nil, errors.New("sign manifest: not an ed25519 private key")
	}
	if manifest, err = EncodeManifest(m); err != nil {
		return nil, nil, err
	}
	return manifest, ed25519.Sign(key, manifest), nil
}

// VerifyManifest checks a manifest's signature with the deployment key and returns
// the manifest it vouches for.
func VerifyManifest(key ed25519.PublicKey, manifest, signature []byte) (*Manifest, error) {
	if len(key) != ed25519.PublicKeySize {
		return nil, errors.New("verify manifest: not an ed25519 public key")
	}
	if len(manifest) == 0 || len(signature) == 0 {
		return nil, ErrUnsigned
	}
	if len(signature) != SignatureSize || !ed25519.Verify(key, manifest, signature) {
		return nil, ErrBadSignature
	}
	return DecodeManifest(manifest)
}

// Errors of VerifyManifest and Manifest.Matches.
var (
	// ErrUnsigned says a deployment carries no manifest or no signature.
	ErrUnsigned = errors.New("manifest: the deployment is not signed")
	// ErrBadSignature says the signature does not verify with the deployment key.
	ErrBadSignature = errors.New("manifest: the signature does not verify with the deployment key")
	// ErrManifestMismatch says a verified manifest vouches for something else.
	ErrManifestMismatch = errors.New("manifest: does not match the deployment")
)

// Matches reports, as an error wrapping ErrManifestMismatch that names the field,
// whether m vouches for this module and configuration of this application.
func (m *Manifest) Matches(namespace, app string, digest []byte, config map[string]string) error {
	hash, err := ConfigHash(config)
	if err != nil {
		return err
	}
	switch {
	case m.Namespace != namespace:
		return fmt.Errorf("%w: namespace %q, the deployment's is %q", ErrManifestMismatch, m.Namespace, namespace)
	case m.App != app:
		return fmt.Errorf("%w: app %q, the deployment's is %q", ErrManifestMismatch, m.App, app)
	case !bytes.Equal(m.Digest, digest):
		return fmt.Errorf("%w: it names another module digest", ErrManifestMismatch)
	case !bytes.Equal(m.ConfigHash, hash):
		return fmt.Errorf("%w: it names another configuration", ErrManifestMismatch)
	}
	return nil
}

// Supersedes reports whether a device holding manifest held may take m for the same
// app: a higher version, or the same version naming the same module and
// configuration (a repeated delivery).
func (m *Manifest) Supersedes(held *Manifest) bool {
	if held == nil || m.Version > held.Version {
		return true
	}
	return m.Version == held.Version && bytes.Equal(m.Digest, held.Digest) && bytes.Equal(m.ConfigHash, held.ConfigHash)
}

func checkLabel(field, s string, max int) error {
	if why := labelProblem(s, max); why != "" {
		return manifestError("%s %q %s", field, truncate(s, 64), why)
	}
	return nil
}

func manifestError(format string, args ...any) error {
	return invalid(TypeDeploy, "manifest "+format, args...)
}
