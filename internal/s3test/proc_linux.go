package s3test

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill the server when the test process dies.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
