//go:build !linux

package s3test

import "os/exec"

// setDeathSignal does nothing: only Linux can tie a child's life to ours.
func setDeathSignal(cmd *exec.Cmd) {}
