// Package qemutest boots the Wasmbed firmware on emulated Cortex-M boards (QEMU) and
// drives it over its UART as the gateway would: Welcome, Deploy, Chunks, Start, then a
// new version that replaces the old one. It also runs the buffer budgets of the boards
// QEMU cannot run (RA4M1, nRF52840) on the MPS2, with the example applications that fit
// them. TestUARTWhileBusy sends a burst of frames while an application keeps the CPU
// busy and checks that all are answered and that the interrupt-fed receive ring held
// them (the peak the firmware reports). TestSleepingApp and TestLogFlood hold the MPS2 to
// the wall-clock limits of docs/abi.md ("Limits"): an app sleeping in one loop call is
// stopped at its 2 s budget with heartbeats on time, and a log flood is rate-limited,
// reported and never stalls the session. The test builds the firmware itself
// (make -C firmware boards) and fails, rather than skips, when the toolchain or
// qemu-system-arm is missing: hack/deps.sh installs them.
//
//	go test ./firmware/qemutest
package qemutest
