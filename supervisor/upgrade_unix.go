//go:build unix

package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/circle-supervisor/circle/internal/cgroup"
	"github.com/circle-supervisor/circle/watcher"
)

// upgradeBusyWait bounds how long PrepareUpgrade waits for every
// watcher to be quiet at once (no spawn, stop, reload or hook running).
const upgradeBusyWait = 10 * time.Second

// Handover is a prepared live upgrade: the reaper and every watcher are
// frozen, every output pump is stopped between two reads, and State
// describes it all. The caller adds its own descriptors, executes the
// new binary, and calls Abort if that fails.
type Handover struct {
	State *UpgradeState
	// Files are the descriptors State names (output pipes), to be
	// inherited by the new binary.
	Files []*os.File

	s      *Supervisor
	reaper *Reaper
	frozen []*watcher.Frozen
	evl    bool // the event listeners are frozen
	done   bool
}

// Format is the format of State (what the new binary must read).
func (h *Handover) Format() int { return h.State.Format }

// PrepareUpgrade is PrepareUpgradeFor a binary that reads UpgradeFormat
// only: a config with event listeners is refused.
func (s *Supervisor) PrepareUpgrade(ctx context.Context) (*Handover, error) {
	return s.PrepareUpgradeFor(ctx, []int{UpgradeFormat})
}

// PrepareUpgradeFor freezes the supervisor for a live upgrade (see
// Handover) to a binary that reads the state formats given (its
// __upgrade-check's): the state is written in UpgradeFormat,
// UpgradeFormatEvListeners when event listeners are handed over, or
// UpgradeFormatChecks when a process in its readiness checks or a
// notify socket is, and refused unless formats has it. An error
// wrapping ErrUpgrade means nothing changed.
func (s *Supervisor) PrepareUpgradeFor(ctx context.Context, formats []int) (*Handover, error) {
	if s.closing.Load() {
		return nil, ErrShuttingDown
	}
	reaper, ok := s.opts.Spawner.(*Reaper)
	if !ok {
		return nil, fmt.Errorf("%w: processes are not started by circled's reaper", ErrUpgrade)
	}
	s.opMu.Lock() // no reload, startup or whole-set stop meanwhile
	h := &Handover{s: s, reaper: reaper}
	deadline := time.Now().Add(upgradeBusyWait)
	var wants map[string]bool
	for {
		// Read before the freeze: a command in flight may hold its lane
		// while it waits for a frozen watcher.
		wants = s.laneWants()
		// Exits stay zombies from now on: the exits reaped so far are
		// queued to their watchers, ahead of the freeze.
		reaper.freeze()
		frozen, err := s.freezeAll()
		if err == nil {
			h.frozen = frozen
			break
		}
		reaper.unfreeze()
		if !errors.Is(err, watcher.ErrBusy) || time.Now().After(deadline) || ctx.Err() != nil || s.closing.Load() {
			s.opMu.Unlock()
			return nil, fmt.Errorf("%w: %v", ErrUpgrade, err)
		}
		time.Sleep(20 * time.Millisecond) // a spawn or stop finishing: a few ms
	}
	// Every watcher's pumps are told first, then waited for: the stall
	// is the slowest pump's, not the sum over the watchers.
	for _, f := range h.frozen {
		f.SignalPumps()
	}
	for _, f := range h.frozen {
		f.StopPumps() // no listener output is parsed from now on
	}
	// What changed just before the freeze (an exit the reaper's freeze
	// flushed to its watcher) is published now, from the digest taken at
	// the freeze: an observer's diff waits for its gap, and the new
	// binary's first diff is a baseline. Without this, the event history
	// handed over and the event listeners would never see it.
	for _, e := range s.allEntries() {
		s.obs.watcherObsFor(e.name).diff(s, e.w)
	}
	evs, evFiles, err := s.freezeEvListeners()
	// The state's format is the highest its content needs (each format
	// reads everything of those before it).
	format, needs := UpgradeFormat, ""
	if evs != nil {
		format, needs = UpgradeFormatEvListeners, "event listener watchers are"
	}
	for _, f := range h.frozen {
		if f.HandsChecks() {
			format, needs = UpgradeFormatChecks, "processes in their readiness checks or with a notify socket (ready.notify, watchdog) are"
			break
		}
	}
	if err == nil && !slices.Contains(formats, format) {
		err = fmt.Errorf("%s handed over in state format %d, which the new binary does not read (it reads %v)", needs, format, formats)
	}
	h.evl = true
	if err != nil {
		h.Abort()
		return nil, fmt.Errorf("%w: %v", ErrUpgrade, err)
	}
	st := &UpgradeState{Format: format, EvListeners: evs}
	s.mu.Lock()
	st.Config, st.Snap, st.LastReloadError = s.cfg, s.snap, s.lastReloadErr
	s.mu.Unlock()
	if s.cg != nil {
		st.Cgroup = s.cg.Path()
	}
	st.Events = s.obs.bus.history()
	st.Counters = s.obs.exportCounters()
	s.sockMu.Lock()
	hs, socks := s.sockets.Hand()
	s.sockMu.Unlock()
	st.Sockets = hs
	h.Files = append(h.Files, socks...)
	for _, f := range h.frozen {
		h.Files = append(h.Files, f.Files()...)
	}
	h.Files = append(h.Files, evFiles...)
	for _, f := range h.frozen {
		uw := UpgradeWatcher{State: f.State, Wanted: f.State.Want}
		if w, ok := wants[f.State.Name]; ok {
			uw.Wanted = w
		}
		uw.Ring = s.ring(f.State.Name).Export()
		st.Watchers = append(st.Watchers, uw)
	}
	h.State = st
	return h, nil
}

// laneWants reads whether the last command on each watcher wants it up.
func (s *Supervisor) laneWants() map[string]bool {
	m := map[string]bool{}
	for _, e := range s.allEntries() {
		m[e.name] = e.wanted()
	}
	return m
}

// freezeAll freezes every watcher, or none (ErrBusy: one is busy).
func (s *Supervisor) freezeAll() ([]*watcher.Frozen, error) {
	var out []*watcher.Frozen
	for _, e := range s.allEntries() {
		f, err := e.w.Freeze()
		if err != nil {
			for _, g := range out {
				g.Thaw()
			}
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// Abort undoes PrepareUpgrade: the pumps resume, the watchers handle
// what queued meanwhile, and the reaper collects the exits.
func (h *Handover) Abort() {
	if h.done {
		return
	}
	h.done = true
	if h.evl {
		h.s.thawEvListeners()
	}
	for _, f := range h.frozen {
		f.Thaw()
	}
	h.reaper.unfreeze()
	h.s.opMu.Unlock()
}

// freeze stops reaping (a live upgrade): exits stay zombies. It returns
// once no sweep runs.
func (r *Reaper) freeze() {
	r.mu.Lock()
	if !r.frozen {
		r.frozen = true
		r.thaw = make(chan struct{})
	}
	r.mu.Unlock()
	r.sweeps.Wait()
}

// unfreeze undoes freeze and sweeps what exited meanwhile.
func (r *Reaper) unfreeze() {
	r.mu.Lock()
	if r.frozen {
		r.frozen = false
		close(r.thaw)
	}
	r.mu.Unlock()
	r.Sweep()
}

// adopt registers a process the previous circled started: its exit
// goes to onExit. Call it before Run.
func (r *Reaper) adopt(pid int, onExit func(watcher.ExitStatus)) {
	r.mu.Lock()
	r.procs[pid] = reaperEntry{onExit: onExit}
	r.mu.Unlock()
}

// adoptEntry makes e's new watcher take over what the previous circled
// handed over (before the reaper runs and before e is observed).
func (s *Supervisor) adoptEntry(e *entry, uw *UpgradeWatcher) {
	reaper, ok := s.opts.Spawner.(*Reaper)
	if !ok {
		s.log.Error("upgrade: cannot adopt processes without circled's reaper", "watcher", e.name)
		return
	}
	e.lane.want = uw.Wanted
	wids := map[int]int{}
	for _, sl := range uw.State.Slots {
		if sl.Proc != nil {
			wids[sl.Proc.PID] = sl.WID
		}
	}
	register := func(pid int, onExit func(watcher.ExitStatus)) {
		wid := wids[pid]
		reaper.adopt(pid, func(st watcher.ExitStatus) {
			s.exited(e.name, wid, pid, st)
			onExit(st)
		})
	}
	if err := e.w.Adopt(uw.State, register); err != nil {
		s.log.Warn("upgrade: adopting", "watcher", e.name, "err", err)
	}
}

// reenterCgroup, before setupContainment of an adopting circled, moves
// it from the leaf of its subtree back to the cgroup the subtree was
// made in (where the previous binary started), so that setupContainment
// finds the same subtree (and reuses it) instead of nesting a new one
// under the leaf.
func (s *Supervisor) reenterCgroup(u *UpgradeState) {
	if u.Cgroup == "" || os.Getenv(NoCgroupsEnv) != "" {
		return
	}
	if err := cgroup.Enter(filepath.Dir(u.Cgroup)); err != nil {
		s.log.Warn("upgrade: cannot reuse the containment cgroups", "cgroup", u.Cgroup, "err", err)
	}
}
