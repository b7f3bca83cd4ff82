package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/circle-supervisor/circle/internal/evlistener"
	"github.com/circle-supervisor/circle/supervisor/config"
	"github.com/circle-supervisor/circle/watcher"
)

// supervisord's event listeners ([eventlistener:x]): each listener
// watcher has a pool on one evlistener.Bus; its processes' standard
// input and output are the pool's (Spec.Stdin, Spec.Stdout), where the
// protocol is spoken. One goroutine follows the supervisor's own events
// (spawn, ready, exit, state, fatal) and tells them to an
// evlistener.Tracker, which turns them into the PROCESS_STATE_* events
// supervisord would send; the bus hands those to the pools subscribed.
//
// Nothing of this exists until some watcher is a listener: a config
// without one runs no goroutine and publishes nothing.

// evListeners is the supervisor's listener state (Supervisor.evl).
type evListeners struct {
	mu     sync.Mutex
	bus    *evlistener.Bus // nil until a watcher is a listener
	tr     *evlistener.Tracker
	pools  map[string]*evPool // by watcher name
	groups map[string]int     // supervisor group name -> watchers in it
	sub    *EventSub
	x      *evTranslator
	done   chan struct{} // closed when evLoop returns
	closed bool

	// What a live upgrade handed over (evl_upgrade.go), until used:
	// restore by the bus, restorePools by each pool's AddPool;
	// skipRunning drops the SUPERVISOR_STATE_CHANGE_RUNNING that Run
	// publishes (the listeners saw it from the previous binary).
	restore      *EvListenersState
	restorePools map[string]evlistener.PoolState
	skipRunning  bool
}

// evPool is one listener watcher's pool and the settings it was made
// with (a reload that changes them makes a new pool).
type evPool struct {
	pool   *evlistener.Pool
	events []string
	size   int
}

// initEvListeners makes the bus when cfg has a listener (New).
func (s *Supervisor) initEvListeners(cfg *config.Config) {
	if u := s.opts.Upgrade; u != nil && u.EvListeners != nil {
		s.evl.restoreFrom(u.EvListeners)
	}
	for _, wc := range cfg.Watchers {
		if wc.EventListener != nil {
			s.evl.mu.Lock()
			s.evBusLocked(cfg.Supervisord.Identifier)
			s.evl.mu.Unlock()
			return
		}
	}
}

// evBusLocked returns the bus, making it and starting the goroutine
// that feeds it on first use; nil once closed. evl.mu held.
func (s *Supervisor) evBusLocked(identifier string) *evlistener.Bus {
	v := &s.evl
	if v.bus != nil || v.closed {
		return v.bus
	}
	x := newEvTranslator()
	if r := v.restore; r != nil {
		v.restore = nil
		v.bus = evlistener.NewBusFrom(identifier, &r.Bus)
		v.tr = evlistener.NewTrackerFrom(r.Tracker)
		for _, sp := range r.Spawned {
			x.spawned[evSlot{sp.Watcher, sp.WID, sp.PID}] = sp.At
		}
	} else {
		v.bus = evlistener.NewBus(identifier)
		v.tr = evlistener.NewTracker()
	}
	x.bus, x.tr = v.bus, v.tr
	if v.pools == nil {
		v.pools = map[string]*evPool{}
	}
	v.sub = s.Subscribe(nil, time.Time{})
	v.done = make(chan struct{})
	v.x = x
	go s.evLoop(x, v.sub, v.done)
	return v.bus
}

// specListener makes sp a listener's spec when wc is one: its standard
// input and output are its pool's (the output still goes to its logs).
// Called by spec; a watcher that is no longer a listener loses its pool.
func (s *Supervisor) specListener(sp *watcher.Spec, wc *config.Watcher) {
	el := wc.EventListener
	identifier := ""
	if el != nil {
		identifier = s.Config().Supervisord.Identifier
	}
	v := &s.evl
	v.mu.Lock()
	defer v.mu.Unlock()
	old := v.pools[wc.Name]
	if el == nil {
		if old != nil {
			old.pool.Close()
			delete(v.pools, wc.Name)
		}
		return
	}
	if old == nil || !slices.Equal(old.events, el.Events) || old.size != el.BufferSize {
		if old != nil {
			// Its listeners' input closes: their watcher is being
			// restarted with the new settings (a reload).
			old.pool.Close()
			delete(v.pools, wc.Name)
		}
		bus := s.evBusLocked(identifier)
		if bus == nil {
			sp.Stdin = func(int) (*os.File, error) { return nil, errors.New("circled is shutting down") }
			return
		}
		p, err := bus.AddPool(evlistener.PoolConfig{Name: wc.Name, Events: el.Events, BufferSize: el.BufferSize, Log: s.log})
		if err != nil {
			// The config was checked at load: this is a bug, but it must
			// not start a listener that would read EOF for its events.
			s.log.Error("event listener pool", "watcher", wc.Name, "err", err)
			sp.Stdin = func(int) (*os.File, error) { return nil, fmt.Errorf("event listener pool: %w", err) }
			return
		}
		if ps, ok := v.restorePools[wc.Name]; ok {
			// Its listeners, handed over by a live upgrade: before the
			// adopted watcher's pumps open its Stdout.
			delete(v.restorePools, wc.Name)
			if err := p.Restore(ps); err != nil {
				s.log.Error("upgrade: event listener pool", "watcher", wc.Name, "err", err)
			}
		}
		old = &evPool{pool: p, events: slices.Clone(el.Events), size: el.BufferSize}
		v.pools[wc.Name] = old
	}
	sp.Stdin = old.pool.Stdin
	sp.Stdout = old.pool.Stdout(sp.Stdout)
}

// evWatcherAdded counts wc in its supervisor group; the group's first
// watcher makes a PROCESS_GROUP_ADDED event (newEntry, once the watcher
// and its pool exist: a pool sees its own group added, as in
// supervisord).
func (s *Supervisor) evWatcherAdded(wc *config.Watcher) {
	group, _ := evNames(wc, 1)
	v := &s.evl
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.groups == nil {
		v.groups = map[string]int{}
	}
	v.groups[group]++
	// An adopted watcher's group was added before the upgrade.
	if v.groups[group] == 1 && v.bus != nil && s.adopt[wc.Name] == nil {
		v.bus.Publish(evlistener.ProcessGroupAdded(group))
	}
}

// evWatcherDropped undoes evWatcherAdded for a watcher a reload removed
// (dropWatcher): its pool closes, its processes are forgotten, and the
// group's last watcher makes a PROCESS_GROUP_REMOVED event.
func (s *Supervisor) evWatcherDropped(wc *config.Watcher) {
	group, _ := evNames(wc, 1)
	v := &s.evl
	v.mu.Lock()
	defer v.mu.Unlock()
	if p := v.pools[wc.Name]; p != nil {
		p.pool.Close()
		delete(v.pools, wc.Name)
	}
	if v.groups[group] > 0 {
		v.groups[group]--
		if v.groups[group] == 0 {
			delete(v.groups, group)
			if v.bus != nil {
				v.bus.Publish(evlistener.ProcessGroupRemoved(group))
			}
		}
	}
	if v.tr != nil {
		for wid := 1; wid <= max(wc.NumProcesses, len(wc.ProcessNames)); wid++ {
			g, p := evNames(wc, wid)
			v.tr.Forget(g, p)
		}
	}
}

// evPublish publishes ev when a listener exists.
func (s *Supervisor) evPublish(ev evlistener.Event) {
	v := &s.evl
	v.mu.Lock()
	bus := v.bus
	if v.skipRunning && ev.Name == evlistener.SupervisorRunning().Name {
		v.skipRunning = false // the upgraded circled's Run: nothing changed
		bus = nil
	}
	v.mu.Unlock()
	if bus != nil {
		bus.Publish(ev)
	}
}

// closeEvListeners ends the goroutine and closes the bus (every pool:
// the listeners' inputs close). Close calls it before dropping the
// watchers, so a shutdown sends no PROCESS_GROUP_REMOVED.
func (s *Supervisor) closeEvListeners() {
	v := &s.evl
	v.mu.Lock()
	v.closed = true
	bus, sub, done := v.bus, v.sub, v.done
	v.mu.Unlock()
	if bus == nil {
		return
	}
	sub.Close()
	<-done
	bus.Close()
}

// evLoop turns the supervisor's events into PROCESS_STATE_* events
// until sub ends. A live upgrade pauses it (evTranslator.pause) once it
// has translated every event queued.
func (s *Supervisor) evLoop(x *evTranslator, sub *EventSub, done chan struct{}) {
	defer close(done)
	for {
		x.pmu.Lock()
		ctx := x.pctx
		x.pmu.Unlock()
		ev, err := sub.Next(ctx)
		if err != nil {
			if ctx.Err() == nil || !errors.Is(err, ctx.Err()) {
				return
			}
			// Paused: Next gives queued events before ctx's error.
			x.pmu.Lock()
			paused, resume := x.paused, x.resume
			x.pmu.Unlock()
			close(paused)
			<-resume
			continue
		}
		s.evTranslate(x, ev)
	}
}

// evTranslator is evLoop's state.
type evTranslator struct {
	bus *evlistener.Bus
	tr  *evlistener.Tracker
	// spawned holds when each live process was spawned, so that one
	// that ended after min_uptime without checks is told RUNNING first
	// even when its ready event was never published (the status diff
	// that makes it can miss a process that ran briefly).
	spawned map[evSlot]time.Time

	// pause (evl_upgrade.go): cancelling pctx makes evLoop close paused
	// and wait for resume.
	pmu     sync.Mutex
	pctx    context.Context
	pcancel context.CancelFunc
	paused  chan struct{}
	resume  chan struct{}
}

func newEvTranslator() *evTranslator {
	x := &evTranslator{spawned: map[evSlot]time.Time{}}
	x.pctx, x.pcancel = context.WithCancel(context.Background())
	return x
}

type evSlot struct {
	watcher  string
	wid, pid int
}

// evTranslate tells x.tr what ev says of a process and publishes the
// state changes that follow.
func (s *Supervisor) evTranslate(x *evTranslator, ev Event) {
	bus, tr := x.bus, x.tr
	publish := func(cs []evlistener.StateChange) {
		for _, c := range cs {
			bus.Publish(c.Event())
		}
	}
	if ev.Type == EventLost {
		s.log.Warn("event listeners: missed supervisor events; some PROCESS_STATE events were not sent", "count", ev.Count)
		return
	}
	if ev.Watcher == "" {
		return
	}
	e, wc, err := s.getCfg(ev.Watcher)
	if err != nil {
		return // removed meanwhile
	}
	switch ev.Type {
	case EventSpawn:
		g, p := evNames(wc, ev.WID)
		if len(x.spawned) >= maxEvSpawned {
			clear(x.spawned) // bounded: only a shortcut is lost
		}
		x.spawned[evSlot{wc.Name, ev.WID, ev.PID}] = ev.Time
		publish(tr.Spawned(g, p, ev.PID))
	case EventReady:
		g, p := evNames(wc, ev.WID)
		publish(tr.Running(g, p, ev.PID))
	case EventExit:
		s.evl.mu.Lock()
		pool := s.evl.pools[wc.Name]
		s.evl.mu.Unlock()
		if pool != nil {
			pool.pool.Exited(ev.WID, ev.PID)
		}
		g, p := evNames(wc, ev.WID)
		k := evSlot{wc.Name, ev.WID, ev.PID}
		if at, ok := x.spawned[k]; ok {
			delete(x.spawned, k)
			if !wc.Ready.Any() && tr.State(g, p) == evlistener.StateStarting && ev.Time.Sub(at) >= wc.MinUptime {
				publish(tr.Running(g, p, ev.PID))
			}
		}
		// A process that ends while its watcher is not wanted was
		// stopped (stop, restart, shutdown): STOPPING then STOPPED, as
		// supervisord reports a stop, not EXITED.
		if !e.w.Wanted() {
			publish(tr.Stopping(g, p, ev.PID))
		}
		publish(tr.Exited(g, p, ev.PID, evExpected(wc, ev)))
	case EventState, EventFatal:
		// "stopping" is a stop begun; "stopped" is one ended, or, for a
		// watcher still wanted, every process left down by the restart
		// policy (a respawn = never process that did not stay up, which
		// circled will not retry: FATAL, where supervisord ends after its
		// retries).
		stop := ev.State == watcher.StateStopping || ev.State == watcher.StateStopped && !e.w.Wanted()
		leftDown := ev.State == watcher.StateStopped && !stop
		for wid := 1; wid <= max(wc.NumProcesses, len(wc.ProcessNames)); wid++ {
			g, p := evNames(wc, wid)
			switch st := tr.State(g, p); {
			case stop:
				// The processes still up are STOPPING (those in BACKOFF
				// are STOPPED at once).
				publish(tr.Stopping(g, p, tr.PID(g, p)))
			case leftDown && st == evlistener.StateBackoff,
				ev.State == watcher.StateFatal && st != evlistener.StateRunning && st != evlistener.StateExited:
				publish(tr.GaveUp(g, p))
			}
		}
	}
}

// maxEvSpawned bounds evTranslator.spawned (an entry lives from a
// spawn event to its exit event; a lost exit event would leave one).
const maxEvSpawned = 1 << 16

// evExpected reports whether an exit's code is one of wc's exitcodes
// (0 when none are set); a death by a signal never is.
func evExpected(wc *config.Watcher, ev Event) bool {
	if ev.Code == nil {
		return false
	}
	if len(wc.ExitCodes) == 0 {
		return *ev.Code == 0
	}
	return slices.Contains(wc.ExitCodes, *ev.Code)
}

// evNames are supervisord's group and process names of wc's slot wid:
// the group is the [group:g] (the part of the watcher name before ':')
// or the program; the process is its process_name, else the program
// name (name_WID with several processes).
func evNames(wc *config.Watcher, wid int) (group, process string) {
	group, prog := wc.Name, wc.Name
	if g, p, ok := strings.Cut(wc.Name, ":"); ok {
		group, prog = g, p
	}
	if wid >= 1 && wid <= len(wc.ProcessNames) {
		return group, wc.ProcessNames[wid-1]
	}
	if wid == 1 && wc.NumProcesses <= 1 {
		return group, prog
	}
	return group, prog + "_" + strconv.Itoa(wid)
}

// svServerURL gives a supervisord program (SUPERVISOR_ENABLED=1 in env)
// SUPERVISOR_SERVER_URL, the XML-RPC address supervisor.childutils
// listeners call back on, when its config did not: circled's control
// socket (the config sets it only from [unix_http_server] or
// [inet_http_server]). env is sorted by key and stays so.
func svServerURL(env []string, socket string) []string {
	const key = "SUPERVISOR_SERVER_URL="
	if socket == "" || strings.HasPrefix(socket, `\\`) || !slices.Contains(env, "SUPERVISOR_ENABLED=1") {
		return env
	}
	i, found := slices.BinarySearchFunc(env, key, func(kv, k string) int {
		name, _, _ := strings.Cut(kv, "=")
		return strings.Compare(name+"=", k)
	})
	if found || slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, key) }) {
		return env
	}
	return slices.Insert(slices.Clip(env), i, key+"unix://"+socket)
}
