//go:build unix

package manager

import (
	"os/exec"
	"syscall"
)

// setProcessGroup starts the process in its own process group, so that stopping it
// also stops whatever it started and a terminal's Ctrl-C does not reach it directly.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killGroup sends SIGTERM (or SIGKILL when hard) to the process group of cmd.
func killGroup(cmd *exec.Cmd, hard bool) {
	if cmd.Process == nil {
		return
	}
	sig := syscall.SIGTERM
	if hard {
		sig = syscall.SIGKILL
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
}
