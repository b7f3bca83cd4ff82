package watcher

// jobHookOf is the spec's Job Object hook (resource limits: memory_max,
// cpu_max, pids_max through limits.ApplyJob), or nil. Spec has no field
// for one yet, so no process gets a hook: buildCmdDone and startCmd are
// ready for it (tested with setJobHook), the supervisor cannot give one.
func jobHookOf(spec Spec) func(wid int, job uintptr) error { return nil }
