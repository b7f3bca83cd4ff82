// Package ctltest provides an in-memory ctl.Backend for tests of the
// handler, the client and circlectl.
package ctltest

import (
	"context"
	"fmt"
	"io"
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
//
// Logs serves each watcher's captured lines: NewFake gives every watcher
// CannedStdout lines "line 1".."line 12" on stdout then CannedStderr
// "oops 1", "oops 2" on stderr; Log adds more (and feeds every follow);
// RemoveWatcher ends the follows of a watcher.
type Fake struct {
	mu        sync.Mutex
	watchers  []ctl.WatcherStatus
	calls     []string
	logs      []logLine
	followers map[*follower]struct{}
	events    fakeEvents // events.go
	sockets   []ctl.Socket

	// ReloadErr, when set, is what ReloadConfig returns.
	ReloadErr error
	// Summary is what ReloadConfig returns otherwise.
	Summary ctl.ReloadSummary
	// Quitting makes every mutating call fail with ErrShuttingDown.
	Quitting bool
	// ReopenErr, when set, is what Reopen returns.
	ReopenErr error
}

// Canned output of every watcher of NewFake, in this order.
const (
	CannedStdout = 12
	CannedStderr = 2
)

// logLine is one captured line of a watcher.
type logLine struct {
	watcher, stream string
	line            []byte // "NAME.WID | text\n"
}

// follower is a Logs call with Follow, waiting for lines.
type follower struct {
	watchers map[string]bool // still present; the follow ends when none is
	stream   string
	pending  [][]byte
	notify   chan struct{} // cap 1: pending grew
	removed  chan struct{} // closed when every watcher followed is gone
	waiting  bool          // the last lines and the commit are written
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
		for i := 1; i <= CannedStdout; i++ {
			f.addLog(name, "stdout", fmt.Sprintf("line %d", i))
		}
		for i := 1; i <= CannedStderr; i++ {
			f.addLog(name, "stderr", fmt.Sprintf("oops %d", i))
		}
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

func (f *Fake) Status(ctx context.Context, names []string) (ctl.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ctl.StatusOptionsFrom(ctx).Descendants {
		f.record("Status %v descendants", names)
	} else {
		f.record("Status %v", names)
	}
	idx, err := f.match(names)
	if err != nil {
		return ctl.Status{}, err
	}
	st := ctl.Status{Sockets: f.cloneSockets()}
	for _, i := range idx {
		w := f.watchers[i]
		w.Processes = slices.Clone(w.Processes)
		st.Watchers = append(st.Watchers, w)
	}
	return st, nil
}

// SetSockets makes ss the sockets the fake holds (none by default), as
// Sockets and Status return them.
func (f *Fake) SetSockets(ss ...ctl.Socket) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sockets = ss
}

// Sockets records "Sockets" and returns what SetSockets gave.
func (f *Fake) Sockets(context.Context) ([]ctl.Socket, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Sockets")
	return f.cloneSockets(), nil
}

func (f *Fake) cloneSockets() []ctl.Socket {
	ss := slices.Clone(f.sockets)
	for i := range ss {
		ss[i].Watchers = slices.Clone(ss[i].Watchers)
	}
	return ss
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

// Log appends lines to watcher name's output on stream ("stdout" or
// "stderr") and sends them to every follow of it.
func (f *Fake) Log(name, stream string, lines ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range lines {
		f.addLog(name, stream, l)
	}
}

func (f *Fake) addLog(name, stream, text string) {
	ll := logLine{watcher: name, stream: stream, line: fmt.Appendf(nil, "%s.1 | %s\n", name, text)}
	f.logs = append(f.logs, ll)
	for fl := range f.followers {
		if fl.watchers[name] && (fl.stream == "" || fl.stream == stream) {
			fl.pending = append(fl.pending, ll.line)
			select {
			case fl.notify <- struct{}{}:
			default:
			}
		}
	}
}

// RemoveWatcher removes watcher name, as a config reload would: follows
// of it send what is pending and end (Logs returns nil).
func (f *Fake) RemoveWatcher(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("RemoveWatcher %s", name)
	f.watchers = slices.DeleteFunc(f.watchers, func(w ctl.WatcherStatus) bool { return w.Name == name })
	for fl := range f.followers {
		if fl.watchers[name] {
			delete(fl.watchers, name)
			if len(fl.watchers) == 0 {
				close(fl.removed)
			}
		}
	}
}

// Followers is the number of Logs calls following right now that have
// written the last lines and committed the reply, and wait for new lines.
func (f *Fake) Followers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for fl := range f.followers {
		if fl.waiting {
			n++
		}
	}
	return n
}

// Logs records "Logs NAME LINES FOLLOW STREAM", writes the last lines, and
// with Follow commits the reply (a Write of no bytes) then writes what Log
// adds until ctx ends or RemoveWatcher removes the watcher; it then records
// "Logs NAME end: REASON" (the ctx error, or "removed").
func (f *Fake) Logs(ctx context.Context, name string, req ctl.LogsRequest, w io.Writer) error {
	last, fl, err := f.logsStart(name, req)
	if err != nil {
		return err
	}
	for _, l := range last {
		if _, err := w.Write(l); err != nil {
			if fl != nil {
				f.unfollow(fl, name, err.Error())
			}
			return err
		}
	}
	if fl == nil {
		return nil
	}
	reason := "removed"
	defer func() { f.unfollow(fl, name, reason) }()
	if _, err := w.Write(nil); err != nil {
		reason = err.Error()
		return err
	}
	f.mu.Lock()
	fl.waiting = true
	f.mu.Unlock()
	for {
		var gone bool
		select {
		case <-ctx.Done():
			reason = ctx.Err().Error()
			return nil
		case <-fl.notify:
		case <-fl.removed:
			gone = true
		}
		f.mu.Lock()
		lines := fl.pending
		fl.pending = nil
		f.mu.Unlock()
		for _, l := range lines {
			if _, err := w.Write(l); err != nil {
				reason = err.Error()
				return err
			}
		}
		if gone {
			return nil
		}
	}
}

// logsStart resolves name and returns the last lines to send and, with
// Follow, a follower registered in the same critical section, so no line
// is lost or sent twice between the two.
func (f *Fake) logsStart(name string, req ctl.LogsRequest) ([][]byte, *follower, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Logs %s %d %v %s", name, req.Lines, req.Follow, req.Stream)
	idx, err := f.match([]string{name})
	if err != nil {
		return nil, nil, err
	}
	selected := map[string]bool{}
	for _, i := range idx {
		selected[f.watchers[i].Name] = true
	}
	var last [][]byte
	for i := len(f.logs) - 1; i >= 0 && len(last) < req.Lines; i-- {
		l := f.logs[i]
		if selected[l.watcher] && (req.Stream == "" || req.Stream == l.stream) {
			last = append(last, l.line)
		}
	}
	slices.Reverse(last)
	if !req.Follow {
		return last, nil, nil
	}
	fl := &follower{watchers: selected, stream: req.Stream,
		notify: make(chan struct{}, 1), removed: make(chan struct{})}
	if f.followers == nil {
		f.followers = make(map[*follower]struct{})
	}
	f.followers[fl] = struct{}{}
	return last, fl, nil
}

func (f *Fake) unfollow(fl *follower, name, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.followers, fl)
	f.record("Logs %s end: %s", name, reason)
}

// Reopen records "Reopen" and returns ReopenErr.
func (f *Fake) Reopen(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Reopen")
	return f.ReopenErr
}

var _ ctl.Backend = (*Fake)(nil)
