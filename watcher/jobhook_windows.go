package watcher

// jobHookOf is the spec's Job Object hook (Spec.Job: resource limits,
// memory_max, cpu_max and pids_max through limits.ApplyJob), or nil.
func jobHookOf(spec Spec) func(wid int, job uintptr) error { return spec.Job }
