//go:build unix

package config

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time (user and system) this process has used: a
// measure other processes on the machine do not stretch.
func cpuTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
