package supervisor

import (
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/circle-supervisor/circle/internal/ready"
	"github.com/circle-supervisor/circle/watcher"
)

// Restart reasons (circled_process_restarts_total's reason label and
// restart events).
const (
	ReasonCrash    = "crash"    // the process ended unexpectedly and was started again
	ReasonFlapping = "flapping" // the retry after a flapping pause
	ReasonHealth   = "health"   // a failed liveness check replaced it
	ReasonManual   = "manual"   // restart, stop then start
	ReasonReload   = "reload"   // a graceful reload or a config reload
	// ReasonMaxMemory (supervisor/limits.go): max_memory replaced it.
)

// RestartReasons lists every reason, for metrics that show them all.
var RestartReasons = []string{ReasonCrash, ReasonFlapping, ReasonHealth, ReasonManual, ReasonReload, ReasonMaxMemory}

// obs is the supervisor's observability state: the event bus and the
// counters that circled's metrics read at scrape time. Counters are
// updated where things happen (the spawner wrap sees every start and
// exit; one goroutine per watcher turns status changes into restarts by
// reason and state events), never on a timer: an idle circled wakes for
// none of it.
type obs struct {
	bus *eventBus

	mu       sync.Mutex
	perW     map[string]*watcherObs
	reloadOK uint64
	reloadKO uint64
	lastOK   time.Time
}

// watcherObs is one watcher's counters and observer.
type watcherObs struct {
	name string
	stop chan struct{}

	diffMu    sync.Mutex // one diff at a time
	seen      bool
	prevState string
	// prev is what the last diff saw of the watcher's slots, spare the
	// digest the next one fills: two digests reused, as a diff runs at
	// every change of the watcher (thousands while 2000 processes start).
	prev, spare watcher.Digest
	// full: the next diff looks at every slot, not only those that
	// changed (the first one after the baseline, which published nothing).
	full bool
	// reloading > 0 while a reload replaces this watcher's processes:
	// planned restarts seen meanwhile are reason reload.
	reloading int
	unhealthy map[int]int // wid -> the pid last reported unhealthy

	// guarded by obs.mu
	restarts map[string]uint64 // by reason
	exits    map[exitKey]uint64
	dropped  int64
	dropSeen map[int]int64 // pid -> dropped bytes counted so far
}

type exitKey struct{ code, signal string }

func (s *Supervisor) initObs() {
	s.obs = &obs{bus: newEventBus(), perW: map[string]*watcherObs{}, lastOK: time.Now()}
}

// watcherObsFor returns (making it) the observer state of a watcher.
func (o *obs) watcherObsFor(name string) *watcherObs {
	o.mu.Lock()
	defer o.mu.Unlock()
	wo := o.perW[name]
	if wo == nil {
		wo = &watcherObs{name: name, stop: make(chan struct{}), unhealthy: map[int]int{}, restarts: map[string]uint64{}, exits: map[exitKey]uint64{}, dropSeen: map[int]int64{}}
		o.perW[name] = wo
	}
	return wo
}

// spawnerFor wraps the supervisor's spawner for one watcher: every start
// becomes a spawn event and every exit an exit event and a count. The
// wrap keeps the optional interfaces the watcher looks for
// (watcher.OrphanEvents: the reaper tells when a lingering group's
// orphans are reaped).
func (s *Supervisor) spawnerFor(name string) watcher.Spawner {
	o := &observedSpawner{Spawner: s.opts.Spawner, s: s, name: name}
	if oe, ok := s.opts.Spawner.(watcher.OrphanEvents); ok {
		return &observedOrphanSpawner{observedSpawner: o, oe: oe}
	}
	return o
}

type observedSpawner struct {
	watcher.Spawner
	s    *Supervisor
	name string
}

type observedOrphanSpawner struct {
	*observedSpawner
	oe watcher.OrphanEvents
}

// NotifyOrphans implements watcher.OrphanEvents.
func (o *observedOrphanSpawner) NotifyOrphans(f func()) (cancel func(), ok bool) {
	return o.oe.NotifyOrphans(f)
}

// Start implements watcher.Spawner. A command without output pipes is
// not one of the watcher's processes (those always have them: their
// output feeds the log ring) but an exec check's (ready.exec,
// health.exec): it is started as it is, without events or counts.
func (o *observedSpawner) Start(cmd *exec.Cmd, onExit func(watcher.ExitStatus)) (int, error) {
	if cmd.Stdout == nil && cmd.Stderr == nil {
		return o.Spawner.Start(cmd, onExit)
	}
	wid := widOf(cmd.Env)
	var pid int
	spawned := make(chan struct{}) // the exit event follows the spawn event
	pid, err := o.Spawner.Start(cmd, func(st watcher.ExitStatus) {
		<-spawned
		o.s.exited(o.name, wid, pid, st)
		onExit(st)
	})
	if err == nil {
		o.s.obs.bus.publish(Event{Type: EventSpawn, Watcher: o.name, WID: wid, PID: pid})
	}
	close(spawned)
	return pid, err
}

// widOf reads CIRCLED_WID from a process's environment (the watcher sets it).
func widOf(env []string) int {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], "CIRCLED_WID="); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

func (s *Supervisor) exited(name string, wid, pid int, st watcher.ExitStatus) {
	o := s.obs
	ev := Event{Type: EventExit, Watcher: name, WID: wid, PID: pid, Time: st.Time}
	key := exitKey{signal: st.Signal}
	if st.Signal == "" {
		code := st.Code
		ev.Code = &code
		key.code = strconv.Itoa(code)
	} else {
		ev.Signal = st.Signal
		if s.exitOOM(name, wid, st) {
			// The OOM killer's SIGKILL: reason oom, counted apart
			// (code="oom", signal="KILL").
			ev.Reason = ExitReasonOOM
			key.code = ExitReasonOOM
		}
	}
	dropped := s.drops.Dropped(pid)
	// Was it stopped for failing its liveness checks (or watchdog)? The
	// watcher still lists it: this runs before the watcher hears of the
	// exit. Only watchers with such checks pay for the look.
	sick := false
	if e, wc, err := s.getCfg(name); err == nil && (wc.Health.Any() || wc.Watchdog > 0) {
		for _, p := range e.w.Status().Processes {
			if p.PID == pid {
				sick = p.Health == healthUnhealthy || healthFailure(p.Error)
			}
		}
	}
	o.mu.Lock()
	wo := o.perW[name]
	var newDrops int64
	if wo != nil {
		wo.exits[key]++
		newDrops = wo.countDropped(pid, dropped)
		delete(wo.dropSeen, pid)
	}
	o.mu.Unlock()
	if wo != nil && sick {
		wo.diffMu.Lock()
		if wo.unhealthy[wid] != pid {
			wo.unhealthy[wid] = pid
			o.bus.publish(Event{Type: EventUnhealthy, Watcher: name, WID: wid, PID: pid})
		}
		wo.diffMu.Unlock()
	}
	o.bus.publish(ev)
	if newDrops > 0 {
		o.bus.publish(Event{Type: EventLogDropped, Watcher: name, WID: wid, PID: pid, Count: newDrops})
	}
}

// countDropped adds what pid dropped since last counted; obs.mu held.
func (wo *watcherObs) countDropped(pid int, now int64) int64 {
	d := now - wo.dropSeen[pid]
	if d <= 0 {
		return 0
	}
	wo.dropSeen[pid] = now
	wo.dropped += d
	return d
}

// observe starts the goroutine that turns e's status changes into
// events and restart counts. It sleeps on the watcher's change channel.
//
// A diff reads the whole status, O(processes), and a big watcher
// changes in bursts (2000 processes starting change it thousands of
// times: a diff per change allocated 390 MB and took the watcher's time
// from its spawns). So diffs of a watcher are at least diffGap per
// process apart, and 4 times as long as the last diff took (the observer
// takes at most a fifth of a CPU even on a loaded machine): changes in
// between are seen together by the next diff (restart counts add up; a
// state held only in between has no event). Below 40 processes the gap
// is under a millisecond and not waited for.
func (s *Supervisor) observe(e *entry) {
	wo := s.obs.watcherObsFor(e.cfg.Name)
	w := e.w
	wo.diff(s, w) // the baseline
	go func() {
		var t *time.Timer
		for {
			ch := w.Changed()
			start := time.Now()
			n := wo.diff(s, w)
			took := time.Since(start)
			select {
			case <-ch:
			case <-wo.stop:
				return
			}
			gap := max(time.Duration(n)*diffGap, 4*took)
			if wait := time.Until(start.Add(gap)); gap > time.Millisecond && wait > 0 {
				if t == nil {
					t = time.NewTimer(wait)
				} else {
					t.Reset(wait)
				}
				select {
				case <-t.C:
				case <-wo.stop:
					return
				}
			}
		}
	}()
}

// diffGap is, per process of a watcher, the least time between two
// diffs of its status (see observe): events of a watcher of 2000
// processes come at most 50 ms late.
const diffGap = 25 * time.Microsecond

// unobserve stops a removed watcher's observer and forgets its counters.
func (s *Supervisor) unobserve(name string) {
	o := s.obs
	o.mu.Lock()
	wo := o.perW[name]
	delete(o.perW, name)
	o.mu.Unlock()
	if wo != nil {
		close(wo.stop)
	}
}

// closeObs stops every observer and ends every event subscription.
func (s *Supervisor) closeObs() {
	o := s.obs
	o.mu.Lock()
	ws := make([]*watcherObs, 0, len(o.perW))
	for _, wo := range o.perW {
		ws = append(ws, wo)
	}
	o.perW = map[string]*watcherObs{}
	o.mu.Unlock()
	for _, wo := range ws {
		close(wo.stop)
	}
	o.bus.close()
}

// reloading marks (on) or unmarks the named watchers as having their
// processes replaced by a reload. Unmarking first counts what changed.
func (s *Supervisor) reloading(names []string, on bool) {
	for _, n := range names {
		e, err := s.get(n)
		if err != nil {
			continue
		}
		wo := s.obs.watcherObsFor(n)
		if !on {
			wo.diff(s, e.w)
		}
		wo.diffMu.Lock()
		if on {
			wo.reloading++
		} else if wo.reloading > 0 {
			wo.reloading--
		}
		wo.diffMu.Unlock()
	}
}

// diff compares w's slots with the last ones seen and publishes what
// changed: state events, ready events, restarts by reason. It returns
// how many slots the watcher lists.
//
// It reads a Digest, not the Status: at 2000 processes a Status is
// 2000 ProcStatus built on the watcher's owner (about 900 KB allocated,
// twice per restart: at the exit and at the new start), while the new
// process is still in fork and exec. The slots are compared in order,
// and only those that changed are looked at further.
func (wo *watcherObs) diff(s *Supervisor, w *watcher.Watcher) int {
	wo.diffMu.Lock()
	defer wo.diffMu.Unlock()
	if !w.Digest(&wo.spare) {
		digestOfStatus(&wo.spare, w.Status()) // closed: its final status
	}
	cur, prev := wo.spare, wo.prev
	wo.prev, wo.spare = cur, prev
	seen, prevState := wo.seen, wo.prevState
	wo.seen, wo.prevState = true, cur.State
	if !seen {
		wo.full = true
		return len(cur.Slots)
	}
	full := wo.full
	wo.full = false
	name := wo.name
	// Events go out once the counters are updated: a client that sees a
	// restart event and then reads the metrics finds it counted.
	var evs []Event
	bus := publisher(func(ev Event) { evs = append(evs, ev) })
	if cur.State != prevState {
		typ := EventState
		switch cur.State {
		case watcher.StateFlapping:
			typ = EventFlapping
		case watcher.StateFatal:
			typ = EventFatal
		}
		bus.publish(Event{Type: typ, Watcher: name, State: cur.State, Reason: cur.Error})
	}
	var inc map[string]uint64
	add := func(reason string, n int) {
		if n <= 0 {
			return
		}
		if inc == nil {
			inc = map[string]uint64{}
		}
		inc[reason] += uint64(n)
	}
	var prevBy map[int]watcher.SlotDigest // when the slots moved (scale, reload)
	for i, p := range cur.Slots {
		var old watcher.SlotDigest
		had := false
		if i < len(prev.Slots) && prev.Slots[i].WID == p.WID {
			old, had = prev.Slots[i], true
		} else {
			if prevBy == nil {
				prevBy = make(map[int]watcher.SlotDigest, len(prev.Slots))
				for _, q := range prev.Slots {
					prevBy[q.WID] = q
				}
			}
			old, had = prevBy[p.WID]
		}
		if had && old == p && !full {
			continue
		}
		if p.Ready && p.PID != 0 && (old.PID != p.PID || !old.Ready) {
			bus.publish(Event{Type: EventReady, Watcher: name, WID: p.WID, PID: p.PID})
		}
		if p.Health == healthUnhealthy && p.PID != 0 && wo.unhealthy[p.WID] != p.PID {
			wo.unhealthy[p.WID] = p.PID
			bus.publish(Event{Type: EventUnhealthy, Watcher: name, WID: p.WID, PID: p.PID, Reason: p.Error})
		}
		if d := p.Restarts - old.Restarts; d > 0 && had {
			reason := ReasonCrash
			switch {
			case prevState == watcher.StateFlapping:
				reason = ReasonFlapping
			case p.LivenessRestarts > old.LivenessRestarts,
				old.PID != 0 && wo.unhealthy[p.WID] == old.PID, healthFailure(p.Error):
				// The watcher stopped it for a failed liveness check (or
				// watchdog): it counts those restarts, since the slot's
				// error is cleared at the next spawn and the unhealthy
				// state may come and go between two looks of the
				// observer.
				reason = ReasonHealth
				if wo.unhealthy[p.WID] != old.PID || old.PID == 0 {
					wo.unhealthy[p.WID] = old.PID
					bus.publish(Event{Type: EventUnhealthy, Watcher: name, WID: p.WID, PID: old.PID, Reason: p.Error})
				}
			}
			add(reason, d)
			bus.publish(Event{Type: EventRestart, Watcher: name, WID: p.WID, PID: p.PID, Reason: reason})
		}
		if d := p.PlannedRestarts - old.PlannedRestarts; d > 0 && had {
			reason := ReasonManual
			switch {
			case s.tookMaxMemory(name, p.WID):
				reason = ReasonMaxMemory
			case wo.reloading > 0:
				reason = ReasonReload
			}
			add(reason, d)
			bus.publish(Event{Type: EventRestart, Watcher: name, WID: p.WID, PID: p.PID, Reason: reason})
		}
	}
	if inc != nil {
		s.obs.mu.Lock()
		for r, n := range inc {
			wo.restarts[r] += n
		}
		s.obs.mu.Unlock()
	}
	for _, ev := range evs {
		s.obs.bus.publish(ev)
	}
	return len(cur.Slots)
}

// digestOfStatus fills d from a status (a closed watcher's): its slots
// are the first entry of each wid (the draining processes follow them).
func digestOfStatus(d *watcher.Digest, st watcher.Status) {
	d.State, d.Error = st.State, st.Error
	d.Slots = d.Slots[:0]
	seen := make(map[int]bool, len(st.Processes))
	for _, p := range st.Processes {
		if seen[p.WID] {
			continue
		}
		seen[p.WID] = true
		d.Slots = append(d.Slots, watcher.SlotDigest{WID: p.WID, PID: p.PID, Ready: p.Ready, Health: p.Health, Error: p.Error,
			Restarts: p.Restarts, PlannedRestarts: p.PlannedRestarts})
	}
}

// publisher collects events (diff publishes them at its end).
type publisher func(Event)

func (p publisher) publish(ev Event) { p(ev) }

// healthUnhealthy is ProcStatus.Health of a process that failed its
// liveness checks.
const healthUnhealthy = string(ready.HealthUnhealthy)

// healthFailure reports whether a slot's error says its process was
// stopped by a liveness check (health.*) or the notify watchdog.
func healthFailure(err string) bool {
	return strings.HasPrefix(err, "health.") || strings.HasPrefix(err, "watchdog")
}

// configReloaded counts a config reload and publishes its event.
func (s *Supervisor) configReloaded(sum *ReloadSummary, err error) {
	o := s.obs
	o.mu.Lock()
	if err != nil {
		o.reloadKO++
	} else {
		o.reloadOK++
		o.lastOK = time.Now()
	}
	o.mu.Unlock()
	ev := Event{Type: EventReload, Summary: sum}
	if err != nil {
		ev.Reason, ev.Summary = err.Error(), nil
	}
	o.bus.publish(ev)
}

// Metrics is what circled's /metrics reads, at scrape time.
type Metrics struct {
	Watchers []WatcherMetrics
	// ReloadsOK and ReloadsFailed count config reloads; LastReloadOK is
	// the time of the last successful one (or of circled's start).
	ReloadsOK, ReloadsFailed uint64
	LastReloadOK             time.Time
}

// WatcherMetrics is one watcher's status and counters.
type WatcherMetrics struct {
	WatcherStatus
	Restarts     map[string]uint64 // by reason, every reason present
	Exits        []ExitCount
	DroppedBytes int64
	// Usage has each live process's CPU time and resident memory, summed
	// over its main process and descendants (Linux; empty elsewhere).
	Usage map[int]Usage // by main pid
}

// ExitCount is how many processes ended with one code or signal.
type ExitCount struct {
	Code   string // "" for a signal
	Signal string // "" for an exit code
	N      uint64
}

// Usage is a process group's resource use.
type Usage struct {
	CPU time.Duration
	RSS int64
}

// Metrics reads every watcher's status and counters, and with usage
// each process group's CPU time and memory (one scan of /proc).
func (s *Supervisor) Metrics(usage bool) Metrics {
	st, _, _ := s.Status(nil)
	var pids []int
	for _, w := range st {
		for _, p := range w.Processes {
			if p.PID != 0 && p.State != watcher.ProcExited {
				pids = append(pids, p.PID)
			}
		}
	}
	var use map[int]Usage
	if usage {
		use = groupUsage(pids)
	}
	o := s.obs
	o.mu.Lock()
	defer o.mu.Unlock()
	m := Metrics{ReloadsOK: o.reloadOK, ReloadsFailed: o.reloadKO, LastReloadOK: o.lastOK}
	for _, w := range st {
		wm := WatcherMetrics{WatcherStatus: w, Restarts: map[string]uint64{}, Usage: map[int]Usage{}}
		for _, r := range RestartReasons {
			wm.Restarts[r] = 0
		}
		if wo := o.perW[w.Name]; wo != nil {
			for r, n := range wo.restarts {
				wm.Restarts[r] = n
			}
			for k, n := range wo.exits {
				wm.Exits = append(wm.Exits, ExitCount{Code: k.code, Signal: k.signal, N: n})
			}
			for _, p := range w.Processes {
				if p.PID != 0 {
					wo.countDropped(p.PID, p.DroppedBytes)
				}
			}
			wm.DroppedBytes = wo.dropped
		}
		slices.SortFunc(wm.Exits, func(a, b ExitCount) int {
			return strings.Compare(a.Code+"/"+a.Signal, b.Code+"/"+b.Signal)
		})
		for _, p := range w.Processes {
			if u, ok := use[p.PID]; ok {
				wm.Usage[p.PID] = u
			}
		}
		m.Watchers = append(m.Watchers, wm)
	}
	return m
}
