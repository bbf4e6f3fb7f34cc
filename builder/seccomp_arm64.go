package builder

import "golang.org/x/sys/unix"

const (
	nativeAuditArch = unix.AUDIT_ARCH_AARCH64
	syscallNrMask   = 0
)

var archDeniedSyscalls []uintptr
