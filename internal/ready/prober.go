package ready

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of the ready.* keys.
const (
	DefaultInterval       = 200 * time.Millisecond // ready.interval
	DefaultTimeout        = 60 * time.Second       // ready.timeout
	DefaultAttemptTimeout = 5 * time.Second        // bound of one tcp/http/exec attempt while starting
)

// Options configure a Prober. All checks must pass.
type Options struct {
	Checks         []Check
	Interval       time.Duration // pause between rounds of tcp/http/exec attempts; 0: DefaultInterval
	Timeout        time.Duration // not ready by then: failed; 0: DefaultTimeout
	AttemptTimeout time.Duration // bound of one attempt (and never past Timeout); 0: DefaultAttemptTimeout

	// A live upgrade resumes a prober (Prober.Deadline, Prober.LogMatched):
	Deadline   time.Time // not zero: not ready by then is a failure (instead of Timeout from now)
	LogMatched bool      // the log checks have matched already
}

// Result is a Prober's one report.
type Result struct {
	Ready bool
	Check string // failed: the first check that had not passed ("tcp 127.0.0.1:80"); "" when ready
	Err   error  // failed: that check's last error
}

// Reason is a one-line explanation of a failure: "ready.tcp 127.0.0.1:80: timed out after 1m0s: ...".
func (r Result) Reason() string {
	if r.Ready {
		return "ready"
	}
	return "ready." + r.Check + ": " + r.Err.Error()
}

// ErrTimeout wraps the error of a check that had not passed by Timeout.
var ErrTimeout = errors.New("not ready in time")

// Prober runs the readiness checks of one starting process.
type Prober struct {
	opts   Options
	report func(Result)

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	wantLog atomic.Bool
	logs    []int // indexes of log checks
	logMu   sync.Mutex
	logHit  chan struct{} // buffered 1: some log check matched

	mu       sync.Mutex
	canceled bool
	reported bool

	deadlineAt atomic.Int64 // the current deadline (UnixNano), extensions included
}

// StartProber starts checking and calls report exactly once, from another
// goroutine, unless Cancel is called first. With no checks it reports
// Ready at once. report may take the caller's locks: Cancel never waits for
// it, so a report being delivered while Cancel is called may still arrive;
// the caller checks it is about the current process.
func StartProber(opts Options, report func(Result)) (*Prober, error) {
	for _, c := range opts.Checks {
		if err := c.validate(false); err != nil {
			return nil, fmt.Errorf("ready: %w", err)
		}
	}
	opts.Interval = withDefault(opts.Interval, DefaultInterval)
	opts.Timeout = withDefault(opts.Timeout, DefaultTimeout)
	opts.AttemptTimeout = withDefault(opts.AttemptTimeout, DefaultAttemptTimeout)
	opts.Checks = append([]Check(nil), opts.Checks...)
	p := &Prober{
		opts:   opts,
		report: report,
		done:   make(chan struct{}),
		logHit: make(chan struct{}, 1),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	for i, c := range opts.Checks {
		if c.Kind == KindLog {
			if opts.LogMatched {
				i = -1 - i // passed
			}
			p.logs = append(p.logs, i)
		}
	}
	p.wantLog.Store(len(p.logs) > 0 && !opts.LogMatched)
	if opts.Deadline.IsZero() {
		opts.Deadline = time.Now().Add(opts.Timeout)
	}
	p.deadlineAt.Store(opts.Deadline.UnixNano())
	go p.run()
	return p, nil
}

// FeedLine gives the prober one line of the process's stdout or stderr (a
// trailing "\n" or "\r\n" is ignored). It is cheap once no log check is
// pending, and safe from several goroutines.
func (p *Prober) FeedLine(line []byte) {
	if p == nil || !p.wantLog.Load() {
		return
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	p.logMu.Lock()
	defer p.logMu.Unlock()
	pending := false
	for k, i := range p.logs {
		if i < 0 {
			continue
		}
		if p.opts.Checks[i].re.Match(line) {
			p.logs[k] = -1 - i // passed
			select {
			case p.logHit <- struct{}{}:
			default:
			}
			continue
		}
		pending = true
	}
	if !pending {
		p.wantLog.Store(false)
	}
}

// logPassed reports whether log check i has matched.
func (p *Prober) logPassed(i int) bool {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	for _, j := range p.logs {
		if j == -1-i {
			return true
		}
	}
	return false
}

// Deadline is when the checks fail unless they have passed: Timeout
// after the start (or Options.Deadline), later if the process asked for
// more (EXTEND_TIMEOUT_USEC).
func (p *Prober) Deadline() time.Time { return time.Unix(0, p.deadlineAt.Load()) }

// LogMatched reports whether every log check has matched a line (false
// without log checks).
func (p *Prober) LogMatched() bool {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	for _, i := range p.logs {
		if i >= 0 {
			return false
		}
	}
	return len(p.logs) > 0
}

// Cancel stops the checks (the process exited or is being stopped). No
// report is made after Cancel returns, except one already being delivered.
// It does not wait: Done is closed once everything has stopped.
func (p *Prober) Cancel() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.canceled = true
	p.mu.Unlock()
	p.wantLog.Store(false)
	p.cancel()
}

// Done is closed once the prober has reported (after report returned) or
// been cancelled, and all its timers and attempts have ended.
func (p *Prober) Done() <-chan struct{} { return p.done }

type attemptResult struct {
	i   int
	err error
	cut bool // ended by the overall deadline, not its own
}

type checkState struct {
	passed  bool
	lastErr error
	cut     bool // lastErr is from an attempt the overall deadline ended
}

func (p *Prober) run() {
	checks := p.opts.Checks
	state := make([]checkState, len(checks))
	results := make(chan attemptResult, len(checks))
	inflight := 0

	deadlineAt := p.Deadline()
	deadline := time.NewTimer(time.Until(deadlineAt))
	for _, i := range p.logsIdx() {
		if p.logPassed(i) {
			state[i].passed = true // Options.LogMatched
		}
	}
	var tick *time.Timer
	var tickC <-chan time.Time

	var notifyReady <-chan struct{}
	var extend <-chan time.Duration
	for _, c := range checks {
		if c.Kind == KindNotify {
			notifyReady = c.notify.readyChan()
			extend = c.notify.extendChan()
		}
	}

	launch := func() {
		for i, c := range checks {
			if state[i].passed || !c.polled() {
				continue
			}
			inflight++
			at, capped := time.Now().Add(p.opts.AttemptTimeout), false
			if at.After(deadlineAt) {
				at, capped = deadlineAt, true
			}
			go func() {
				ctx, cancel := context.WithDeadline(p.ctx, at)
				defer cancel()
				err := c.attempt(ctx)
				results <- attemptResult{i, err, capped && err != nil && ctx.Err() != nil}
			}()
		}
	}
	pendingPolled := func() bool {
		for i, c := range checks {
			if !state[i].passed && c.polled() {
				return true
			}
		}
		return false
	}

	var res Result
	finished := false
	launch()
loop:
	for {
		all := true
		for i := range checks {
			if !state[i].passed {
				all = false
				break
			}
		}
		if all {
			res, finished = Result{Ready: true}, true
			break
		}
		select {
		case r := <-results:
			inflight--
			switch {
			case r.err == nil:
				state[r.i].passed = true
			case r.cut && state[r.i].lastErr != nil:
				// Keep the error of the last complete attempt.
			default:
				state[r.i].lastErr, state[r.i].cut = r.err, r.cut
			}
			if inflight == 0 && pendingPolled() {
				if tick == nil {
					tick = time.NewTimer(p.opts.Interval)
				} else {
					tick.Reset(p.opts.Interval)
				}
				tickC = tick.C
			}
		case <-tickC:
			tickC = nil
			launch()
		case <-p.logHit:
			for _, i := range p.logsIdx() {
				if p.logPassed(i) {
					state[i].passed = true
				}
			}
		case <-notifyReady:
			notifyReady = nil
			for i, c := range checks {
				if c.Kind == KindNotify {
					state[i].passed = true
				}
			}
		case d := <-extend:
			// EXTEND_TIMEOUT_USEC: the process asks for d more from now.
			if at := time.Now().Add(d); at.After(deadlineAt) {
				deadlineAt = at
				p.deadlineAt.Store(at.UnixNano())
				deadline.Reset(time.Until(at))
			}
		case <-deadline.C:
			res, finished = p.failure(state), true
			break loop
		case <-p.ctx.Done():
			break loop
		}
	}
	deadline.Stop()
	if tick != nil {
		tick.Stop()
	}
	p.wantLog.Store(false)
	p.cancel()
	for ; inflight > 0; inflight-- {
		<-results
	}
	if finished {
		p.mu.Lock()
		ok := !p.canceled && !p.reported
		p.reported = true
		p.mu.Unlock()
		if ok && p.report != nil {
			p.report(res)
		}
	}
	close(p.done)
}

func (p *Prober) logsIdx() []int {
	var idx []int
	for i, c := range p.opts.Checks {
		if c.Kind == KindLog {
			idx = append(idx, i)
		}
	}
	return idx
}

// failure names the first check that has not passed, with its last error.
func (p *Prober) failure(state []checkState) Result {
	for i, c := range p.opts.Checks {
		if state[i].passed {
			continue
		}
		err := state[i].lastErr
		switch {
		case c.Kind == KindLog:
			err = fmt.Errorf("%w after %v: no line of output matched", ErrTimeout, p.opts.Timeout)
		case c.Kind == KindNotify:
			msg := "no READY=1 received"
			if s := c.notify.Status(); s != "" {
				msg += " (last STATUS=" + s + ")"
			}
			err = fmt.Errorf("%w after %v: %s", ErrTimeout, p.opts.Timeout, msg)
		case err == nil:
			err = fmt.Errorf("%w after %v: no attempt finished", ErrTimeout, p.opts.Timeout)
		case state[i].cut:
			// The only attempt that ended was cut by the deadline (a slow
			// server, or a loaded host): say so rather than pass its
			// "i/o timeout" off as the check's verdict.
			err = fmt.Errorf("%w after %v: no attempt finished (the last was cut by the deadline: %w)", ErrTimeout, p.opts.Timeout, err)
		default:
			err = fmt.Errorf("%w after %v: %w", ErrTimeout, p.opts.Timeout, err)
		}
		return Result{Check: c.String(), Err: err}
	}
	return Result{Ready: true}
}
