// Package edcheck exposes the firmware's C Ed25519 verifier (firmware/crypto) to Go
// through cgo, so its verdicts can be compared with crypto/ed25519.
package edcheck

/*
#cgo CFLAGS: -std=c11 -O2 -Wall
#include "../../crypto/ed25519.h"
*/
import "C"

import "unsafe"

// Verify reports whether the C verifier accepts sig (64 bytes) of msg under pub (32 bytes).
func Verify(pub, msg, sig []byte) bool {
	if len(pub) != 32 || len(sig) != 64 {
		return false
	}
	var m *C.uint8_t
	if len(msg) > 0 {
		m = (*C.uint8_t)(unsafe.Pointer(&msg[0]))
	}
	return C.wb_ed25519_verify((*C.uint8_t)(unsafe.Pointer(&sig[0])), m, C.size_t(len(msg)),
		(*C.uint8_t)(unsafe.Pointer(&pub[0]))) == 0
}
