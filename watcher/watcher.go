package watcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/circle-supervisor/circle/internal/cgroup"
	"github.com/circle-supervisor/circle/internal/ready"
)

// Watcher states, as reported by Status.
const (
	StateActive   = "active"
	StateStopped  = "stopped"
	StateStarting = "starting"
	StateStopping = "stopping"
	StateBackoff  = "backoff"
	StateFlapping = "flapping"
	StateFatal    = "fatal"
)

// Process states.
const (
	ProcStarting = "starting"
	ProcRunning  = "running"
	ProcStopping = "stopping"
	ProcBackoff  = "backoff"
	ProcExited   = "exited"
)

// Event is something an outside observer may care about: the supervisor
// uses it for critical watchers.
type Event struct {
	Watcher string
	Kind    string // "fatal", "exited" (respawn=false slot down), "flapping"
	Exit    ExitStatus
}

// Watcher runs the processes of one Spec. Its state belongs to its
// owner goroutine (owner.go): every field below the owner's is read and
// written only there.
type Watcher struct {
	name    string
	log     *slog.Logger
	spawner Spawner
	onEvent func(Event)
	// frozenDigest is the digest taken at a live upgrade's Freeze: Digest
	// returns it while the owner is held (it would wait until Thaw), and
	// freezeCh is closed (then replaced) when it is taken. freezeMu
	// guards both.
	freezeMu     sync.Mutex
	frozenDigest *Digest
	freezeCh     chan struct{}

	o     owner
	final atomic.Pointer[Status] // the last Status, once closed

	chMu    sync.Mutex
	changed chan struct{} // closed and replaced after every change

	pumps sync.WaitGroup // output copiers still draining pipes

	// Spawn jobs waiting for a worker (spawn.go).
	jobMu   sync.Mutex
	jobQ    []*spawnJob
	workers int

	// Owned by the owner goroutine.
	cg       *cgroup.Tree // nil: processes are contained by their group only
	tracker  Tracker      // records processes for crash recovery; may be nil
	spec     Spec
	specP    *Spec // an immutable copy of spec, for spawn jobs
	want     bool  // processes should be up
	fatal    bool
	flapping bool
	errMsg   string
	slots    []*slot
	draining []*proc // stopping processes that no longer own a slot
	incoming []*proc // reload: new processes not ready yet (proc.incoming is their slot)
	inflight int     // spawn jobs not committed yet
	rounds   int     // flapping rounds in the current episode
	flapT    *time.Timer
	flapDue  time.Time   // when flapT fires (adopt.go)
	dirty    bool        // something changed: wake the waiters
	holdT    *time.Timer // bounds how long spawns in flight delay publishing (owner.go)
	holdOver bool        // holdT fired: publish anyway
	waiters  []*waiter   // conditions checked after every change
	gen      int         // counts Start, Stop and Reload commands
	gate     int         // gen of a start waiting for its before_start hook (0: none)
	stopGate int         // gen of a stop waiting for its before_stop hook (0: none)

	// Replacements, one slot at a time (reload, max age): replace.go.
	replQ   []*replTicket
	replCur *replTicket

	// Processes whose main process has exited while the rest of their
	// group still runs (see exited). While there are any, the watcher
	// listens to the spawner's orphan reaps.
	lingering int
	orphanSub func() // cancels the OrphanEvents subscription
	orphanOK  bool   // the subscription sees every death in a group

	// upT wakes the watcher at upAt, when a process without ready.*
	// checks has run MinUptime (armUpLocked); nil when none is starting.
	upT  *time.Timer
	upAt time.Time
}

type slot struct {
	wid          int
	proc         *proc
	failures     int         // consecutive failed starts (quick exits)
	spawnErrs    int         // consecutive spawn errors
	failedStarts int         // consecutive failed starts (Policy.MaxFailedStarts)
	spawns       int         // processes started in the slot
	unplanned    int         // restarts after an unexpected exit or a flapping pause
	planned      int         // restarts asked for: reload, restart, stop and start
	crashed      bool        // the next start follows an unexpected exit (unplanned)
	crashedLive  bool        // ... of a process failed for its liveness (health.*, watchdog)
	liveRestarts int         // the unplanned restarts that followed a liveness failure
	exits        []time.Time // recent unexpected exits, for flapping
	lastExit     ExitStatus
	hasExit      bool
	lastErr      string
	timer        *time.Timer  // pending spawn (backoff or warmup)
	due          time.Time    // when timer fires (a live upgrade re-arms it: adopt.go)
	pending      string       // ProcBackoff or ProcStarting while timer is set
	down         bool         // left down after exit (respawn = false)
	failSeq      int          // failed starts so far (waiters compare it)
	failWhy      string       // the last failed start's reason
	spare        *cgroup.Proc // the last process's empty cgroup, for the next one
	job          *spawnJob    // a spawn in flight (not committed yet)
	ticket       *replTicket  // its replacement (reload, max age), queued
}

type proc struct {
	wid       int
	pid       int
	startedAt time.Time
	stopping  bool // a stop was asked for: no restart when it ends
	exited    bool // the main process has been reaped
	lingering bool // exited, but the rest of its group is still running
	exit      ExitStatus
	killT     *time.Timer
	recheckT  *time.Timer // re-checks a lingering group without events
	recheckD  time.Duration
	cell      *cgroup.Proc   // the process's own cgroup, if any
	cellWatch func()         // cancels the watch on its cgroup.events
	joinDone  func()         // Spec.Join's done, called (once) when it has finished
	oomKilled func(int) bool // Spec.OOMKilled at spawn (read off the owner by exited)
	startTick uint64         // start time, for the tracker (0: untracked)
	tracked   bool

	// Readiness (ready.go).
	checked      bool                // started with ready.* checks
	ready        bool                // passed them (or ran MinUptime)
	kit          *readyKit           // its checks, nil without ready/health keys
	prober       *ready.Prober       // while starting, with ready.* checks
	health       *ready.Health       // once ready, with health.* checks
	notify       *ready.NotifySocket // ready.notify / watchdog
	tap          *lineTap            // ready.log: output lines to the prober
	failed       string              // circled stopped it as a failure: why
	failStart    bool                // ... and it counts as a failed start
	signaled     bool                // circled sent it a signal (on-failure: not a failure)
	incoming     *slot               // reload: the slot it takes once ready
	promoted     bool                // reload: it took its slot
	finished     bool                // gone (finishLocked)
	committed    bool                // its start is recorded (commitLocked)
	early        *ExitStatus         // its exit, reported before its start was recorded
	ageT         *time.Timer         // max age: its replacement is due
	ticket       *replTicket         // the replacement it is the new process of
	spec         *Spec               // the spec it was started with
	reloadWait   int                 // a signal reload's phase (replace.go)
	reloadErr    string              // ... and why it failed
	readyAtStart bool                // ready as soon as started (no checks, no MinUptime)
}

// descendantReaders bounds the goroutines reading cgroup files for
// CountDescendants across all calls (each call bounds its own to
// GOMAXPROCS). A read of cgroupfs is a blocking system call that holds an
// OS thread, slow on a loaded host: concurrent status --json requests,
// one reader each, can need an OS thread each, and in a
// pids cgroup circled shares with its children a thread it cannot create
// kills it (TestCircledSurvivesFullPidsCgroup: "runtime/cgo:
// pthread_create failed" under load, with newm called from sysmon's
// handoff while such reads blocked).
var descendantReaders = make(chan struct{}, runtime.GOMAXPROCS(0))

// CountDescendants returns, for each live process (by main pid), how
// many processes its cgroup holds beyond the main one; -1 for a process
// without a cgroup (FillDescendants counts those from /proc).
func (w *Watcher) CountDescendants() map[int]int {
	type cellOf struct {
		pid  int
		cell *cgroup.Proc
	}
	var cells []cellOf
	w.call(func() {
		for _, p := range w.liveLocked() {
			cells = append(cells, cellOf{p.pid, p.cell})
		}
	})
	counts := make([]int, len(cells))
	count := func(i int) {
		c := cells[i]
		if c.cell == nil {
			counts[i] = -1
			return
		}
		n := 0
		for _, pid := range c.cell.Pids() { // a removed cgroup lists none
			if pid != c.pid {
				n++
			}
		}
		counts[i] = n
	}
	// A few files per process: read on every CPU (2000 processes).
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), (len(cells)+63)/64)
	for k := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			descendantReaders <- struct{}{}
			defer func() { <-descendantReaders }()
			for i := k; i < len(cells); i += workers {
				count(i)
			}
		}()
	}
	wg.Wait()
	out := make(map[int]int, len(cells))
	for i, c := range cells {
		out[c.pid] = counts[i]
	}
	return out
}

// down reports whether p no longer counts as a running process.
func (p *proc) down() bool { return p.stopping || p.exited }

// New makes a stopped watcher and starts its owner goroutine (Close ends
// it). onEvent may be nil; it is called from a goroutine of its own,
// never from the owner.
func New(spec Spec, spawner Spawner, log *slog.Logger, onEvent func(Event)) *Watcher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if onEvent == nil {
		onEvent = func(Event) {}
	}
	w := &Watcher{
		name:    spec.Name,
		log:     log.With("watcher", spec.Name),
		spawner: spawner,
		onEvent: onEvent,
		changed: make(chan struct{}),
	}
	w.o.init()
	w.setSpecLocked(spec)
	w.resize(spec.NumProcesses)
	go w.loop()
	return w
}

// setSpecLocked replaces the spec (and the copy spawn jobs read).
func (w *Watcher) setSpecLocked(spec Spec) {
	w.spec = spec
	w.specP = ptr(spec)
}

// event tells the supervisor, from a goroutine of its own.
func (w *Watcher) event(ev Event) {
	w.goTracked(func() { w.onEvent(ev) })
}

// SetCgroups makes every process started from now on run in a cgroup of
// its own under t, so that everything it starts, at any depth, is
// stopped with it and counted (ProcStatus.Descendants). Call it before
// Start.
func (w *Watcher) SetCgroups(t *cgroup.Tree) {
	w.call(func() { w.cg = t })
}

// Tracker records the processes a watcher starts and forgets each once
// it and the rest of its group are gone (procstate.File: a circled that
// starts after a crash of this one stops what it finds there). Its
// methods are called on the watcher's owner goroutine and must not
// block.
type Tracker interface {
	Started(watcher string, wid, pid int, start uint64)
	Ended(pid int)
}

// SetTracker records every process started from now on that has no
// cgroup (a cgroup needs no record). Call it before Start.
func (w *Watcher) SetTracker(t Tracker) {
	w.call(func() { w.tracker = t })
}

// Name is the watcher's name.
func (w *Watcher) Name() string { return w.name }

// Spec returns the current spec.
func (w *Watcher) Spec() Spec {
	var sp Spec
	if !w.call(func() { sp = w.spec }) {
		return *w.specFinal()
	}
	return sp
}

// specFinal is the spec of a closed watcher (call returned false: the
// owner has ended).
func (w *Watcher) specFinal() *Spec { return w.specP }

func (w *Watcher) resize(n int) {
	for len(w.slots) < n {
		w.slots = append(w.slots, &slot{wid: len(w.slots) + 1})
	}
}

// Start brings every slot up. It returns at once if wait is false;
// otherwise once every slot has a running process or has failed to
// spawn (the error lists the failures). A later Stop makes it return
// an error.
func (w *Watcher) Start(ctx context.Context, wait bool) error {
	var res startResult
	var wt *waiter
	if !w.call(func() {
		// Before the spawns: one can fail at once.
		seq := w.failSnapshotLocked()
		gen, l := w.startLocked()
		if wait {
			wt = w.addWaiterLocked(func() bool { return w.startedLocked(gen, nil, seq, &res) })
		} else {
			wt = w.launchWaiterLocked(gen, l)
		}
	}) {
		return ErrClosed
	}
	if err := w.await(ctx, wt); err != nil || !wait {
		return err
	}
	return res.err(w)
}

// launched is a command's spawns: done once they are all recorded (the
// no-wait commands return then, as they did when they forked under a
// lock: the processes they started show in Status).
type launched struct{ done bool }

// launchWaiterLocked waits until l is done or command gen is superseded.
func (w *Watcher) launchWaiterLocked(gen int, l *launched) *waiter {
	return w.addWaiterLocked(func() bool { return l.done || w.gen != gen || !w.want })
}

// startLocked is Start's change: the watcher is wanted up and its idle
// slots start (after the before_start hook, when there is one). It
// returns the command's number and its spawns.
func (w *Watcher) startLocked() (int, *launched) {
	l := &launched{}
	if w.want && !w.fatal && !w.flapping && w.gate == 0 && !w.leftDownLocked() {
		if w.stopGate != 0 {
			w.gen++ // a stop waiting for its before_stop hook is superseded
			w.stopGate = 0
		}
		w.notify()
		l.done = true
		return w.gen, l // already up or starting: nothing else changes
	}
	then := func() {
		l.done = true
		w.afterStartLocked()
	}
	w.gen++
	gen := w.gen
	w.stopGate = 0 // a stop waiting for its hook is superseded
	w.want = true
	w.fatal, w.flapping, w.errMsg = false, false, ""
	w.rounds = 0
	w.stopTimer(&w.flapT)
	for _, s := range w.slots {
		s.failures, s.spawnErrs, s.down, s.exits, s.failedStarts = 0, 0, false, nil, 0
		s.crashed, s.crashedLive = false, false // started on request: a planned restart
	}
	w.notify()
	if w.spec.Hook == nil {
		w.startSlotsLocked(then)
		return gen, l
	}
	w.gate = gen
	w.hook(HookEvent{Point: BeforeStart}, func(err error) {
		if w.gate != gen {
			l.done = true
			return // a later command won
		}
		w.gate = 0
		w.notify()
		if err != nil {
			l.done = true
			w.want = false
			w.errMsg = fmt.Sprintf("%s hook: %v", BeforeStart, err)
			w.log.Warn("start vetoed by hook", "hook", BeforeStart, "err", err)
			return
		}
		w.startSlotsLocked(then)
	})
	return gen, l
}

// leftDownLocked reports whether a slot was left down after its process
// exited (the exit policy said so): a Start brings it up again, as
// supervisord's start does for an EXITED program.
func (w *Watcher) leftDownLocked() bool {
	for _, s := range w.slots {
		if s.down && s.proc == nil && s.timer == nil && s.job == nil {
			return true
		}
	}
	return false
}

// afterStartLocked runs the after_start hook once a start's spawns are
// recorded.
func (w *Watcher) afterStartLocked() {
	if w.want && !w.fatal && !w.flapping {
		w.hook(HookEvent{Point: AfterStart}, nil)
	}
}

// failSnapshotLocked records each slot's failed starts so far, for
// startedLocked.
func (w *Watcher) failSnapshotLocked() map[*slot]int {
	m := make(map[*slot]int, len(w.slots))
	for _, s := range w.slots {
		m[s] = s.failSeq
	}
	return m
}

// startSlotsLocked spawns every idle slot, spacing them by WarmupDelay.
// then (may be nil) runs once the spawns started now are recorded.
func (w *Watcher) startSlotsLocked(then func()) {
	delay := time.Duration(0)
	var now []*slot
	for _, s := range w.slots {
		if s.proc != nil || s.timer != nil || s.job != nil {
			continue
		}
		if delay == 0 {
			now = append(now, s)
		} else {
			w.scheduleLocked(s, delay, ProcStarting)
		}
		delay += w.spec.WarmupDelay
	}
	w.spawnManyLocked(now, then)
}

// startResult is what a start waiter found.
type startResult struct {
	errs   []string
	failed []int
	final  error
	last   func(wid, n int) []string
}

// err is the waiter's error, with the failed processes' last output
// (read outside the owner).
func (r *startResult) err(w *Watcher) error {
	if r.final != nil {
		return r.final
	}
	if len(r.errs) == 0 {
		return nil
	}
	withOutput(r.last, r.errs, r.failed)
	return joinErrs(r.errs)
}

// startedLocked is the condition of a start waiter: each slot's process
// is ready, or the slot has had a failed start since seq (an exit before
// ready, a failed ready check, a spawn error: the error gives each
// reason); old are processes that must not count as "the new one". A
// later Stop (or fatal, flapping) ends the wait with an error. gen is
// the start command's number (its before_start hook may veto it).
func (w *Watcher) startedLocked(gen int, old map[*proc]bool, seq map[*slot]int, r *startResult) bool {
	if w.gate != 0 && w.gate == gen {
		return false // its before_start hook runs
	}
	switch {
	case w.fatal:
		r.final = fmt.Errorf("%s is fatal: %s", w.spec.Name, w.errMsg)
		return true
	case w.flapping:
		r.final = fmt.Errorf("%s is flapping: %s", w.spec.Name, w.errMsg)
		return true
	case !w.want && w.gen == gen && w.errMsg != "":
		r.final = fmt.Errorf("%s did not start: %s", w.spec.Name, w.errMsg)
		return true
	case !w.want:
		r.final = fmt.Errorf("%s was stopped while starting", w.spec.Name)
		return true
	}
	r.errs, r.failed = r.errs[:0], r.failed[:0]
	now := time.Now()
	for _, s := range w.slots {
		switch {
		case s.failSeq != seq[s]:
			r.errs = append(r.errs, fmt.Sprintf("%s.%d: %s", w.spec.Name, s.wid, s.failWhy))
			r.failed = append(r.failed, s.wid)
		case s.proc != nil && !old[s.proc] && w.procReadyLocked(s.proc, now):
		case s.down:
		default:
			return false
		}
	}
	r.last = w.spec.LastOutput
	return true
}

// joinErrs joins the failures of several slots, the first 10 of them.
func joinErrs(errs []string) error {
	if len(errs) > 10 {
		errs = append(errs[:10:10], fmt.Sprintf("and %d more", len(errs)-10))
	}
	return errors.New(strings.Join(errs, "; "))
}

// Stop stops every process gracefully: StopSignal, GracefulTimeout, then
// SIGKILL to the group. With wait it returns once all have exited, or
// with an error when a later Start wins (or the before_stop hook vetoes
// the stop).
func (w *Watcher) Stop(ctx context.Context, wait bool) error {
	var wt *waiter
	var err error
	if !w.call(func() {
		gen, veto := w.stopLocked()
		if wait {
			wt = w.addWaiterLocked(func() bool {
				switch {
				case w.stopGate == gen:
					return false // its before_stop hook runs
				case *veto != nil:
					err = *veto
				case w.want && w.gen != gen:
					err = fmt.Errorf("%s: stop superseded by a later start", w.spec.Name)
				case !w.allDownLocked():
					return false
				}
				return true
			})
		}
	}) {
		return ErrClosed
	}
	if !wait {
		return nil
	}
	if e := w.await(ctx, wt); e != nil {
		return e
	}
	return err
}

// stopLocked is Stop's change (after the before_stop hook, when there
// is one, if it does not veto). It returns the command's number and
// where the veto will be.
func (w *Watcher) stopLocked() (int, *error) {
	w.gen++
	gen := w.gen
	veto := new(error)
	w.notify()
	if w.spec.Hook == nil || (!w.want && w.allDownLocked()) {
		w.stopNowLocked()
		return gen, veto
	}
	w.stopGate = gen
	w.hook(HookEvent{Point: BeforeStop}, func(err error) {
		if w.stopGate != gen {
			return // a later command won
		}
		w.stopGate = 0
		w.notify()
		if err != nil {
			*veto = fmt.Errorf("%s: stop vetoed by the %s hook: %w", w.spec.Name, BeforeStop, err)
			w.log.Warn("stop vetoed by hook", "hook", BeforeStop, "err", err)
			return
		}
		w.stopNowLocked()
	})
	return gen, veto
}

func (w *Watcher) stopNowLocked() {
	wasUp := w.want || !w.allDownLocked()
	w.want = false
	w.flapping = false
	w.gate, w.stopGate = 0, 0
	w.stopTimer(&w.flapT)
	w.stopAllLocked()
	w.notify()
	if wasUp && w.spec.Hook != nil {
		gen := w.gen
		w.onceLocked(func() bool { return w.gen != gen || w.allDownLocked() }, func() {
			if w.gen == gen {
				w.hook(HookEvent{Point: AfterStop}, nil)
			}
		})
	}
}

func (w *Watcher) stopAllLocked() {
	for _, s := range w.slots {
		w.stopTimer(&s.timer)
		s.pending = ""
		if s.proc != nil {
			w.stopProcLocked(s.proc)
		}
	}
	for _, p := range w.draining {
		w.stopProcLocked(p)
	}
	for _, p := range w.incoming {
		w.stopProcLocked(p)
	}
	w.dropReplacementsLocked()
}

// allDownLocked reports whether no process runs and none is being
// spawned.
func (w *Watcher) allDownLocked() bool {
	if len(w.draining) > 0 || len(w.incoming) > 0 || w.inflight > 0 {
		return false
	}
	for _, s := range w.slots {
		if s.proc != nil {
			return false
		}
	}
	return true
}

// WaitOutput waits until every output pipe has been drained to EOF (so
// nothing a stopped process wrote is lost), or ctx ends: a descendant
// that escaped the process group may hold a pipe open.
func (w *Watcher) WaitOutput(ctx context.Context) error {
	done := make(chan struct{})
	go func() { w.pumps.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// replacedLocked is called when p, s's process, is replaced on request
// (a reload): a process that ran at least BackoffMax resets its slot's
// backoff, as its exit would have (Policy.OnExit). Otherwise the quick
// failures of a replacement that cannot start while its predecessor still
// holds a port or a lock would add up over reloads days apart. (Stop then
// Start resets every slot; a slot scaled away is gone.)
func (w *Watcher) replacedLocked(s *slot, p *proc, now time.Time) {
	if now.Sub(p.startedAt) >= w.spec.Policy.BackoffMax {
		s.failures = 0
	}
}

// Incr adds delta (possibly negative) processes and returns the new count.
func (w *Watcher) Incr(delta int) int {
	n := 0
	var wt *waiter
	if !w.call(func() {
		n = max(w.spec.NumProcesses+delta, 0)
		wt = w.launchWaiterLocked(w.gen, w.setNumLocked(n))
	}) {
		return w.specFinal().NumProcesses
	}
	w.await(context.Background(), wt)
	return n
}

// ErrTooManyProcesses is returned (wrapped) by IncrMax when the new count
// would exceed its limit.
var ErrTooManyProcesses = errors.New("too many processes")

// IncrMax is Incr bounded by limit: it refuses, changing nothing, an
// increase that would take the count beyond limit. The check and the
// change are one message to the owner, so concurrent increases cannot
// pass it together. A decrease stops at 0 and is never refused.
func (w *Watcher) IncrMax(delta, limit int) (int, error) {
	var n int
	var err error
	var wt *waiter
	if !w.call(func() {
		cur := w.spec.NumProcesses
		if delta > 0 && delta > limit-cur { // not cur+delta > limit: it could overflow
			n, err = cur, fmt.Errorf("%s has %d processes: %d more would exceed the maximum of %d (%w)", w.spec.Name, cur, delta, limit, ErrTooManyProcesses)
			return
		}
		n = max(cur+delta, 0)
		wt = w.launchWaiterLocked(w.gen, w.setNumLocked(n))
	}) {
		return w.specFinal().NumProcesses, ErrClosed
	}
	if wt != nil {
		w.await(context.Background(), wt)
	}
	return n, err
}

// setNumLocked scales to n processes; the spawns it starts are returned.
func (w *Watcher) setNumLocked(n int) *launched {
	l := &launched{}
	sp := w.spec
	sp.NumProcesses = n
	w.setSpecLocked(sp)
	for len(w.slots) > n {
		s := w.slots[len(w.slots)-1]
		w.slots = w.slots[:len(w.slots)-1]
		w.stopTimer(&s.timer)
		w.removeCell(s.spare)
		s.spare = nil
		if s.proc != nil {
			w.draining = append(w.draining, s.proc)
			w.stopProcLocked(s.proc)
			s.proc = nil
		}
		for _, p := range w.incoming {
			if p.incoming == s {
				w.stopProcLocked(p)
			}
		}
		// A spawn in flight is stopped when it is recorded (commitLocked).
	}
	w.resize(n)
	if w.want && !w.fatal && !w.flapping && w.gate == 0 {
		w.startSlotsLocked(func() { l.done = true })
	} else {
		l.done = true
	}
	w.notify()
	return l
}

// Update replaces the spec. Running processes keep the spec they were
// started with until they are restarted; the count is applied at once.
func (w *Watcher) Update(spec Spec) {
	var wt *waiter
	if w.call(func() {
		n := spec.NumProcesses
		spec.NumProcesses = w.spec.NumProcesses
		w.setSpecLocked(spec)
		wt = w.launchWaiterLocked(w.gen, w.setNumLocked(n))
	}) {
		w.await(context.Background(), wt)
	}
}

// Signal sends sig to every process (or only to pid when pid != 0); with
// children, to each process's whole group. With a hook, before_signal
// runs first (its error vetoes the signal) and after_signal after.
func (w *Watcher) Signal(sig string, pid int, children bool) error {
	var hook func(context.Context, HookEvent) error
	if !w.call(func() { hook = w.spec.Hook }) {
		return ErrClosed
	}
	if hook != nil {
		// In the caller's goroutine: the owner goes on meanwhile.
		ev := HookEvent{Point: BeforeSignal, Watcher: w.name, PID: pid, Signal: sig}
		if err := hook(w.o.ctx, ev); err != nil {
			w.log.Warn("signal vetoed by hook", "hook", BeforeSignal, "signal", sig, "err", err)
			return fmt.Errorf("%s: signal %s vetoed by the %s hook: %w", w.name, sig, BeforeSignal, err)
		}
	}
	var err error
	if !w.call(func() {
		err = w.signalLocked(sig, pid, children)
		if hook != nil {
			w.hook(HookEvent{Point: AfterSignal, PID: pid, Signal: sig}, nil)
		}
	}) {
		return ErrClosed
	}
	return err
}

func (w *Watcher) signalLocked(sig string, pid int, children bool) error {
	var errs []error
	found := false
	for _, p := range w.liveLocked() {
		if pid != 0 && p.pid != pid {
			continue
		}
		found = true
		switch {
		case p.exited && !children:
			// Its main process is gone (the rest of its group is being
			// stopped): its pid may belong to another process by now.
		case p.exited:
			signalPgroup(p.pid, sig) // the group still exists: its number is not reused
		default:
			p.signaled = true
			if err := signalProc(p.pid, sig, children); err != nil {
				errs = append(errs, fmt.Errorf("pid %d: %w", p.pid, err))
			}
		}
		if children && p.cell != nil {
			signalCell(p.cell, sig, p.pid)
		}
	}
	if pid != 0 && !found {
		return fmt.Errorf("pid %d is not a process of %s", pid, w.spec.Name)
	}
	return errors.Join(errs...)
}

func (w *Watcher) liveLocked() []*proc {
	var ps []*proc
	for _, s := range w.slots {
		if s.proc != nil {
			ps = append(ps, s.proc)
		}
	}
	ps = append(ps, w.draining...)
	return append(ps, w.incoming...)
}

// PIDs lists the pids of live main processes (not those that exited
// while the rest of their group is still being stopped).
func (w *Watcher) PIDs() []int {
	var pids []int
	w.call(func() {
		for _, p := range w.liveLocked() {
			if !p.exited {
				pids = append(pids, p.pid)
			}
		}
	})
	return pids
}

func (w *Watcher) spawnFailedLocked(s *slot, err error) {
	s.lastErr = err.Error()
	s.failSeq++
	s.failWhy = s.lastErr
	w.notify()
	if !w.want || w.fatal || w.flapping {
		return // stopped meanwhile: no retry
	}
	rnd := rand.Float64()
	d, delay, n := w.spec.Policy.OnSpawnError(s.spawnErrs, rnd)
	s.spawnErrs = n
	if d == Fatal && !w.otherRunningLocked(s) {
		w.log.Error("spawn failed, giving up", "wid", s.wid, "err", err, "attempts", n)
		w.goFatalLocked(fmt.Sprintf("spawn failed %d times: %v", n, err), ExitStatus{Code: 127})
		return
	}
	if d == Fatal {
		// Other processes of the watcher run: a slot that cannot start
		// (a new one of an incr that hit the process or descriptor
		// limit, say) never takes them down. It keeps trying, at
		// backoff_max, and shows its error; the watcher is "backoff".
		delay = w.spec.Policy.Backoff(n, rnd)
	}
	w.log.Warn("spawn failed", "wid", s.wid, "err", err, "attempts", n, "retry_in", delay)
	w.scheduleLocked(s, delay, ProcBackoff)
	w.notify()
}

// otherRunningLocked reports whether a slot other than s has a running
// process.
func (w *Watcher) otherRunningLocked(s *slot) bool {
	for _, o := range w.slots {
		if o != s && o.proc != nil && !o.proc.down() {
			return true
		}
	}
	return false
}

func (w *Watcher) scheduleLocked(s *slot, d time.Duration, state string) {
	w.stopTimer(&s.timer)
	s.pending = state
	s.due = time.Now().Add(d)
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		w.post(func() {
			if s.timer != t || !w.want || w.fatal || w.flapping {
				return
			}
			if !w.ownsSlot(s) || s.proc != nil || s.job != nil {
				s.timer, s.pending = nil, ""
				return
			}
			w.spawnLocked(s)
		})
	})
	s.timer = t
}

func (w *Watcher) ownsSlot(s *slot) bool {
	return s.wid <= len(w.slots) && w.slots[s.wid-1] == s
}

func (w *Watcher) stopTimer(t **time.Timer) {
	if *t != nil {
		(*t).Stop()
		*t = nil
	}
}

// stopProcLocked begins the graceful stop of p: StopSignal to its group
// (StopChildren) or its main process, and SIGKILL to whatever is left
// when GracefulTimeout expires.
func (w *Watcher) stopProcLocked(p *proc) {
	if p.stopping {
		return
	}
	p.stopping = true
	if p.exited {
		// Lingering: the rest of its group already has StopSignal and a
		// running timer (lingerLocked).
		return
	}
	if err := signalProc(p.pid, w.spec.StopSignal, w.spec.StopChildren); err != nil {
		w.log.Debug("stop signal", "pid", p.pid, "err", err)
	}
	if w.spec.StopChildren && p.cell != nil {
		// Also whatever left the process group (setsid, double fork).
		signalCell(p.cell, w.spec.StopSignal, p.pid)
	}
	w.armKillLocked(p)
}

// armKillLocked starts p's grace period: when it expires, SIGKILL goes to
// the main process's group and to anything else left of p.
func (w *Watcher) armKillLocked(p *proc) {
	grace := w.spec.GracefulTimeout
	var t *time.Timer
	t = time.AfterFunc(grace, func() { w.post(func() { w.graceOverLocked(p, t, grace) }) })
	p.killT = t
}

// graceOverLocked: p's grace period has expired.
func (w *Watcher) graceOverLocked(p *proc, t *time.Timer, grace time.Duration) {
	if p.killT != t {
		return // disarmed meanwhile
	}
	{
		switch {
		case p.exited && !p.lingering:
			return // finished
		case p.exited && w.groupGoneLocked(p):
			w.finishLocked(p)
			return
		case p.exited:
			w.log.Warn("graceful timeout, killing what is left of the process group", "wid", p.wid, "pid", p.pid, "timeout", grace)
		default:
			w.log.Warn("graceful timeout, killing process group", "wid", p.wid, "pid", p.pid, "timeout", grace)
		}
		if !p.exited || !pgroupGone(p.pid) {
			// (Once the group is gone its number may be reused.)
			killGroup(p.pid)
		}
		if p.cell != nil {
			p.cell.Kill()
		}
	}
}

// exited is the Spawner's callback: p's main process has been reaped.
// Its slot is free for a replacement only once the rest of its process
// group is gone too, so a new process never races its predecessor's
// workers (for a port, a lock file). When the group is already empty
// (the common case: one kill(2) tells) that is now; otherwise the rest
// gets StopSignal (unless it had it already) and the grace period runs,
// and p finishes when the last of them has gone (see lingerLocked).
//
// The Spawner calls it from its own goroutine: it only posts the exit to
// the owner (exitedLocked).
func (w *Watcher) exited(p *proc, st ExitStatus) {
	if st.Signal == "KILL" && p.oomKilled != nil {
		st.OOM = p.oomKilled(p.wid)
	}
	w.post(func() { w.exitedLocked(p, st) })
}

func (w *Watcher) exitedLocked(p *proc, st ExitStatus) {
	if !p.committed {
		p.early = &st // before its start was recorded: commitLocked goes on
		return
	}
	p.exited, p.exit = true, st
	if !w.groupGoneLocked(p) {
		w.lingerLocked(p)
		// Re-check now that the events are armed: the last of the group
		// may have gone in between.
		if !w.groupGoneLocked(p) {
			w.notify()
			return
		}
	}
	w.finishLocked(p)
}

// removeCell removes an empty cgroup (nil: nothing).
func (w *Watcher) removeCell(c *cgroup.Proc) {
	if c == nil {
		return
	}
	if err := c.Remove(); err != nil {
		w.log.Debug("removing a process's cgroup", "err", err)
	}
}

// groupGoneLocked reports whether nothing is left of p's process group
// and of its cgroup.
func (w *Watcher) groupGoneLocked(p *proc) bool {
	return pgroupGone(p.pid) && (p.cell == nil || !p.cell.Populated())
}

// lingerLocked waits for the rest of p's group after its main process
// exited: it arranges to be told when orphans are reaped (or, with no
// such events, re-checks on a backoff), sends StopSignal to the rest if
// they have not had it, and keeps or starts the grace period.
func (w *Watcher) lingerLocked(p *proc) {
	p.lingering = true
	w.lingering++
	if w.lingering == 1 {
		if oe, ok := w.spawner.(OrphanEvents); ok {
			w.orphanSub, w.orphanOK = oe.NotifyOrphans(w.recheck)
		}
	}
	if p.cell != nil {
		// The kernel tells when the cgroup empties (cgroup.events).
		p.cellWatch = p.cell.Watch(w.recheck)
	} else if !w.orphanOK {
		w.scheduleRecheckLocked(p)
	}
	if !p.stopping || !w.spec.StopChildren {
		// The leader exited on its own (or was the only one told to
		// stop): the rest of its group gets the stop signal now.
		w.log.Info("main process exited; stopping the rest of its process group", "wid", p.wid, "pid", p.pid, "signal", w.spec.StopSignal, "timeout", w.spec.GracefulTimeout)
		if err := signalPgroup(p.pid, w.spec.StopSignal); err != nil {
			w.log.Debug("stop signal", "pgid", p.pid, "err", err)
		}
		if p.cell != nil {
			signalCell(p.cell, w.spec.StopSignal, p.pid)
		}
	}
	if p.killT == nil {
		w.armKillLocked(p)
	}
}

// scheduleRecheckLocked re-checks p's group after a backoff, for when no
// event reports the deaths of its members.
func (w *Watcher) scheduleRecheckLocked(p *proc) {
	p.recheckD = min(max(2*p.recheckD, recheckMin), recheckMax)
	var t *time.Timer
	t = time.AfterFunc(p.recheckD, func() {
		w.post(func() {
			if !p.lingering || p.recheckT != t {
				return
			}
			if w.groupGoneLocked(p) {
				w.finishLocked(p)
				return
			}
			w.scheduleRecheckLocked(p)
		})
	})
	p.recheckT = t
}

// recheck finishes every lingering process whose group has gone. It is
// called on events (an orphan reaped, a cgroup emptied), from other
// goroutines: it posts to the owner.
func (w *Watcher) recheck() { w.post(w.recheckLocked) }

func (w *Watcher) recheckLocked() {
	if w.lingering == 0 {
		return
	}
	for _, p := range w.liveLocked() {
		if p.lingering && w.groupGoneLocked(p) {
			w.finishLocked(p)
		}
	}
}

// finishLocked ends p once nothing is left of it: its slot is freed and
// the restart policy decides what comes next.
func (w *Watcher) finishLocked(p *proc) {
	st := p.exit
	if p.lingering {
		p.lingering = false
		w.lingering--
		if w.lingering == 0 && w.orphanSub != nil {
			w.orphanSub()
			w.orphanSub, w.orphanOK = nil, false
		}
	}
	w.stopTimer(&p.killT)
	w.stopTimer(&p.recheckT)
	w.stopTimer(&p.ageT)
	if p.cellWatch != nil {
		p.cellWatch()
		p.cellWatch = nil
	}
	if w.spec.Hook != nil {
		w.hook(HookEvent{Point: OnExit, WID: p.wid, PID: p.pid, Exit: ptr(st)}, nil)
	}
	cell := p.cell
	p.cell = nil
	if d := p.joinDone; d != nil {
		// Off the owner: internal/limits' done takes its lock and reads
		// cgroup files.
		p.joinDone = nil
		w.goTracked(d)
	}
	if p.tracked {
		w.tracker.Ended(p.pid)
		p.tracked = false
	}
	wasReady := w.procReadyLocked(p, st.Time) || p.ready
	if p.kit != nil || p.notify != nil {
		w.endReadyLocked(p)
	}
	p.finished = true
	defer w.notify()
	if p.incoming != nil {
		// A reload's new process that never became ready: the old one
		// keeps its slot.
		s := p.incoming
		p.incoming = nil
		w.incoming = removeProc(w.incoming, p)
		w.removeCell(cell)
		if p.failed == "" {
			if p.stopping {
				p.failed = "stopped before it was ready"
			} else {
				p.failed = exitReason(st, st.Time.Sub(p.startedAt)) + " before it was ready"
			}
		}
		if w.ownsSlot(s) {
			s.lastErr = "reload: " + p.failed
		}
		w.replDoneLocked(p, p.failed)
		return
	}
	for i, d := range w.draining {
		if d == p {
			w.draining = append(w.draining[:i], w.draining[i+1:]...)
			w.removeCell(cell)
			return
		}
	}
	var s *slot
	for _, x := range w.slots {
		if x.proc == p {
			s = x
		}
	}
	if s == nil {
		w.removeCell(cell)
		return
	}
	s.proc = nil
	if cell != nil && cell.Reusable() {
		// Empty now: the slot's next process runs in it.
		w.removeCell(s.spare)
		s.spare = cell
	} else {
		w.removeCell(cell)
	}
	s.lastExit, s.hasExit = st, true
	if !w.want || w.fatal || w.flapping {
		return
	}
	if p.stopping && p.failed == "" {
		// Stopped, then wanted again (Start, the end of a flapping pause)
		// before it was gone: those skipped this slot, which was still
		// taken. Its replacement starts now.
		if s.timer == nil && s.job == nil && !s.down {
			w.spawnLocked(s)
		}
		return
	}
	uptime := st.Time.Sub(p.startedAt)
	why := p.failed
	if why == "" {
		why = exitReason(st, uptime)
	}
	expected := p.failed == "" && w.spec.Policy.OnFailure && w.spec.Policy.Expected(st, p.signaled)
	if !wasReady && !expected && !(p.failed == "" && !w.spec.Policy.Respawn && st.Signal == "" && st.Code == 0) {
		// A failed start: waiters (Start, Restart) report it.
		s.failSeq++
		s.failWhy = why
	}
	if p.failStart {
		uptime = 0 // counts as a quick exit: backoff
	}
	var d Decision
	var delay time.Duration
	if expected {
		d = LeaveDown
	} else {
		var failures int
		var hist History
		d, delay, failures, hist = w.spec.Policy.OnExit(st.Time, uptime, s.failures, History{Exits: s.exits, Rounds: w.rounds}, rand.Float64())
		s.failures, s.exits, w.rounds = failures, hist.Exits, hist.Rounds
	}
	// supervisord's startretries: failed starts in a row (an exit
	// before MinUptime or before ready) up to a limit.
	if wasReady || expected {
		s.failedStarts = 0
	} else {
		s.failedStarts++
	}
	giveUp := ""
	if limit := w.spec.Policy.MaxFailedStarts; limit > 0 && d == Restart && s.failedStarts >= limit {
		giveUp = fmt.Sprintf("%d failed starts in a row (the last: %s)", s.failedStarts, why)
		d = LeaveDown
		if !w.otherRunningLocked(s) {
			d = Fatal
		}
	}
	s.crashed = d == Restart || d == Flap
	// failLocked without start: a liveness check (health.*) or a missed
	// watchdog after ready stopped it.
	s.crashedLive = d == Restart && p.failed != "" && !p.failStart
	if d == Restart && p.failed != "" {
		s.lastErr = p.failed
	}
	if giveUp != "" {
		s.lastErr = "gave up: " + giveUp
	}
	w.log.Info("process exited", "wid", s.wid, "pid", p.pid, "code", st.Code, "signal", st.Signal, "uptime", uptime.Round(time.Millisecond), "reason", why, "then", d.String(), "delay", delay)
	switch d {
	case Restart:
		if delay <= 0 {
			w.respawnLocked(s)
		} else {
			w.scheduleLocked(s, delay, ProcBackoff)
		}
	case LeaveDown:
		s.down = true
		if w.allDownLocked() {
			w.event(Event{Watcher: w.spec.Name, Kind: "exited", Exit: st})
		}
	case Flap:
		w.flapLocked(delay, st)
	case Fatal:
		if giveUp != "" {
			w.goFatalLocked(giveUp, st)
			break
		}
		w.goFatalLocked(fmt.Sprintf("flapping %d times in a row", w.spec.Policy.Flapping.MaxRetry+1), st)
	}
}

func (w *Watcher) flapLocked(retryIn time.Duration, st ExitStatus) {
	fl := w.spec.Policy.Flapping
	w.flapping = true
	w.errMsg = fmt.Sprintf("%d exits within %s, retrying in %s (round %d of %d)", fl.Attempts, fl.Window, retryIn, w.rounds, fl.MaxRetry)
	w.log.Warn("flapping", "detail", w.errMsg)
	for _, s := range w.slots {
		s.crashed, s.crashedLive = true, false // the retry after the pause is unplanned (flapping)
	}
	w.stopAllLocked()
	w.event(Event{Watcher: w.spec.Name, Kind: "flapping", Exit: st})
	w.armFlapLocked(retryIn)
}

func (w *Watcher) goFatalLocked(msg string, st ExitStatus) {
	w.fatal, w.errMsg = true, msg
	w.stopAllLocked()
	w.notify()
	w.event(Event{Watcher: w.spec.Name, Kind: "fatal", Exit: st})
	if w.spec.Hook != nil {
		w.hook(HookEvent{Point: OnFatal, Exit: ptr(st)}, nil)
	}
}

// Status is a snapshot of the watcher.
type Status struct {
	Name         string
	State        string
	NumProcesses int
	Error        string
	Processes    []ProcStatus
}

// ProcStatus is one process (or idle slot) in a Status.
type ProcStatus struct {
	WID       int
	PID       int
	State     string
	StartedAt time.Time
	// Restarts counts the slot's unplanned restarts: after its process
	// ended unexpectedly (a crash, any exit nobody asked for) and after
	// a flapping pause.
	Restarts int
	// PlannedRestarts counts the restarts that were asked for: reload,
	// restart, stop then start, a config change that restarts. (A slot
	// added by scaling starts at 0; its first process is no restart.)
	PlannedRestarts int
	LastExit        ExitStatus
	HasExit         bool
	Error           string
	// DroppedBytes is filled in by the supervisor (output it could not write).
	DroppedBytes int64
	// Ready: the process passed its ready.* checks (or, without any, has
	// run MinUptime). Health is its liveness: "unknown" (no health.*
	// check, or not checked yet), "healthy" or "unhealthy". StatusText
	// is the last STATUS= it sent to its notify socket.
	Ready      bool
	Health     string
	StatusText string
	// Descendants is how many processes run beyond the main one: the
	// members of its cgroup, else of its process group and of its tree
	// of children (from /proc, on Linux). Status leaves it 0: counting
	// reads files, so it is done only on request (CountDescendants, then
	// FillDescendants for the rest).
	Descendants int
}

// Status returns a snapshot. The owner answers it between two messages,
// none of which waits for a process to start: it returns promptly while
// the watcher spawns thousands.
func (w *Watcher) Status() Status {
	var st Status
	if !w.call(func() { st = w.statusLocked() }) {
		if f := w.final.Load(); f != nil {
			return *f
		}
	}
	return st
}

func (w *Watcher) statusLocked() Status {
	st := Status{Name: w.spec.Name, NumProcesses: w.spec.NumProcesses, Error: w.errMsg, State: w.stateLocked()}
	now := time.Now()
	for _, s := range w.slots {
		ps := ProcStatus{WID: s.wid, Restarts: s.unplanned, PlannedRestarts: s.planned, LastExit: s.lastExit, HasExit: s.hasExit, Error: s.lastErr, Health: string(ready.HealthUnknown)}
		switch {
		case s.proc != nil:
			w.fillProcLocked(&ps, s.proc, now)
		case s.job != nil:
			ps.State = ProcStarting
		case s.pending != "":
			ps.State = s.pending
		case s.hasExit || s.lastErr != "":
			ps.State = ProcExited
		default:
			continue
		}
		st.Processes = append(st.Processes, ps)
	}
	for _, p := range append(append([]*proc(nil), w.draining...), w.incoming...) {
		ps := ProcStatus{WID: p.wid}
		w.fillProcLocked(&ps, p, now)
		st.Processes = append(st.Processes, ps)
	}
	return st
}

// fillProcLocked fills in what ps says of live process p.
func (w *Watcher) fillProcLocked(ps *ProcStatus, p *proc, now time.Time) {
	ps.PID, ps.StartedAt = p.pid, p.startedAt
	ps.Ready = w.procReadyLocked(p, now)
	switch {
	case p.down():
		ps.State = ProcStopping
	case ps.Ready:
		ps.State = ProcRunning
	default:
		ps.State = ProcStarting
	}
	ps.Health = string(p.health.State())
	ps.StatusText = p.notify.Status()
}

func (w *Watcher) stateLocked() string {
	switch {
	case w.fatal:
		return StateFatal
	case w.flapping:
		return StateFlapping
	}
	if !w.want {
		if w.allDownLocked() {
			return StateStopped
		}
		return StateStopping
	}
	running, backoff, idle := 0, false, false
	var now time.Time
	for _, s := range w.slots {
		switch {
		case s.proc != nil && !s.proc.down():
			running++
			if !s.proc.ready {
				if now.IsZero() {
					now = time.Now()
				}
				if !w.procReadyLocked(s.proc, now) {
					idle = true // starting: not ready yet
				}
			}
		case s.pending == ProcBackoff:
			backoff = true
		case s.down:
		default:
			idle = true
		}
	}
	switch {
	case backoff:
		return StateBackoff
	case idle:
		return StateStarting
	case running == 0 && len(w.slots) > 0:
		return StateStopped
	}
	return StateActive
}

// Wanted reports whether the watcher is meant to run (started, and not
// stopped since), whatever its processes are doing now.
func (w *Watcher) Wanted() bool {
	want := false
	w.call(func() { want = w.want })
	return want
}

// Active reports whether the watcher wants its processes up and has them.
func (w *Watcher) Active() bool {
	active := false
	w.call(func() { active = w.stateLocked() == StateActive })
	return active
}
