// Package config embeds the manifests that the embedded platform (`wasmbed dev`) installs
// itself; the same files are applied to a cluster with `ko apply -Rf config/`.
package config

import "embed"

// CRDs holds the generated CustomResourceDefinitions, under 300-crds/.
//
//go:embed 300-crds/*.yaml
var CRDs embed.FS

// BoardManagerRBAC holds the board manager's ServiceAccount and bindings
// (200-rbac/400-board-manager.yaml) and the enroller ClusterRoles they bind
// (200-rbac/300-device-enroller.yaml).
//
//go:embed 200-rbac/300-device-enroller.yaml 200-rbac/400-board-manager.yaml
var BoardManagerRBAC embed.FS
