package supervisor

// The reaper (reaper_unix.go) is the only place in circled that calls
// wait4. It implements watcher.Spawner: a mutex spans cmd.Start plus
// registering the pid, and every reap sweep, so a child that dies at once
// is never reaped before it is known. Sweeps run on every SIGCHLD and on
// a slow timer, and drain until no child is left to reap. Statuses of
// registered pids go to their watcher's callback (after the mutex is
// released); any other child is an orphan that re-parented to us (we are
// PID 1 or a subreaper) and is only logged. On Windows there is nothing
// to reap: watcher.DirectSpawner is used instead.
