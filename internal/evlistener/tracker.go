package evlistener

import "sync"

// Tracker follows each process's supervisor state from what circled
// sees happen to it (spawned, up, being stopped, ended, given up) and
// returns the PROCESS_STATE_* changes supervisord would notify for the
// same history (supervisor/process.py's change_state calls), with its
// tries count. A change to the state a process is already in is no
// change, as in supervisord. It is safe for concurrent use.
type Tracker struct {
	mu    sync.Mutex
	procs map[procKey]*tracked
}

type procKey struct{ group, process string }

type tracked struct {
	state string
	tries int // supervisord's backoff count
	pid   int
}

// NewTracker starts with every process STOPPED.
func NewTracker() *Tracker { return &Tracker{procs: map[procKey]*tracked{}} }

func (t *Tracker) get(group, process string) *tracked {
	k := procKey{group, process}
	p := t.procs[k]
	if p == nil {
		p = &tracked{state: StateStopped}
		t.procs[k] = p
	}
	return p
}

// move changes p's state and returns the change (none when unchanged).
func move(out []StateChange, group, process string, p *tracked, to string, pid int, expected bool) []StateChange {
	if p.state == to {
		return out
	}
	c := StateChange{Process: process, Group: group, From: p.state, To: to, PID: pid, Expected: expected}
	if to == StateBackoff {
		p.tries++
	}
	c.Tries = p.tries
	p.state = to
	return append(out, c)
}

// Spawned: process started as pid. → STARTING (from STOPPED, EXITED,
// BACKOFF or FATAL), tries = the failed starts so far.
func (t *Tracker) Spawned(group, process string, pid int) []StateChange {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.get(group, process)
	p.pid = pid
	return move(nil, group, process, p, StateStarting, pid, false)
}

// SpawnFailed: starting the process failed before it ran (exec error,
// no such user, ...). → STARTING then BACKOFF, as supervisord's spawn
// reports it.
func (t *Tracker) SpawnFailed(group, process string) []StateChange {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.get(group, process)
	p.pid = 0
	out := move(nil, group, process, p, StateStarting, 0, false)
	return move(out, group, process, p, StateBackoff, 0, false)
}

// Running: pid stayed up (startsecs / min_uptime) or passed its
// readiness checks. STARTING → RUNNING; the tries count restarts at 0.
func (t *Tracker) Running(group, process string, pid int) []StateChange {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.get(group, process)
	if pid != p.pid {
		return nil // not the process tracked (a draining one)
	}
	p.tries = 0
	return move(nil, group, process, p, StateRunning, pid, false)
}

// Stopping: circled began stopping pid (a stop, restart, reload,
// scale-down or shutdown: any signal meant to end it). RUNNING or
// STARTING → STOPPING; a process waiting in BACKOFF goes to STOPPED at
// once, as supervisord's kill does.
func (t *Tracker) Stopping(group, process string, pid int) []StateChange {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.get(group, process)
	switch p.state {
	case StateBackoff:
		return move(nil, group, process, p, StateStopped, 0, false)
	case StateRunning, StateStarting:
		if pid == p.pid {
			return move(nil, group, process, p, StateStopping, pid, false)
		}
	}
	return nil
}

// Exited: pid ended; expected says whether its exit code is one of
// exitcodes (a process killed by a signal never is). STOPPING →
// STOPPED; STARTING → BACKOFF (it did not stay up); RUNNING → EXITED.
func (t *Tracker) Exited(group, process string, pid int, expected bool) []StateChange {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.get(group, process)
	if pid != p.pid || pid == 0 {
		return nil
	}
	p.pid = 0
	switch p.state {
	case StateStopping:
		return move(nil, group, process, p, StateStopped, pid, false)
	case StateStarting:
		return move(nil, group, process, p, StateBackoff, pid, false)
	case StateRunning:
		p.tries = 0
		return move(nil, group, process, p, StateExited, pid, expected)
	}
	return nil
}

// GaveUp: circled will not start the process again (too many failed
// starts, or a flapping watcher that gave up). → FATAL.
func (t *Tracker) GaveUp(group, process string) []StateChange {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.get(group, process)
	p.tries = 0
	return move(nil, group, process, p, StateFatal, 0, false)
}

// State is the process's supervisor state as tracked (STOPPED when
// unknown).
func (t *Tracker) State(group, process string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.procs[procKey{group, process}]; p != nil {
		return p.state
	}
	return StateStopped
}

// PID is the pid the Tracker follows for the process: the last one
// Spawned gave, 0 once it exited (or when unknown).
func (t *Tracker) PID(group, process string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.procs[procKey{group, process}]; p != nil {
		return p.pid
	}
	return 0
}

// Forget drops a process that no longer exists (removed by a reload or
// removeProcessGroup); it is STOPPED if it comes back.
func (t *Tracker) Forget(group, process string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.procs, procKey{group, process})
}
