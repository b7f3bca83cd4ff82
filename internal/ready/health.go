package ready

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Defaults of the health.* keys.
const (
	DefaultHealthInterval = 10 * time.Second // health.interval
	DefaultHealthTimeout  = 5 * time.Second  // health.timeout, per attempt
	DefaultHealthRetries  = 3                // health.retries
)

// HealthState is a process's liveness as status --json shows it.
type HealthState string

// The health states.
const (
	HealthUnknown   HealthState = "unknown" // not checked yet, or no health.* check
	HealthHealthy   HealthState = "healthy"
	HealthUnhealthy HealthState = "unhealthy"
)

// HealthOptions configure a Health runner: tcp, http and exec checks only.
type HealthOptions struct {
	Checks   []Check
	Interval time.Duration // between the end of a round and the next; 0: DefaultHealthInterval
	Timeout  time.Duration // per attempt; 0: DefaultHealthTimeout
	Retries  int           // failed rounds in a row before unhealthy; 0: DefaultHealthRetries

	// A live upgrade resumes a runner where it was (Health.Resume):
	Resume HealthResume
}

// HealthResume is where a Health runner was: its state, its failed
// rounds in a row and when its next round is due.
type HealthResume struct {
	State    HealthState `json:",omitempty"` // "": unknown
	Failures int         `json:",omitempty"`
	Next     time.Time   `json:",omitzero"` // zero: Interval from the start
}

// HealthReport is a change of state.
type HealthReport struct {
	State    HealthState
	Check    string // unhealthy: the check that failed last ("http http://..."); else ""
	Err      error  // unhealthy: its error
	Failures int    // failed rounds in a row
}

// Reason is a one-line explanation: "health.http http://x/: GET ...: 503 (3 failures in a row)".
func (r HealthReport) Reason() string {
	if r.State != HealthUnhealthy {
		return string(r.State)
	}
	return fmt.Sprintf("health.%s: %v (%d failures in a row)", r.Check, r.Err, r.Failures)
}

// Health runs the liveness checks of one ready process. A nil *Health (no
// check configured) is valid: its state is unknown and Stop does nothing.
type Health struct {
	opts   HealthOptions
	report func(HealthReport)
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	state    HealthState
	stopped  bool
	failures int       // failed rounds in a row
	next     time.Time // the next round (zero while one runs)
}

// StartHealth starts the checks: the first round runs after Interval, the
// next Interval after a round ended. report is called from another
// goroutine on each change of state: unknown → healthy, → unhealthy (once,
// when Retries rounds in a row failed), unhealthy → healthy. With no
// checks it returns (nil, nil): nothing runs.
func StartHealth(opts HealthOptions, report func(HealthReport)) (*Health, error) {
	if len(opts.Checks) == 0 {
		return nil, nil
	}
	for _, c := range opts.Checks {
		if err := c.validate(true); err != nil {
			return nil, fmt.Errorf("health: %w", err)
		}
	}
	opts.Interval = withDefault(opts.Interval, DefaultHealthInterval)
	opts.Timeout = withDefault(opts.Timeout, DefaultHealthTimeout)
	if opts.Retries <= 0 {
		opts.Retries = DefaultHealthRetries
	}
	opts.Checks = append([]Check(nil), opts.Checks...)
	h := &Health{opts: opts, report: report, done: make(chan struct{}), state: HealthUnknown}
	if r := opts.Resume; r.State != "" {
		h.state = r.State
	}
	h.failures = max(opts.Resume.Failures, 0)
	first := opts.Interval
	if !opts.Resume.Next.IsZero() {
		first = max(time.Until(opts.Resume.Next), 0)
	}
	h.next = time.Now().Add(first)
	h.ctx, h.cancel = context.WithCancel(context.Background())
	go h.run(first)
	return h, nil
}

// State is the current state.
func (h *Health) State() HealthState {
	if h == nil {
		return HealthUnknown
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state
}

// Snapshot is where the runner is, for a live upgrade to resume it
// (HealthOptions.Resume); a round running now is due at once.
func (h *Health) Snapshot() HealthResume {
	if h == nil {
		return HealthResume{}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	r := HealthResume{State: h.state, Failures: h.failures, Next: h.next}
	if r.Next.IsZero() {
		r.Next = time.Now()
	}
	return r
}

// Stop ends the checks without waiting (Done is closed when all have
// ended). No report is made after Stop returns, except one already being
// delivered.
func (h *Health) Stop() {
	if h == nil {
		return
	}
	h.mu.Lock()
	h.stopped = true
	h.mu.Unlock()
	h.cancel()
}

// Done is closed once the runner has stopped; a nil runner's is closed.
func (h *Health) Done() <-chan struct{} {
	if h == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return h.done
}

func (h *Health) run(first time.Duration) {
	defer close(h.done)
	timer := time.NewTimer(first)
	defer timer.Stop()
	h.mu.Lock()
	failures := h.failures
	h.mu.Unlock()
	results := make(chan attemptResult, len(h.opts.Checks))
	for {
		select {
		case <-timer.C:
		case <-h.ctx.Done():
			return
		}
		h.mu.Lock()
		h.next = time.Time{}
		h.mu.Unlock()
		for i, c := range h.opts.Checks {
			go func() {
				ctx, cancel := context.WithTimeout(h.ctx, h.opts.Timeout)
				defer cancel()
				results <- attemptResult{i: i, err: c.attempt(ctx)}
			}()
		}
		var failed *attemptResult
		for range h.opts.Checks {
			r := <-results
			if r.err != nil && (failed == nil || r.i < failed.i) {
				failed = &r
			}
		}
		if h.ctx.Err() != nil {
			return
		}
		var rep HealthReport
		if failed == nil {
			failures = 0
			rep = HealthReport{State: HealthHealthy}
		} else {
			failures++
			rep = HealthReport{State: h.State(), Check: h.opts.Checks[failed.i].String(), Err: failed.err, Failures: failures}
			if failures >= h.opts.Retries {
				rep.State = HealthUnhealthy
			}
		}
		h.mu.Lock()
		changed := rep.State != h.state && !h.stopped
		h.state = rep.State
		h.failures = failures
		h.next = time.Now().Add(h.opts.Interval)
		h.mu.Unlock()
		if changed && h.report != nil {
			h.report(rep)
		}
		timer.Reset(h.opts.Interval)
	}
}
