package builder

import (
	"embed"
	"encoding/json"
	"fmt"
)

// The SDK files are embedded so a build works from any working directory; each
// build writes the one for its language next to the user's source.
//
//go:embed sdk/c/wasmbed.h sdk/assemblyscript/wasmbed.ts sdk/rust/wasmbed.rs sdk/wat/README.md
var sdkFS embed.FS

//go:embed assemblyscript/package.json
var ascPackageJSON []byte

// SDKFile returns the SDK file for lang (wasmbed.h, wasmbed.ts or wasmbed.rs; the
// WAT SDK is a README) and the name a build gives it next to the source.
func SDKFile(lang Language) (name string, content []byte, err error) {
	var path string
	switch lang {
	case C:
		name, path = "wasmbed.h", "sdk/c/wasmbed.h"
	case AssemblyScript:
		name, path = "wasmbed.ts", "sdk/assemblyscript/wasmbed.ts"
	case Rust:
		name, path = "wasmbed.rs", "sdk/rust/wasmbed.rs"
	case WAT:
		name, path = "README.md", "sdk/wat/README.md"
	default:
		return "", nil, fmt.Errorf("%w %q", ErrUnknownLanguage, string(lang))
	}
	content, err = sdkFS.ReadFile(path)
	if err != nil {
		return "", nil, fmt.Errorf("read sdk: %w", err)
	}
	return name, content, nil
}

// AssemblyScriptVersion is the AssemblyScript compiler version the builder is
// pinned to (builder/assemblyscript/package.json and its lockfile).
var AssemblyScriptVersion = func() string {
	var p struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	if err := json.Unmarshal(ascPackageJSON, &p); err != nil {
		return ""
	}
	return p.Dependencies["assemblyscript"]
}()
