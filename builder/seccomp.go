package builder

import (
	"encoding/binary"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// The seccomp filter every compiler runs under (bwrap --seccomp). It is a deny
// list: the compilers need the ordinary calls of a program that reads files,
// writes files and starts helpers, and nothing of what lets a process reach
// beyond its sandbox: namespaces and mounts, tracing other processes, the
// kernel's keyrings, BPF, module loading, io_uring (which bypasses seccomp),
// and sockets other than Unix ones.

// seccomp_data offsets: nr, arch, then 64-bit arguments (little-endian: the low
// half of an argument is at its offset).
const (
	offNr   = 0
	offArch = 4
	offArg0 = 16
	offArg1 = 24
)

// namespaceFlags are the clone flags that create namespaces.
const namespaceFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET |
	unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWCGROUP

// deniedSyscalls fail with EPERM on every architecture.
var deniedSyscalls = []uintptr{
	unix.SYS_MOUNT, unix.SYS_UMOUNT2, unix.SYS_PIVOT_ROOT, unix.SYS_CHROOT,
	unix.SYS_UNSHARE, unix.SYS_SETNS,
	unix.SYS_OPEN_TREE, unix.SYS_MOVE_MOUNT, unix.SYS_FSOPEN, unix.SYS_FSCONFIG,
	unix.SYS_FSMOUNT, unix.SYS_FSPICK, unix.SYS_MOUNT_SETATTR,
	unix.SYS_PTRACE, unix.SYS_PROCESS_VM_READV, unix.SYS_PROCESS_VM_WRITEV,
	unix.SYS_PERF_EVENT_OPEN, unix.SYS_BPF, unix.SYS_USERFAULTFD, unix.SYS_FANOTIFY_INIT,
	unix.SYS_KEYCTL, unix.SYS_ADD_KEY, unix.SYS_REQUEST_KEY,
	unix.SYS_KEXEC_LOAD, unix.SYS_KEXEC_FILE_LOAD, unix.SYS_INIT_MODULE, unix.SYS_FINIT_MODULE,
	unix.SYS_DELETE_MODULE, unix.SYS_REBOOT, unix.SYS_SWAPON, unix.SYS_SWAPOFF,
	unix.SYS_SYSLOG, unix.SYS_ACCT, unix.SYS_QUOTACTL, unix.SYS_LOOKUP_DCOOKIE,
	unix.SYS_OPEN_BY_HANDLE_AT, unix.SYS_NAME_TO_HANDLE_AT,
	unix.SYS_SETTIMEOFDAY, unix.SYS_CLOCK_SETTIME, unix.SYS_CLOCK_ADJTIME, unix.SYS_ADJTIMEX,
	unix.SYS_SETHOSTNAME, unix.SYS_SETDOMAINNAME, unix.SYS_VHANGUP,
}

// unsupportedSyscalls fail with ENOSYS, so that programs fall back to the older
// call: clone3 hides its flags from the filter in memory, io_uring does its work
// outside seccomp's view.
var unsupportedSyscalls = []uintptr{
	unix.SYS_CLONE3, unix.SYS_IO_URING_SETUP, unix.SYS_IO_URING_ENTER, unix.SYS_IO_URING_REGISTER,
}

// bpf is a classic BPF program under construction.
type bpf []unix.SockFilter

func (p *bpf) stmt(code uint16, k uint32) {
	*p = append(*p, unix.SockFilter{Code: code, K: k})
}

func (p *bpf) jump(code uint16, k uint32, jt, jf uint8) {
	*p = append(*p, unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k})
}

func (p *bpf) load(off uint32) { p.stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, off) }
func (p *bpf) ret(k uint32)    { p.stmt(unix.BPF_RET|unix.BPF_K, k) }

// ifEq returns k when the accumulator equals v; otherwise falls through.
func (p *bpf) ifEq(v, k uint32) {
	p.jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, v, 0, 1)
	p.ret(k)
}

func errno(e unix.Errno) uint32 { return unix.SECCOMP_RET_ERRNO | uint32(e) }

// seccompFilter returns the filter, as bwrap --seccomp reads it: an array of
// struct sock_filter in the machine's byte order.
func seccompFilter() ([]byte, error) {
	if nativeAuditArch == 0 {
		return nil, fmt.Errorf("no seccomp filter for %s: the build sandbox supports amd64 and arm64", runtime.GOARCH)
	}
	var p bpf
	// Another architecture's calling convention (a 32-bit entry point) is killed.
	p.load(offArch)
	p.jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, nativeAuditArch, 1, 0)
	p.ret(unix.SECCOMP_RET_KILL_PROCESS)
	p.load(offNr)
	if syscallNrMask != 0 {
		// x32 system calls on amd64.
		p.jump(unix.BPF_JMP|unix.BPF_JSET|unix.BPF_K, syscallNrMask, 0, 1)
		p.ret(errno(unix.EPERM))
	}
	for _, nr := range append(deniedSyscalls, archDeniedSyscalls...) {
		p.ifEq(uint32(nr), errno(unix.EPERM))
	}
	for _, nr := range unsupportedSyscalls {
		p.ifEq(uint32(nr), errno(unix.ENOSYS))
	}
	// clone: threads and processes, but no namespaces.
	p.jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, unix.SYS_CLONE, 0, 4)
	p.load(offArg0)
	p.jump(unix.BPF_JMP|unix.BPF_JSET|unix.BPF_K, namespaceFlags, 0, 1)
	p.ret(errno(unix.EPERM))
	p.ret(unix.SECCOMP_RET_ALLOW)
	// socket: Unix sockets only, so no network even if a namespace leaked one.
	p.jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, unix.SYS_SOCKET, 0, 4)
	p.load(offArg0)
	p.jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, unix.AF_UNIX, 1, 0)
	p.ret(errno(unix.EAFNOSUPPORT))
	p.ret(unix.SECCOMP_RET_ALLOW)
	// ioctl: no pushing input into a terminal (the kernel reads only the low
	// 32 bits of the request).
	p.jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, unix.SYS_IOCTL, 0, 6)
	p.load(offArg1)
	p.ifEq(unix.TIOCSTI, errno(unix.EPERM))
	p.ifEq(unix.TIOCLINUX, errno(unix.EPERM))
	p.ret(unix.SECCOMP_RET_ALLOW)
	p.ret(unix.SECCOMP_RET_ALLOW)

	out := make([]byte, 0, len(p)*8)
	for _, ins := range p {
		out = binary.NativeEndian.AppendUint16(out, ins.Code)
		out = append(out, ins.Jt, ins.Jf)
		out = binary.NativeEndian.AppendUint32(out, ins.K)
	}
	return out, nil
}
