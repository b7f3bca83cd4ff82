package watcher

import "github.com/circle-supervisor/circle/internal/cgroup"

// On Windows a process's tree lives in its Job Object, which is closed
// (KILL_ON_JOB_CLOSE) once the main process has been waited for: nothing
// is left when the exit is reported.
func pgroupGone(pid int) bool { return true }

func signalPgroup(pid int, sig string) error { return nil }

func signalCell(c *cgroup.Proc, sig string, pgid int) {}
