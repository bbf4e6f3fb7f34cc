// Package v1alpha1 holds the Wasmbed Kubernetes API, group wasmbed.dev: the Device,
// Application and Gateway kinds. docs/crds.md describes them for users.
//
// +kubebuilder:object:generate=true
// +groupName=wasmbed.dev
package v1alpha1
