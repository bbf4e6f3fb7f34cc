//go:build !amd64 && !arm64

package builder

// No filter is written for other architectures: builds there fail (seccompFilter).
const (
	nativeAuditArch = 0
	syscallNrMask   = 0
)

var archDeniedSyscalls []uintptr
