package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// inheritedIgnored reports whether sig is ignored at the OS level. Go's
// signal.Ignored only knows about SIGHUP/SIGINT and signal.Ignore, not
// other dispositions inherited as SIG_IGN (SIGTSTP from a job-control
// shell, say), so read the kernel's view.
func inheritedIgnored(sig syscall.Signal) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "SigIgn:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && sig >= 1 && sig <= 64 && mask&(1<<(uint(sig)-1)) != 0
		}
	}
	return false
}
