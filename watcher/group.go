package watcher

import "time"

// OrphanEvents is implemented by a Spawner that also reaps the processes
// that re-parent to circled (the supervisor's reaper: circled is PID 1 or
// a child subreaper). When a process's leader has exited but the rest of
// its process group still runs, the watcher waits for the group to
// vanish; each reap of such an orphan is the event that makes it look
// again (kill(-pgid, 0)), so nothing polls.
type OrphanEvents interface {
	// NotifyOrphans calls f, from another goroutine and with no lock of
	// the spawner held, after each reap of a process that no Start
	// registered, until cancel is called. ok is false when orphans do not
	// re-parent to this process: f alone cannot tell when a group is gone.
	NotifyOrphans(f func()) (cancel func(), ok bool)
}

// Without any event source (DirectSpawner, a spawner that is not a
// subreaper), a lingering group is re-checked on a backoff: recheckMin,
// doubling up to recheckMax. This only runs while a group lingers.
const (
	recheckMin = 5 * time.Millisecond
	recheckMax = 500 * time.Millisecond
)
