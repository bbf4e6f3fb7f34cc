//go:build !unix

package manager

import "os/exec"

func setProcessGroup(*exec.Cmd) {}

// killGroup kills the process itself: there are no process groups to signal here.
func killGroup(cmd *exec.Cmd, _ bool) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}
