// Package manager runs emulated boards for Devices: it starts QEMU or Renode with the
// Wasmbed firmware (Runner, Emulator), bridges each board's UART to the gateway over
// mutual TLS with the device's certificate (Bridge: TLS offload, the key never leaves
// this process), enrolls each board's key through a Kubernetes CertificateSigningRequest
// that the operator signs (Credentials, Enroll: the package holds no CA key), and
// watches Device objects to start, stop and restart boards whose
// spec.emulation.enabled is true (Manager).
//
// Lock order: Manager.mu, then nothing; each Board, Emulator and Bridge has its own
// lock, never held while calling out of the type.
package manager
