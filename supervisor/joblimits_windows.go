package supervisor

import (
	"github.com/circle-supervisor/circle/internal/limits"
	"golang.org/x/sys/windows"
)

// jobLimits is the Job Object hook (watcher.Spec.Job) that puts l's
// memory_max, cpu_max and pids_max on each process's job before it runs.
func jobLimits(l limits.Limits) func(wid int, job uintptr) error {
	return func(_ int, job uintptr) error { return limits.ApplyJob(windows.Handle(job), l) }
}
