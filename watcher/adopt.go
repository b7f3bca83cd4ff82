package watcher

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/circle-supervisor/circle/internal/ready"
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
	CrashedLive  bool `json:",omitempty"`
	LiveRestarts int  `json:",omitempty"`
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

// AdoptProc is a running process. The fields after Cell are optional
// (a state without them adopts the process as before they existed: its
// checks, notify socket and max age start afresh, or not at all).
type AdoptProc struct {
	PID       int
	StartedAt time.Time
	StartTick uint64
	Ready     bool
	Signaled  bool
	Cell      string // its cgroup's directory ("" without)

	// Checking: its readiness checks (ready.*) were running; they fail
	// at ReadyDue (ready.timeout from the start, extended by
	// EXTEND_TIMEOUT_USEC), and LogMatched says ready.log had matched.
	Checking   bool      `json:",omitempty"`
	ReadyDue   time.Time `json:",omitzero"`
	LogMatched bool      `json:",omitempty"`
	// Health is where its liveness checks (health.*) were.
	Health *ready.HealthResume `json:",omitempty"`
	// Notify is its notify socket (ready.notify, watchdog), handed over.
	Notify *AdoptNotify `json:",omitempty"`
	// AgeDue is when its max age is reached (max_age).
	AgeDue time.Time `json:",omitzero"`
}

// AdoptNotify is a process's notify socket: its descriptor in the new
// circled (the same: exec keeps it) and its state.
type AdoptNotify struct {
	FD int
	ready.NotifyHandover
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
	State   AdoptState
	w       *Watcher
	thaw    chan struct{}
	pumps   []*pumpHandle
	procs   []*proc // State.Slots[i]'s process, nil without
	notify  []*ready.NotifySocket
	nfiles  []*os.File // notify sockets' descriptors, in notify's order
	stopped bool
	once    bool
	// SignalPumps: the pumps told to stop, not yet waited for.
	sig      bool
	signaled []*pumpHandle
}

// ErrBusy is returned (wrapped) by Freeze when the watcher is in the
// middle of something a hand-over does not carry (a spawn, a stop, a
// reload, a hook): try again a moment later.
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
		f.State, f.procs = w.captureLocked()
		d := &Digest{}
		w.digestLocked(d)
		w.setFrozenDigest(d)
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
	}
	return ""
}

// captureLocked records the watcher's state, and each slot's process
// (nil without), in the order of st.Slots. What a process's notify
// socket and output tap say is recorded by StopPumps, once nothing
// reads them.
func (w *Watcher) captureLocked() (AdoptState, []*proc) {
	st := AdoptState{Name: w.name, Want: w.want, Fatal: w.fatal, Flapping: w.flapping, ErrMsg: w.errMsg,
		Rounds: w.rounds, NumProcesses: w.spec.NumProcesses}
	if w.flapT != nil {
		st.FlapDue = w.flapDue
	}
	now := time.Now()
	procs := make([]*proc, 0, len(w.slots))
	for _, s := range w.slots {
		as := AdoptSlot{WID: s.wid, Failures: s.failures, SpawnErrs: s.spawnErrs, FailedStarts: s.failedStarts,
			Spawns: s.spawns, Unplanned: s.unplanned, Planned: s.planned, Crashed: s.crashed,
			CrashedLive: s.crashedLive, LiveRestarts: s.liveRestarts,
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
			if p.checked && !p.ready && p.prober != nil {
				ap.Checking, ap.ReadyDue = true, p.prober.Deadline()
			}
			if p.health != nil {
				r := p.health.Snapshot()
				ap.Health = &r
			}
			if p.ageT != nil && p.kit != nil {
				ap.AgeDue = p.kit.ageDue
			}
			as.Proc = ap
		}
		procs = append(procs, s.proc)
		st.Slots = append(st.Slots, as)
	}
	return st, procs
}

// StopPumps stops every output pump of the watcher between two reads
// and records their pipes in State.Pipes. Call it once the owner is
// frozen (Freeze) and exits are no longer reaped.
//
// It also stops reading the processes' notify sockets (ready.notify,
// watchdog) and records them, with their descriptors, and whether a
// process still checking its output (ready.log) had a line matched.
func (f *Frozen) StopPumps() {
	if f.stopped {
		return
	}
	f.stopped = true
	f.SignalPumps()
	f.pumps = waitPumps(f.signaled)
	f.signaled = nil
	for i, p := range f.procs {
		ap := f.State.Slots[i].Proc
		if p == nil || ap == nil {
			continue
		}
		if ap.Checking && p.tap != nil {
			ap.LogMatched = p.prober.LogMatched()
		}
		if p.notify == nil {
			continue
		}
		h, nf, err := p.notify.Hand()
		if err != nil {
			f.w.log.Warn("upgrade: the notify socket is not handed over", "wid", p.wid, "pid", p.pid, "err", err)
			continue
		}
		f.notify = append(f.notify, p.notify)
		f.nfiles = append(f.nfiles, nf)
		ap.Notify = &AdoptNotify{FD: fileFD(nf), NotifyHandover: h}
	}
	f.State.Pipes = f.State.Pipes[:0]
	for _, h := range f.pumps {
		f.State.Pipes = append(f.State.Pipes, AdoptPipe{WID: h.wid, PID: h.pid, Stream: h.kind, FD: fileFD(h.r), Partial: h.partialLine()})
	}
}

// SignalPumps tells the watcher's pumps to stop at their next read
// boundary without waiting for them (StopPumps waits): signal every
// frozen watcher first, then StopPumps each, and the pumps of all
// watchers stop at once. Thaw resumes them either way.
func (f *Frozen) SignalPumps() {
	if f.sig {
		return
	}
	f.sig = true
	f.signaled = signalPumps(&f.w.pumps)
}

// HandsChecks reports whether State hands over what a reader of the
// state before these fields would get wrong (call it after StopPumps): a
// process still in its readiness checks (it would be taken for ready
// once it has run MinUptime) or a notify socket (its descriptor would be
// left open and unread: a child's blocking sd_notify would hang once the
// socket's queue is full). Health checks' and max_age's fields are
// safely ignored by such a reader (they start afresh there, as before).
func (f *Frozen) HandsChecks() bool {
	for _, s := range f.State.Slots {
		if p := s.Proc; p != nil && (p.Checking || p.Notify != nil) {
			return true
		}
	}
	return false
}

// fileFD is f's descriptor number, read without Fd (which would make it
// blocking); -1 if it has none.
func fileFD(f *os.File) int {
	fd := -1
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(u uintptr) { fd = int(u) })
	}
	return fd
}

// Files are the descriptors State names, to be inherited by the new
// binary: the pipes' read ends, in State.Pipes' order, then the notify
// sockets'.
func (f *Frozen) Files() []*os.File {
	fs := make([]*os.File, 0, len(f.pumps)+len(f.nfiles))
	for _, h := range f.pumps {
		fs = append(fs, h.r)
	}
	return append(fs, f.nfiles...)
}

// Thaw undoes Freeze and StopPumps (the upgrade did not happen): the
// pumps resume and the owner runs what queued meanwhile.
func (f *Frozen) Thaw() {
	if f.once {
		return
	}
	f.once = true
	if f.signaled != nil { // signalled, never waited for
		f.pumps = append(f.pumps, waitPumps(f.signaled)...)
		f.signaled = nil
	}
	for _, h := range f.pumps {
		h.r.SetReadDeadline(time.Time{}) // StopPumps' wake-up
		runPump(&f.w.pumps, h)
	}
	f.pumps = nil
	for i, n := range f.notify {
		n.Resume()
		f.nfiles[i].Close()
	}
	f.notify, f.nfiles = nil, nil
	f.w.setFrozenDigest(nil)
	close(f.thaw)
}

// Adopt makes a new watcher (New, not started) take over what st
// describes: its processes (register tells the Spawner to deliver each
// one's exit; it runs before Adopt returns, so call Adopt before the
// reaper's first sweep), their pipes (descriptors inherited across the
// exec), slot histories, cgroups and due timers. Call SetCgroups before
// Adopt. Each process's checks resume: readiness checks still running
// with the deadline they had, health checks where they were; its notify
// socket listens again on the descriptor handed over (the watchdog due
// when it was), and its max age is reached when it would have been.
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
			crashedLive: as.CrashedLive, liveRestarts: as.LiveRestarts,
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
			w.resumeReadyLocked(p, ap)
			if !p.ready && !p.checked {
				if due := p.startedAt.Add(w.spec.Policy.MinUptime); upAt.IsZero() || due.Before(upAt) {
					upAt = due
				}
			}
			if ap.AgeDue.IsZero() {
				w.armAgeLocked(p)
			} else if w.spec.MaxAge > 0 {
				w.armAgeAtLocked(p, ap.AgeDue)
			}
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
		if tap := w.adoptedTapLocked(ap.WID, ap.PID); tap != nil {
			// ready.log still checking: its lines go to the prober.
			tw := &tapWriter{WriteCloser: out, tap: tap}
			if len(ap.Partial) <= maxTapLine {
				tw.partial = append([]byte(nil), ap.Partial...)
			}
			out = tw
		}
		runPump(&w.pumps, &pumpHandle{r: f, out: out, kind: ap.Stream, wid: ap.WID, pid: ap.PID})
	}
	w.notify()
	return errors.Join(errs...)
}

// adoptedTapLocked is the output tap of the process wid/pid, if it is
// still checking its output (ready.log).
func (w *Watcher) adoptedTapLocked(wid, pid int) *lineTap {
	if w.spec.Ready.Log == "" {
		return nil
	}
	for _, s := range w.slots {
		if p := s.proc; p != nil && s.wid == wid && p.pid == pid && p.tap != nil && !p.tap.off.Load() {
			return p.tap
		}
	}
	return nil
}

// resumeReadyLocked resumes what an adopted process's readiness had:
// its notify socket, its checks (the readiness checks still running,
// with the deadline they had; the health checks of a ready process,
// where they were). Nothing is made afresh: a process whose checks
// were not handed over (a state from a binary before these fields) runs
// its health checks from the start, and without a notify socket.
func (w *Watcher) resumeReadyLocked(p *proc, ap *AdoptProc) {
	spec := w.spec
	rs, hs := spec.Ready, spec.Health
	if ap.Notify != nil {
		opts := ready.NotifyOptions{Watchdog: spec.Watchdog, OnEvent: func(e ready.Event) { w.notifyEvent(p, e) }}
		n, err := ready.AdoptNotify(ap.Notify.FD, ap.Notify.NotifyHandover, opts)
		if err != nil {
			w.log.Warn("upgrade: the notify socket is not resumed", "wid", p.wid, "pid", p.pid, "err", err)
		} else {
			p.notify = n
		}
	}
	checking := ap.Checking && rs.Any()
	if !checking && !(ap.Ready && hs.Any()) {
		return
	}
	wid := FormatWID(p.wid, spec.WIDOffset, spec.WIDWidth)
	env, dir := slotEnv(&spec, p.wid, wid, 2)
	env = append(env, p.notify.Env(0)...)
	if !checking {
		rs = ReadySpec{} // its tap and notify check are not wanted
	}
	sp := spec
	sp.Ready = rs
	kit, err := w.buildKit(sp, p, wid, env, dir)
	if err != nil {
		if checking {
			p.checked = true
			w.failLocked(p, "readiness checks cannot resume after the upgrade: "+err.Error(), true)
		} else {
			w.log.Warn("upgrade: health checks not resumed", "wid", p.wid, "pid", p.pid, "err", err)
		}
		return
	}
	if ak := p.kit; ak != nil {
		kit.ageDue = ak.ageDue
	}
	p.kit = kit
	if checking {
		p.checked = true
		w.startProberLocked(p, ap.ReadyDue, ap.LogMatched)
		return
	}
	var r ready.HealthResume
	if ap.Health != nil {
		r = *ap.Health
	}
	if r.State == ready.HealthUnhealthy {
		// The previous circled was failing it (its report came after the
		// state was recorded).
		w.failLocked(p, "health: unhealthy before the upgrade", false)
		return
	}
	w.startHealthLocked(p, r)
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
