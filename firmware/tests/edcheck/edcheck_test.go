package edcheck

import (
	"crypto/ed25519"
	"crypto/sha256"
	"math/rand"
	"testing"
)

// Random keys sign random module digests with Go's crypto/ed25519; the C verifier must
// accept every signature and refuse it after one flipped bit in the digest, R, S or the key.
func TestCrossCheckGo(t *testing.T) {
	rng := rand.New(rand.NewSource(8032))
	const cases = 300
	for i := 0; i < cases; i++ {
		seed := make([]byte, ed25519.SeedSize)
		rng.Read(seed)
		priv := ed25519.NewKeyFromSeed(seed)
		pub := []byte(priv.Public().(ed25519.PublicKey))
		module := make([]byte, rng.Intn(4096))
		rng.Read(module)
		d := sha256.Sum256(module)
		digest := d[:]
		sig := ed25519.Sign(priv, digest)
		if !Verify(pub, digest, sig) {
			t.Fatalf("case %d: valid signature refused (pub %x sig %x)", i, pub, sig)
		}
		// flip one random bit of b[lo:hi] in a copy
		flip := func(b []byte, lo, hi int) ([]byte, int) {
			c := append([]byte(nil), b...)
			bit := lo*8 + rng.Intn((hi-lo)*8)
			c[bit/8] ^= 1 << (bit % 8)
			return c, bit
		}
		check := func(what string, bit int, p, m, s []byte) {
			if got, want := Verify(p, m, s), ed25519.Verify(p, m, s); got || want {
				t.Errorf("case %d: %s bit %d flipped: C %v, Go %v", i, what, bit, got, want)
			}
		}
		m, bit := flip(digest, 0, 32)
		check("digest", bit, pub, m, sig)
		s, bit := flip(sig, 0, 32)
		check("R", bit, pub, digest, s)
		s, bit = flip(sig, 32, 64)
		check("S", bit, pub, digest, s)
		p, bit := flip(pub, 0, 32)
		check("key", bit, p, digest, sig)
	}
}
