package supervisor

// The reaper (reaper_unix.go) is the only place in circled that calls
// wait4. It implements watcher.Spawner: its mutex is held only around the
// bookkeeping of a start and around every reap sweep, so a child that
// dies at once is never lost (see Reaper.Start). Sweeps run on every
// SIGCHLD and drain until no child is left to reap. Statuses of
// registered pids go to their watcher's callback (after the mutex is
// released); any other child is an orphan that re-parented to us (we are
// PID 1 or a subreaper): it is counted, and the watchers that wait for
// the rest of a process group to vanish are told (NotifyOrphans). On
// Windows there is nothing to reap: watcher.DirectSpawner is used
// instead.
