package protocol

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
)

// goldenKey is the deployment key of the golden manifests: derived from a fixed seed,
// so its signatures (ed25519 is deterministic) are the same on every run.
func goldenKey() ed25519.PrivateKey { return ed25519.NewKeyFromSeed(seq(ed25519.SeedSize, 0x5a)) }

func goldenSensorHub() *Manifest {
	hash, _ := ConfigHash(map[string]string{"period_ms": "500"})
	return &Manifest{
		Type: ManifestType, Namespace: "default", App: "sensor-hub",
		UID: "6c1f0c9e-3f5b-4d8a-9a59-2f6f0f1d7b21", Generation: 3, Version: 3_800_000_000 << 31,
		Digest: digest(0xa0), ConfigHash: hash,
	}
}

// goldenSignedDeploy is the Deploy that carries golden manifest "sensor_hub".
func goldenSignedDeploy() *Deploy {
	man, sig, err := SignManifest(goldenKey(), goldenSensorHub())
	if err != nil {
		panic(err) // fixed input: a failure is a bug in the test
	}
	return &Deploy{
		App: "sensor-hub", Digest: digest(0xa0), Size: 70000, ChunkSize: 8192,
		Config: map[string]string{"period_ms": "500"}, Signature: sig, Manifest: man,
	}
}

type goldenManifests struct {
	PublicKey string           `json:"public_key"`
	Valid     []goldenManifest `json:"valid"`
	Invalid   []goldenManifest `json:"invalid"`
}

type goldenManifest struct {
	Name       string            `json:"name"`
	Note       string            `json:"note,omitempty"`
	Hex        string            `json:"hex"`
	Signature  string            `json:"signature"`
	Config     map[string]string `json:"config,omitempty"`
	ConfigHash string            `json:"config_hash,omitempty"`
	Value      any               `json:"value,omitempty"`
	// Error is "bad_signature" (the signature does not verify) or "invalid_value"
	// (it verifies, but the manifest is refused).
	Error string `json:"error,omitempty"`
}

type invalidManifest struct {
	name, note string
	raw        func() []byte // the manifest bytes, signed as they are
	flip       bool          // corrupt the signature
	want       string
}

func invalidManifests() []invalidManifest {
	enc := func(edit func(m *Manifest)) func() []byte {
		return func() []byte {
			m := goldenSensorHub()
			edit(m)
			b, err := encMode.Marshal(m) // not EncodeManifest: these are out of range on purpose
			if err != nil {
				panic(err)
			}
			return b
		}
	}
	valid := enc(func(*Manifest) {})
	return []invalidManifest{
		{"bad_signature", "one bit of the signature flipped", valid, true, "bad_signature"},
		{"wrong_type", "another purpose's type string", enc(func(m *Manifest) { m.Type = "wasmbed.dev/attestation/v1" }), false, "invalid_value"},
		{"zero_version", "", enc(func(m *Manifest) { m.Version = 0 }), false, "invalid_value"},
		{"short_digest", "", enc(func(m *Manifest) { m.Digest = m.Digest[:31] }), false, "invalid_value"},
		{"bad_namespace", "upper case in the namespace", enc(func(m *Manifest) { m.Namespace = "Default" }), false, "invalid_value"},
		{"missing_uid", "key 4 absent", func() []byte {
			b := valid()
			// The uid is the only 36-byte text string: drop key 4 and its value and
			// shrink the map from 8 pairs (0xa8) to 7.
			i := bytes.Index(b, append([]byte{0x04, 0x78, 36}, goldenSensorHub().UID...))
			out := append([]byte{0xa7}, b[1:i]...)
			return append(out, b[i+3+36:]...)
		}, false, "invalid_value"},
	}
}

func buildGoldenManifests(t *testing.T) goldenManifests {
	key := goldenKey()
	out := goldenManifests{PublicKey: hex.EncodeToString(key.Public().(ed25519.PublicKey))}
	for _, c := range []struct {
		name, note string
		config     map[string]string
		edit       func(*Manifest)
	}{
		{"sensor_hub", "the manifest Deploy \"deploy_signed\" carries", map[string]string{"period_ms": "500"}, func(*Manifest) {}},
		{"empty_config", "the config hash of an empty configuration is sha256(a0); longest names", nil, func(m *Manifest) {
			m.Namespace, m.App = string(bytes.Repeat([]byte("n"), MaxNamespaceLen)), string(bytes.Repeat([]byte("a"), MaxAppNameLen))
			m.UID, m.Generation, m.Version = string(bytes.Repeat([]byte("u"), MaxUIDLen)), 1<<62, 1<<63|1
		}},
	} {
		m := goldenSensorHub()
		hash, err := ConfigHash(c.config)
		if err != nil {
			t.Fatal(err)
		}
		m.ConfigHash = hash
		c.edit(m)
		raw, sig, err := SignManifest(key, m)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		out.Valid = append(out.Valid, goldenManifest{
			Name: c.name, Note: c.note, Hex: hex.EncodeToString(raw), Signature: hex.EncodeToString(sig),
			Config: c.config, ConfigHash: hex.EncodeToString(hash), Value: readable(reflect.ValueOf(m).Elem()),
		})
	}
	for _, c := range invalidManifests() {
		raw := c.raw()
		sig := ed25519.Sign(key, raw)
		if c.flip {
			sig[10] ^= 1
		}
		out.Invalid = append(out.Invalid, goldenManifest{
			Name: c.name, Note: c.note, Hex: hex.EncodeToString(raw), Signature: hex.EncodeToString(sig), Error: c.want,
		})
	}
	return out
}

func TestGoldenManifests(t *testing.T) {
	g := buildGoldenManifests(t)
	pub := goldenKey().Public().(ed25519.PublicKey)
	if len(g.Valid) < 2 || len(g.Invalid) < 6 {
		t.Fatalf("golden manifests: %d valid, %d invalid; fewer than expected", len(g.Valid), len(g.Invalid))
	}
	for _, c := range g.Valid {
		t.Run("valid/"+c.Name, func(t *testing.T) {
			m, err := VerifyManifest(pub, unhex(t, c.Hex), unhex(t, c.Signature))
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			again, err := EncodeManifest(m)
			if err != nil || !bytes.Equal(again, unhex(t, c.Hex)) {
				t.Fatalf("re-encode = %x, %v; want %s", again, err, c.Hex)
			}
			if err := m.Matches(m.Namespace, m.App, m.Digest, c.Config); err != nil {
				t.Fatalf("matches its own config: %v", err)
			}
		})
	}
	for _, c := range g.Invalid {
		t.Run("invalid/"+c.Name, func(t *testing.T) {
			_, err := VerifyManifest(pub, unhex(t, c.Hex), unhex(t, c.Signature))
			var got string
			var pe *Error
			switch {
			case errors.Is(err, ErrBadSignature):
				got = "bad_signature"
			case errors.As(err, &pe):
				got = pe.Code.String()
			}
			if got != c.Error {
				t.Fatalf("verify = %v (%q), want %s", err, got, c.Error)
			}
		})
	}
}

func TestManifestRules(t *testing.T) {
	key := goldenKey()
	pub := key.Public().(ed25519.PublicKey)
	other := ed25519.NewKeyFromSeed(seq(ed25519.SeedSize, 1))
	base := goldenSensorHub()
	raw, sig, err := SignManifest(key, base)
	if err != nil {
		t.Fatal(err)
	}
	_, otherSig, _ := SignManifest(other, base)
	cfg := map[string]string{"period_ms": "500"}

	verifyCases := []struct {
		name     string
		man, sig []byte
		want     error
	}{
		{"valid", raw, sig, nil},
		{"unsigned", raw, nil, ErrUnsigned},
		{"no manifest", nil, sig, ErrUnsigned},
		{"another key", raw, otherSig, ErrBadSignature},
		{"short signature", raw, sig[:63], ErrBadSignature},
		{"bytes appended", append(append([]byte{}, raw...), 0), sig, ErrBadSignature},
	}
	for _, c := range verifyCases {
		t.Run("verify/"+c.name, func(t *testing.T) {
			_, err := VerifyManifest(pub, c.man, c.sig)
			if !errors.Is(err, c.want) {
				t.Fatalf("VerifyManifest = %v, want %v", err, c.want)
			}
		})
	}

	matchCases := []struct {
		name   string
		ns     string
		app    string
		digest []byte
		config map[string]string
		ok     bool
	}{
		{"same", "default", "sensor-hub", digest(0xa0), cfg, true},
		{"other namespace", "lab", "sensor-hub", digest(0xa0), cfg, false},
		{"other app", "default", "blinky", digest(0xa0), cfg, false},
		{"other module", "default", "sensor-hub", digest(0x10), cfg, false},
		{"other config", "default", "sensor-hub", digest(0xa0), map[string]string{"period_ms": "5"}, false},
		{"no config", "default", "sensor-hub", digest(0xa0), nil, false},
	}
	for _, c := range matchCases {
		t.Run("matches/"+c.name, func(t *testing.T) {
			err := base.Matches(c.ns, c.app, c.digest, c.config)
			if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrManifestMismatch)) {
				t.Fatalf("Matches = %v, want ok=%v", err, c.ok)
			}
		})
	}

	newer, replay, rollback := *base, *base, *base
	newer.Version++
	replay.Digest = digest(0x10)
	rollback.Version--
	supersede := []struct {
		name string
		m    *Manifest
		held *Manifest
		want bool
	}{
		{"nothing held", base, nil, true},
		{"same manifest again", base, base, true},
		{"higher version", &newer, base, true},
		{"lower version", &rollback, base, false},
		{"same version, other module", &replay, base, false},
	}
	for _, c := range supersede {
		t.Run("supersedes/"+c.name, func(t *testing.T) {
			if got := c.m.Supersedes(c.held); got != c.want {
				t.Fatalf("Supersedes = %v, want %v", got, c.want)
			}
		})
	}

	t.Run("empty config hashes as an empty map", func(t *testing.T) {
		a, _ := ConfigHash(nil)
		b, _ := ConfigHash(map[string]string{})
		want := sha256.Sum256([]byte{0xa0})
		if !bytes.Equal(a, want[:]) || !bytes.Equal(b, want[:]) {
			t.Fatalf("ConfigHash(nil) = %x, ConfigHash({}) = %x, want %x", a, b, want)
		}
	})
	t.Run("too large to encode", func(t *testing.T) {
		m := *base
		m.UID = string(bytes.Repeat([]byte("u"), MaxUIDLen+1))
		if _, err := EncodeManifest(&m); err == nil {
			t.Fatal("a 65-byte uid encoded")
		}
	})
}
