// Package nettest boots the mps2-an386 network image (make -C firmware net) in QEMU with
// its LAN9118 on QEMU's user-mode network, restricted to one forwarded address that
// reaches a real gateway on this machine's loopback, and checks the device's own
// identity end to end: it generates its P-256 key, enrolls with its bootstrap token over
// HTTPS, connects over TLS 1.2 with the certificate it got, runs a deployed module,
// reconnects after a gateway restart and after its own warm reset (key and certificate
// from its identity store), refuses a gateway whose certificate another CA signed or names another host, and
// is refused a session while its Device is disabled (the Kubernetes registry, on the
// test apiserver). It fails, rather than skips, when QEMU, the toolchain, socat or the
// lwIP / Mbed TLS sources are missing (hack/deps.sh installs them) or KUBEBUILDER_ASSETS
// is not set (make test sets it).
//
//	go test ./firmware/nettest
package nettest
