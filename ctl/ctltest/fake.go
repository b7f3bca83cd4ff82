// Package ctltest provides an in-memory ctl.Backend for tests of the
// handler, the client and circlectl.
package ctltest

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/circle-supervisor/circle/ctl"
)

// Fake is a ctl.Backend over a fixed set of watchers. Names match as shell
// globs; a name matching nothing is ErrNoSuchWatcher. A watcher or signal
// named "panic" panics, to test recovery; signal "BOGUS" is ErrBadRequest.
type Fake struct {
	mu       sync.Mutex
	watchers []ctl.WatcherStatus
	calls    []string

	// ReloadErr, when set, is what ReloadConfig returns.
	ReloadErr error
	// Summary is what ReloadConfig returns otherwise.
	Summary ctl.ReloadSummary
	// Quitting makes every mutating call fail with ErrShuttingDown.
	Quitting bool
}

// Started is the start time of every fake process.
var Started = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// NewFake returns a Fake with the given watchers: each is "name" or
// "name:state" and gets NumProcesses 1 with one running process.
func NewFake(watchers ...string) *Fake {
	f := &Fake{}
	for i, w := range watchers {
		name, state, ok := strings.Cut(w, ":")
		if !ok {
			state = "active"
		}
		ws := ctl.WatcherStatus{Name: name, State: state, NumProcesses: 1}
		if state == "active" {
			ws.Processes = []ctl.ProcessStatus{{WID: 1, PID: 1000 + i, State: "running", StartedAt: Started}}
		} else {
			ws.Processes = []ctl.ProcessStatus{{WID: 1, State: "exited", Restarts: 3,
				LastExit: ctl.Exit{Code: 1}}}
			if state == "fatal" {
				ws.Error = "exec: no such file"
			}
		}
		f.watchers = append(f.watchers, ws)
	}
	return f
}

// Calls returns the calls made so far, one string each ("Start [a b] true").
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// LastCall returns the most recent call, or "".
func (f *Fake) LastCall() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		return ""
	}
	return f.calls[len(f.calls)-1]
}

func (f *Fake) record(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

// match returns the indexes of the watchers names select (all when none).
func (f *Fake) match(names []string) ([]int, error) {
	if len(names) == 0 {
		idx := make([]int, len(f.watchers))
		for i := range idx {
			idx[i] = i
		}
		return idx, nil
	}
	var idx []int
	for _, n := range names {
		if n == "panic" {
			panic("fake backend asked to panic")
		}
		found := false
		for i, w := range f.watchers {
			if ok, _ := path.Match(n, w.Name); ok {
				found = true
				if !slices.Contains(idx, i) {
					idx = append(idx, i)
				}
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: %s", ctl.ErrNoSuchWatcher, n)
		}
	}
	return idx, nil
}

func (f *Fake) Status(_ context.Context, names []string) (ctl.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Status %v", names)
	idx, err := f.match(names)
	if err != nil {
		return ctl.Status{}, err
	}
	var st ctl.Status
	for _, i := range idx {
		w := f.watchers[i]
		w.Processes = slices.Clone(w.Processes)
		st.Watchers = append(st.Watchers, w)
	}
	return st, nil
}

func (f *Fake) List(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("List")
	var names []string
	for _, w := range f.watchers {
		names = append(names, w.Name)
	}
	return names, nil
}

func (f *Fake) setState(op string, names []string, wait bool, state string) (ctl.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("%s %v %v", op, names, wait)
	if f.Quitting {
		return ctl.Result{}, ctl.ErrShuttingDown
	}
	idx, err := f.match(names)
	if err != nil {
		return ctl.Result{}, err
	}
	var res ctl.Result
	for _, i := range idx {
		f.watchers[i].State = state
		res.Watchers = append(res.Watchers, f.watchers[i].Name)
	}
	return res, nil
}

func (f *Fake) Start(_ context.Context, names []string, wait bool) (ctl.Result, error) {
	return f.setState("Start", names, wait, "active")
}

func (f *Fake) Stop(_ context.Context, names []string, wait bool) (ctl.Result, error) {
	return f.setState("Stop", names, wait, "stopped")
}

func (f *Fake) Restart(_ context.Context, names []string, wait bool) (ctl.Result, error) {
	return f.setState("Restart", names, wait, "active")
}

func (f *Fake) Reload(_ context.Context, names []string, wait bool) (ctl.Result, error) {
	return f.setState("Reload", names, wait, "active")
}

func (f *Fake) ReloadConfig(context.Context) (ctl.ReloadSummary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("ReloadConfig")
	if f.ReloadErr != nil {
		return ctl.ReloadSummary{}, f.ReloadErr
	}
	return f.Summary, nil
}

func (f *Fake) Signal(_ context.Context, name, sig string, pid int, children bool) (ctl.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Signal %s %s %d %v", name, sig, pid, children)
	if sig == "panic" {
		panic("fake backend asked to panic")
	}
	if sig == "BOGUS" {
		return ctl.Result{}, fmt.Errorf("%w: unknown signal %q", ctl.ErrBadRequest, sig)
	}
	idx, err := f.match([]string{name})
	if err != nil {
		return ctl.Result{}, err
	}
	return ctl.Result{Watchers: []string{f.watchers[idx[0]].Name}}, nil
}

func (f *Fake) Incr(_ context.Context, name string, n int) (ctl.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Incr %s %d", name, n)
	idx, err := f.match([]string{name})
	if err != nil {
		return ctl.Result{}, err
	}
	w := &f.watchers[idx[0]]
	w.NumProcesses = max(0, w.NumProcesses+n)
	return ctl.Result{Watchers: []string{w.Name}, NumProcesses: w.NumProcesses}, nil
}

func (f *Fake) NumProcesses(_ context.Context, name string) (ctl.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("NumProcesses %s", name)
	idx, err := f.match([]string{name})
	if err != nil {
		return ctl.Result{}, err
	}
	w := f.watchers[idx[0]]
	return ctl.Result{Watchers: []string{w.Name}, NumProcesses: w.NumProcesses}, nil
}

func (f *Fake) Stats(_ context.Context, names []string) (ctl.Stats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Stats %v", names)
	idx, err := f.match(names)
	if err != nil {
		return ctl.Stats{}, err
	}
	var st ctl.Stats
	for _, i := range idx {
		w := f.watchers[i]
		ws := ctl.WatcherStats{Name: w.Name}
		for _, p := range w.Processes {
			if p.PID != 0 {
				ws.Processes = append(ws.Processes, ctl.ProcessStats{WID: p.WID, PID: p.PID, CPU: 12.5, RSS: 3 << 20})
			}
		}
		st.Watchers = append(st.Watchers, ws)
	}
	return st, nil
}

func (f *Fake) Quit(_ context.Context, wait bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Quit %v", wait)
	f.Quitting = true
	return nil
}

func (f *Fake) Version(context.Context) (ctl.Version, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Version")
	return ctl.Version{Version: "1.2.3", Commit: "abc", GoVersion: "go1.x", PID: 42}, nil
}

var _ ctl.Backend = (*Fake)(nil)
