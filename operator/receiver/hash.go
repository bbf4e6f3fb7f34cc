package receiver

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
)

// SourceHash fingerprints an Application's source: equal hashes build equal modules.
func SourceHash(s v1.ApplicationSource) string { return hashJSON(s) }

// ConfigHash fingerprints an Application's config.
func ConfigHash(c map[string]string) string {
	if len(c) == 0 {
		return ""
	}
	return hashJSON(c) // encoding/json sorts map keys
}

func hashJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil { // the API types always marshal
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
