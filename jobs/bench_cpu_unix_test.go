//go:build unix

package jobs

import (
	"syscall"
	"time"
)

// cpuTime is the user+system CPU time of the process (the machine the
// benchmarks run on may be shared: wall time alone can mislead).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
