// Package console is the Wasmbed web console's backend: a small REST API over the
// Kubernetes API (Devices, Applications, Gateways, their Events, device logs from the
// gateways), a server-sent-events stream of live changes and of dev.wasmbed.*
// CloudEvents, and the React UI embedded from web/dist.
//
// The console holds no privileges of its own over Wasmbed objects: every Kubernetes
// call is made with the bearer token the browser sends, so the apiserver's RBAC
// decides what each user sees and changes. See docs/console.md.
package console
