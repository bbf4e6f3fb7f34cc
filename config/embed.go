// Package config embeds the manifests that the embedded platform (`wasmbed dev`) installs
// itself; the same files are applied to a cluster with `ko apply -Rf config/`.
package config

import "embed"

// CRDs holds the generated CustomResourceDefinitions, under 300-crds/.
//
//go:embed 300-crds/*.yaml
var CRDs embed.FS
