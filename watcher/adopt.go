package watcher

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// Live upgrade (issue 19, DESIGN.md "Live upgrade"): the running circled
// freezes every watcher (Freeze), stops every output pump between two
// reads (Frozen.StopPumps), writes the AdoptState of each and executes
// the new binary, whose watchers take the processes over (Adopt). Nothing
// of it touches a child: no signal, no closed pipe.

// AdoptState is what a watcher hands to the next circled: its wanted
// state, each slot's process and history, its due timers (as wall-clock
// times) and its processes' output pipes.
type AdoptState struct {
	Name         string
	Want         bool
	Fatal        bool
	Flapping     bool
	ErrMsg       string
	Rounds       int
	FlapDue      time.Time // the end of a flapping pause (Flapping)
	NumProcesses int
	Slots        []AdoptSlot
	Pipes        []AdoptPipe
}

// AdoptSlot is one slot (wid) and its process, if it has one.
type AdoptSlot struct {
	WID          int
	Failures     int
	SpawnErrs    int
	FailedStarts int
	Spawns       int
	Unplanned    int
	Planned      int
	Crashed      bool
	Exits        []time.Time
	LastExit     ExitStatus
	HasExit      bool
	LastErr      string
	Pending      string    // ProcBackoff or ProcStarting: a spawn is due
	Due          time.Time // ... then
	Down         bool
	FailSeq      int
	FailWhy      string
	Proc         *AdoptProc
}

// AdoptProc is a running process.
type AdoptProc struct {
	PID       int
	StartedAt time.Time
	StartTick uint64
	Ready     bool
	Signaled  bool
	Cell      string // its cgroup's directory ("" without)
}

// AdoptPipe is one output pipe's read end: the descriptor number it has
// in the new circled (the same: exec keeps descriptors) and the
// unterminated line its writer held.
type AdoptPipe struct {
	WID     int
	PID     int
	Stream  int // 0 stdout, 1 stderr
	FD      int
	Partial []byte
}

// Frozen is a watcher held still for a live upgrade: its owner runs
// nothing (commands, exits, timers wait in its queue) until Thaw.
type Frozen struct {
	State AdoptState
	w     *Watcher
	thaw  chan struct{}
	pumps []*pumpHandle
	once  bool
}

// ErrBusy is returned (wrapped) by Freeze when the watcher is in the
// middle of something a hand-over does not carry (a spawn, a stop, a
// reload, a hook, readiness checks): try again a moment later.
var ErrBusy = errors.New("busy")

// Freeze stops the owner at a quiet moment and records the state. It
// fails with ErrBusy, changing nothing, while the watcher is busy.
func (w *Watcher) Freeze() (*Frozen, error) {
	f := &Frozen{w: w, thaw: make(chan struct{})}
	res := make(chan string, 1)
	if !w.post(func() {
		if why := w.busyLocked(); why != "" {
			res <- why
			return
		}
		f.State = w.captureLocked()
		res <- ""
		<-f.thaw
	}) {
		return nil, ErrClosed
	}
	select {
	case why := <-res:
		if why != "" {
			return nil, fmt.Errorf("%s: %s: %w", w.name, why, ErrBusy)
		}
		return f, nil
	case <-w.o.done:
		return nil, ErrClosed
	}
}

// busyLocked says what the watcher is in the middle of, "" when nothing
// a hand-over cannot carry.
func (w *Watcher) busyLocked() string {
	switch {
	case w.inflight > 0:
		return "processes are being spawned"
	case len(w.incoming) > 0 || w.replCur != nil || len(w.replQ) > 0:
		return "processes are being replaced (reload)"
	case w.gate != 0 || w.stopGate != 0:
		return "a hook runs"
	case len(w.draining) > 0 || w.lingering > 0:
		return "processes are stopping"
	}
	for _, s := range w.slots {
		p := s.proc
		if p == nil {
			continue
		}
		if p.down() {
			return "processes are stopping"
		}
		if p.checked && !p.ready {
			return "readiness checks run"
		}
	}
	return ""
}

func (w *Watcher) captureLocked() AdoptState {
	st := AdoptState{Name: w.name, Want: w.want, Fatal: w.fatal, Flapping: w.flapping, ErrMsg: w.errMsg,
		Rounds: w.rounds, NumProcesses: w.spec.NumProcesses}
	if w.flapT != nil {
		st.FlapDue = w.flapDue
	}
	now := time.Now()
	for _, s := range w.slots {
		as := AdoptSlot{WID: s.wid, Failures: s.failures, SpawnErrs: s.spawnErrs, FailedStarts: s.failedStarts,
			Spawns: s.spawns, Unplanned: s.unplanned, Planned: s.planned, Crashed: s.crashed,
			Exits: append([]time.Time(nil), s.exits...), LastExit: s.lastExit, HasExit: s.hasExit,
			LastErr: s.lastErr, Down: s.down, FailSeq: s.failSeq, FailWhy: s.failWhy}
		if s.timer != nil {
			as.Pending, as.Due = s.pending, s.due
		}
		if p := s.proc; p != nil {
			ap := &AdoptProc{PID: p.pid, StartedAt: p.startedAt, StartTick: p.startTick,
				Ready: w.procReadyLocked(p, now), Signaled: p.signaled}
			if p.cell != nil {
				ap.Cell = p.cell.Path()
			}
			as.Proc = ap
		}
		st.Slots = append(st.Slots, as)
	}
	return st
}

// StopPumps stops every output pump of the watcher between two reads
// and records their pipes in State.Pipes. Call it once the owner is
// frozen (Freeze) and exits are no longer reaped.
func (f *Frozen) StopPumps() {
	f.pumps = stopPumps(&f.w.pumps)
	f.State.Pipes = f.State.Pipes[:0]
	for _, h := range f.pumps {
		fd := -1
		if rc, err := h.r.SyscallConn(); err == nil {
			rc.Control(func(u uintptr) { fd = int(u) })
		}
		f.State.Pipes = append(f.State.Pipes, AdoptPipe{WID: h.wid, PID: h.pid, Stream: h.kind, FD: fd, Partial: h.partialLine()})
	}
}

// Files are the pipes' read ends, in State.Pipes' order.
func (f *Frozen) Files() []*os.File {
	fs := make([]*os.File, len(f.pumps))
	for i, h := range f.pumps {
		fs[i] = h.r
	}
	return fs
}

// Thaw undoes Freeze and StopPumps (the upgrade did not happen): the
// pumps resume and the owner runs what queued meanwhile.
func (f *Frozen) Thaw() {
	if f.once {
		return
	}
	f.once = true
	for _, h := range f.pumps {
		h.r.SetReadDeadline(time.Time{}) // StopPumps' wake-up
		runPump(&f.w.pumps, h)
	}
	f.pumps = nil
	close(f.thaw)
}

// Adopt makes a new watcher (New, not started) take over what st
// describes: its processes (register tells the Spawner to deliver each
// one's exit; it runs before Adopt returns, so call Adopt before the
// reaper's first sweep), their pipes (descriptors inherited across the
// exec), slot histories, cgroups and due timers. Call SetCgroups before
// Adopt. Readiness and health checks and
// notify sockets of adopted processes are not resumed.
func (w *Watcher) Adopt(st AdoptState, register func(pid int, onExit func(ExitStatus))) error {
	var err error
	if !w.call(func() { err = w.adoptLocked(st, register) }) {
		return ErrClosed
	}
	return err
}

func (w *Watcher) adoptLocked(st AdoptState, register func(pid int, onExit func(ExitStatus))) error {
	w.want, w.fatal, w.flapping, w.errMsg, w.rounds = st.Want, st.Fatal, st.Flapping, st.ErrMsg, st.Rounds
	if st.NumProcesses != w.spec.NumProcesses {
		sp := w.spec
		sp.NumProcesses = st.NumProcesses
		w.setSpecLocked(sp)
	}
	w.slots = w.slots[:0]
	var upAt time.Time
	for _, as := range st.Slots {
		s := &slot{wid: as.WID, failures: as.Failures, spawnErrs: as.SpawnErrs, failedStarts: as.FailedStarts,
			spawns: as.Spawns, unplanned: as.Unplanned, planned: as.Planned, crashed: as.Crashed,
			exits: as.Exits, lastExit: as.LastExit, hasExit: as.HasExit, lastErr: as.LastErr, down: as.Down,
			failSeq: as.FailSeq, failWhy: as.FailWhy}
		w.slots = append(w.slots, s)
		if ap := as.Proc; ap != nil {
			p := &proc{wid: s.wid, pid: ap.PID, startedAt: ap.StartedAt, startTick: ap.StartTick, spec: w.specP,
				committed: true, ready: ap.Ready, signaled: ap.Signaled, readyAtStart: ap.Ready}
			s.proc = p
			if ap.Cell != "" && w.cg != nil {
				// Its cgroup: stops reach what left its process group.
				if c, err := w.cg.Adopt(ap.Cell); err == nil {
					p.cell = c
				} else {
					w.log.Warn("upgrade: the process keeps running outside circled's view of its cgroup", "wid", s.wid, "pid", p.pid, "err", err)
				}
			}
			register(p.pid, func(es ExitStatus) { w.exited(p, es) })
			if w.tracker != nil && p.startTick != 0 {
				w.tracker.Started(w.spec.Name, s.wid, p.pid, p.startTick)
				p.tracked = true
			}
			if !p.ready {
				if due := p.startedAt.Add(w.spec.Policy.MinUptime); upAt.IsZero() || due.Before(upAt) {
					upAt = due
				}
			}
			w.armAgeLocked(p)
		}
		if as.Pending != "" {
			w.scheduleLocked(s, max(time.Until(as.Due), 0), as.Pending)
		}
	}
	if !upAt.IsZero() {
		w.armUpLocked(upAt)
	}
	if st.Flapping && !st.FlapDue.IsZero() {
		w.armFlapLocked(max(time.Until(st.FlapDue), 0))
	}
	var errs []error
	for _, ap := range st.Pipes {
		sink := w.spec.Stdout
		if ap.Stream == streamStderr {
			sink = w.spec.Stderr
		}
		f := os.NewFile(uintptr(ap.FD), fmt.Sprintf("%s.%d pipe", w.name, ap.WID))
		if f == nil || sink == nil {
			errs = append(errs, fmt.Errorf("%s.%d: output pipe fd %d cannot be resumed", w.name, ap.WID, ap.FD))
			if f != nil {
				f.Close()
			}
			continue
		}
		out := sink.Open(ap.WID, ap.PID)
		if len(ap.Partial) > 0 {
			if ps, ok := out.(interface{ SetPartial([]byte) }); ok {
				ps.SetPartial(ap.Partial)
			}
		}
		runPump(&w.pumps, &pumpHandle{r: f, out: out, kind: ap.Stream, wid: ap.WID, pid: ap.PID})
	}
	w.notify()
	return errors.Join(errs...)
}

// armFlapLocked arms the end of a flapping pause in d (flapLocked's
// timer, and an adopted watcher's).
func (w *Watcher) armFlapLocked(d time.Duration) {
	w.flapDue = time.Now().Add(d)
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		w.post(func() {
			if w.flapT != t || !w.flapping {
				return
			}
			w.flapT = nil
			w.flapping, w.errMsg = false, ""
			for _, s := range w.slots {
				s.failures, s.exits = 0, nil
			}
			if w.want {
				w.startSlotsLocked(nil)
			}
			w.notify()
		})
	})
	w.flapT = t
}
