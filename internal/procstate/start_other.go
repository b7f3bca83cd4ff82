//go:build !linux

package procstate

import "errors"

var errNoStart = errors.New("process start times are only read on Linux (/proc/PID/stat)")

// StartTime cannot be read here (documented): no process is recorded,
// so recovery never signals a pid it cannot verify.
func StartTime(pid int) (uint64, error) { return 0, errNoStart }

// ProcStat is what recovery needs of a process.
type ProcStat struct {
	PGID  int
	Start uint64
	State byte
}

// Stat is not available here.
func Stat(pid int) (ProcStat, error) { return ProcStat{}, errNoStart }

// Pids lists nothing here.
func Pids() []int { return nil }

// Cmdline is unknown here.
func Cmdline(pid int) string { return "" }
