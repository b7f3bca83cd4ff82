package watcher

import "time"

// Policy is the restart policy of one watcher. Its methods are pure
// functions of their inputs (the clock and the random source are
// arguments) so they are table-tested without real time.
type Policy struct {
	Respawn bool
	// OnFailure (respawn = on-failure): an exit whose code is in
	// ExitCodes (default 0), or a death by a signal circled sent, leaves
	// the slot down instead of restarting it.
	OnFailure  bool
	ExitCodes  []int
	MinUptime  time.Duration // an exit before this is a failed start
	BackoffMax time.Duration // cap of the backoff; running this long resets it
	MaxRetry   int           // consecutive spawn errors before fatal; -1 = forever
	// MaxFailedStarts > 0 gives up on a slot after that many failed
	// starts in a row (exits before MinUptime or before ready):
	// supervisord's startretries + 1. The slot is left down with the
	// reason; when no other slot runs, the watcher goes fatal. 0 = keep
	// retrying with backoff (circus).
	MaxFailedStarts int
	Flapping        Flapping
}

// Flapping is the flapping.* settings.
type Flapping struct {
	Attempts int           // exits ...
	Window   time.Duration // ... within this window mean flapping
	RetryIn  time.Duration // pause before trying again
	MaxRetry int           // flapping rounds before fatal; -1 = retry forever (circus)
}

// backoffBase is the first delay after a failed start.
const backoffBase = 100 * time.Millisecond

// History is what the policy remembers between exits.
type History struct {
	// Exits are the times of recent unexpected exits of one process slot,
	// oldest first, at most Flapping.Attempts of them. Flapping is per
	// slot: 20 different processes of a big watcher each dying once is
	// not flapping; one slot dying 5 times in 10 s is.
	Exits []time.Time
	// Rounds is the watcher's number of flapping rounds in the current
	// episode.
	Rounds int
}

// Decision is what to do after an exit or a spawn error.
type Decision int

const (
	// Restart the slot after Delay.
	Restart Decision = iota
	// Leave the slot down (respawn = false).
	LeaveDown
	// Flap: stop the watcher and start it again after Delay.
	Flap
	// Fatal: stop the watcher until someone starts it.
	Fatal
)

func (d Decision) String() string {
	switch d {
	case Restart:
		return "restart"
	case LeaveDown:
		return "leave-down"
	case Flap:
		return "flap"
	default:
		return "fatal"
	}
}

// Backoff is the delay before the next start after failures consecutive
// failed starts: 100 ms doubling up to BackoffMax, scaled by a jitter of
// ±10 % from rnd in [0,1). failures <= 0 means no delay.
func (p Policy) Backoff(failures int, rnd float64) time.Duration {
	if failures <= 0 {
		return 0
	}
	d := backoffBase
	for i := 1; i < failures && d < p.BackoffMax; i++ {
		d *= 2
	}
	if p.BackoffMax > 0 && d > p.BackoffMax {
		d = p.BackoffMax
	}
	return time.Duration(float64(d) * (0.9 + 0.2*rnd))
}

// OnExit decides what follows an unexpected exit of a process that ran
// for uptime, given the slot's consecutive failed starts. It returns the
// decision, its delay, the slot's new failure count and the watcher's new
// history.
func (p Policy) OnExit(now time.Time, uptime time.Duration, failures int, h History, rnd float64) (Decision, time.Duration, int, History) {
	if !p.Respawn {
		return LeaveDown, 0, failures, h
	}
	if uptime >= p.BackoffMax {
		failures = 0
	}
	if uptime >= p.Flapping.Window {
		// A long healthy run ends a flapping episode.
		h.Rounds = 0
	}
	if p.Flapping.Attempts > 0 {
		// Only exits inside the window can make a flap: the older ones are
		// dropped, so the history is bounded by time as well as by count
		// (a huge Attempts must not keep every exit of a long churn).
		// Appending in place reuses the caller's array: it hands over its
		// history and keeps the one returned.
		exits := h.Exits
		for len(exits) > 0 && now.Sub(exits[0]) > p.Flapping.Window {
			exits = exits[1:]
		}
		if len(exits) >= p.Flapping.Attempts {
			exits = exits[len(exits)-p.Flapping.Attempts+1:]
		}
		if len(exits) == cap(exits) {
			// Compact into a fresh array sized for the window, so a
			// slice resliced from the front does not keep growing.
			exits = append(make([]time.Time, 0, min(2*len(exits)+1, p.Flapping.Attempts)), exits...)
		}
		exits = append(exits, now)
		h.Exits = exits
		if len(exits) == p.Flapping.Attempts && now.Sub(exits[0]) <= p.Flapping.Window {
			h.Exits = nil
			h.Rounds++
			if p.Flapping.MaxRetry >= 0 && h.Rounds > p.Flapping.MaxRetry {
				return Fatal, 0, 0, h
			}
			return Flap, p.Flapping.RetryIn, 0, h
		}
	}
	if uptime >= p.MinUptime {
		return Restart, 0, failures, h
	}
	failures++
	return Restart, p.Backoff(failures, rnd), failures, h
}

// OnSpawnError decides what follows a failed spawn (no such file,
// permission denied): it counts toward MaxRetry and backs off. The
// watcher applies Fatal only when none of its other slots runs a
// process; otherwise the slot keeps backing off (Backoff of the count).
func (p Policy) OnSpawnError(failures int, rnd float64) (Decision, time.Duration, int) {
	failures++
	if p.MaxRetry >= 0 && failures > p.MaxRetry {
		return Fatal, 0, failures
	}
	return Restart, p.Backoff(failures, rnd), failures
}

// Expected reports whether st is an expected exit under OnFailure: a
// code in ExitCodes (0 when none are set), or a signal that circled sent
// (signaled).
func (p Policy) Expected(st ExitStatus, signaled bool) bool {
	if st.Signal != "" {
		return signaled
	}
	if len(p.ExitCodes) == 0 {
		return st.Code == 0
	}
	for _, c := range p.ExitCodes {
		if c == st.Code {
			return true
		}
	}
	return false
}
