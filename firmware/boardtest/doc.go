// Package boardtest checks the linked firmware image of every board in the catalogue
// (api/boards) without running it: where the vector table sits, where the initial
// stack pointer points, that the image fits the board's flash and RAM, that the UART the
// firmware drives is the one the board's Renode platform (emulation/platforms) connects,
// and fixed words some MCUs read from flash at reset. It is the only check of the boards
// that neither QEMU nor this machine can run (nRF52840, RA4M1), and it holds the
// QEMU boards to the same rules. The test builds the images itself
// (make -C firmware boards) and fails when the toolchain is missing.
//
//	go test ./firmware/boardtest
package boardtest
