// Package qemutest boots the Wasmbed firmware on emulated Cortex-M boards (QEMU) and
// drives it over its UART as the gateway would: Welcome, Deploy, Chunks, Start, then a
// new version that replaces the old one. The test builds the firmware itself
// (make -C firmware boards) and fails, rather than skips, when the toolchain or
// qemu-system-arm is missing: hack/deps.sh installs them.
//
//	go test ./firmware/qemutest
package qemutest
