package watcher

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/circle-supervisor/circle/internal/ready"
)

// Replacements (Reload, MaxAge): a new process is spawned beside a
// slot's and, once it is ready, takes the slot while the old one is
// stopped (promoteLocked). One slot at a time, for every cause together:
// the owner keeps a queue of tickets and runs the next when the current
// one is done.

// replTicket is one slot's replacement.
type replTicket struct {
	s    *slot
	old  *proc // the process replaced (once started)
	p    *proc // the new process (once started)
	done bool
	err  string // why the new process did not take the slot
}

// Reload replaces each process gracefully, one slot at a time: a new
// process is spawned beside the slot's and, once it is ready, takes the
// slot while the old one is stopped. A new process that does not become
// ready is stopped and the old one keeps serving; Reload goes on with the
// other slots and returns the failures. With ReloadSignal, each process
// gets that signal instead. A stopped watcher is started. Without wait it
// returns at once and the owner replaces the slots.
func (w *Watcher) Reload(ctx context.Context, wait bool) error {
	var wt *waiter
	var res startResult
	var err error
	if !w.call(func() {
		if !w.want || w.fatal || w.flapping || w.gate != 0 {
			seq := w.failSnapshotLocked()
			gen, l := w.startLocked()
			if wait {
				wt = w.addWaiterLocked(func() bool { return w.startedLocked(gen, nil, seq, &res) })
			} else {
				wt = w.launchWaiterLocked(gen, l)
			}
			return
		}
		if sig := w.spec.ReloadSignal; sig != "" {
			var nr *notifyReload
			err, nr = w.reloadSignalLocked(sig)
			if wait && nr != nil {
				gen := w.gen
				wt = w.addWaiterLocked(func() bool { return w.notifyReloadedLocked(gen, nr, &res) })
			}
			return
		}
		wt = w.replaceAllLocked(wait, &res)
	}) {
		return ErrClosed
	}
	if wt == nil {
		return err
	}
	if e := w.await(ctx, wt); e != nil {
		return errors.Join(err, e)
	}
	if e := res.err(w); e != nil || err != nil {
		return errors.Join(err, e)
	}
	return nil
}

// Replace replaces every running process gracefully, one slot at a time,
// the new one ready before the old one stops, whatever ReloadSignal says:
// for a spec whose command changed (Update, then Replace). A stopped
// watcher stays stopped. With wait it returns once done (the failures,
// as Reload).
func (w *Watcher) Replace(ctx context.Context, wait bool) error {
	var wt *waiter
	var res startResult
	if !w.call(func() {
		if !w.want || w.fatal || w.flapping || w.gate != 0 {
			return
		}
		wt = w.replaceAllLocked(wait, &res)
	}) {
		return ErrClosed
	}
	if wt == nil {
		return nil
	}
	if err := w.await(ctx, wt); err != nil {
		return err
	}
	return res.err(w)
}

// ReplaceSlot replaces slot wid's running process gracefully, as max_age
// does (the new process ready before the old one stops; one replacement
// at a time, queued behind others), with why in the log: for a process
// over its memory limit (max_memory). It does not wait. A stopped, fatal
// or flapping watcher, or a slot with no running process, is left alone
// (nil); ErrClosed after Close.
func (w *Watcher) ReplaceSlot(wid int, why string) error {
	if !w.post(func() {
		if !w.want || w.fatal || w.flapping {
			return
		}
		for _, s := range w.slots {
			if s.wid == wid && s.proc != nil && !s.proc.down() {
				if t := w.replCur; t != nil && t.s == s && t.old == s.proc {
					return // its replacement is under way already
				}
				w.log.Info("replacing the process", "wid", wid, "pid", s.proc.pid, "reason", why)
				w.queueReplacementsLocked([]*slot{s})
			}
		}
	}) {
		return ErrClosed
	}
	return nil
}

// replaceAllLocked queues a replacement of every slot, starts the first
// ones, and with wait returns the waiter for all of them (its failures go
// to res).
func (w *Watcher) replaceAllLocked(wait bool, res *startResult) *waiter {
	tickets := w.queueReplacementsLocked(w.slots)
	w.startSlotsLocked(nil)
	if !wait {
		return nil
	}
	gen := w.gen
	return w.addWaiterLocked(func() bool { return w.reloadedLocked(gen, tickets, res) })
}

// reloadSignalLocked sends ReloadSignal to every running process. With
// Ready.Notify, each is then expected to send RELOADING=1 and, once
// reloaded, READY=1 (systemd's Type=notify-reload): the returned
// notifyReload tracks them.
func (w *Watcher) reloadSignalLocked(sig string) (error, *notifyReload) {
	var errs []error
	var nr *notifyReload
	if w.spec.Ready.Notify {
		nr = &notifyReload{}
	}
	for _, s := range w.slots {
		if p := s.proc; p != nil && !p.down() {
			p.signaled = true
			if err := signalProc(p.pid, sig, false); err != nil {
				errs = append(errs, fmt.Errorf("%s.%d: pid %d: %w", w.spec.Name, s.wid, p.pid, err))
				continue
			}
			if nr != nil && p.notify != nil {
				p.reloadWait, p.reloadErr = reloadWantReloading, ""
				nr.procs = append(nr.procs, p)
			}
		}
	}
	if nr != nil && len(nr.procs) > 0 {
		timeout := w.spec.Ready.Timeout
		if timeout <= 0 {
			timeout = ready.DefaultTimeout
		}
		var t *time.Timer
		t = time.AfterFunc(timeout, func() {
			w.post(func() {
				if nr.t != t {
					return
				}
				nr.t = nil
				for _, p := range nr.procs {
					if p.reloadWait != reloadDone && !p.down() {
						what := "RELOADING=1"
						if p.reloadWait == reloadWantReady {
							what = "READY=1"
						}
						p.reloadErr = fmt.Sprintf("reload: no %s within %s of %s", what, timeout, sig)
						p.reloadWait = reloadDone
					}
				}
				w.notify()
			})
		})
		nr.t = t
	} else {
		nr = nil
	}
	w.startSlotsLocked(nil)
	w.notify()
	return errors.Join(errs...), nr
}

// Phases of a process told to reload by a signal, with Ready.Notify.
const (
	reloadDone          = iota
	reloadWantReloading // signalled: RELOADING=1 is due
	reloadWantReady     // reloading: READY=1 is due
)

// notifyReload is a signal reload waiting for its processes' RELOADING=1
// then READY=1.
type notifyReload struct {
	procs []*proc
	t     *time.Timer // the timeout
}

// notifyReloadedLocked is the condition of a signal reload's waiter:
// every process has reloaded (READY=1 after RELOADING=1), failed to in
// time, or gone.
func (w *Watcher) notifyReloadedLocked(gen int, nr *notifyReload, r *startResult) bool {
	if w.fatal || w.flapping || !w.want || w.gen != gen {
		r.final = fmt.Errorf("%s was stopped while reloading", w.spec.Name)
		w.stopTimer(&nr.t)
		return true
	}
	r.errs = r.errs[:0]
	for _, p := range nr.procs {
		switch {
		case p.finished || p.down():
			r.errs = append(r.errs, fmt.Sprintf("%s.%d: exited while reloading", w.spec.Name, p.wid))
		case p.reloadWait != reloadDone:
			return false
		case p.reloadErr != "":
			r.errs = append(r.errs, fmt.Sprintf("%s.%d: %s", w.spec.Name, p.wid, p.reloadErr))
		}
	}
	w.stopTimer(&nr.t)
	return true
}

// reloadedLocked is a reload waiter's condition: every ticket is done and
// every process replaced has gone; or the watcher was stopped (or gave
// up) meanwhile.
func (w *Watcher) reloadedLocked(gen int, tickets []*replTicket, r *startResult) bool {
	switch {
	case w.fatal:
		r.final = fmt.Errorf("%s is fatal: %s", w.spec.Name, w.errMsg)
		return true
	case w.flapping:
		r.final = fmt.Errorf("%s is flapping: %s", w.spec.Name, w.errMsg)
		return true
	case !w.want || w.gen != gen:
		r.final = fmt.Errorf("%s was stopped while reloading", w.spec.Name)
		return true
	}
	r.errs = r.errs[:0]
	for _, t := range tickets {
		if !t.done || (t.old != nil && t.old.down() && !t.old.finished) {
			return false
		}
		if t.err != "" {
			r.errs = append(r.errs, fmt.Sprintf("%s.%d: %s", w.spec.Name, t.s.wid, t.err))
		}
	}
	return true
}

// queueReplacementsLocked queues the replacement of each of slots that
// runs a process (a slot already queued keeps its place) and returns the
// tickets.
func (w *Watcher) queueReplacementsLocked(slots []*slot) []*replTicket {
	var ts []*replTicket
	for _, s := range slots {
		if s.proc == nil || s.proc.down() {
			continue
		}
		t := s.ticket
		if t == nil {
			t = &replTicket{s: s}
			s.ticket = t
			w.replQ = append(w.replQ, t)
		}
		ts = append(ts, t)
	}
	w.pumpReplLocked()
	return ts
}

// pumpReplLocked starts the next replacement unless one runs.
func (w *Watcher) pumpReplLocked() {
	for w.replCur == nil && len(w.replQ) > 0 {
		t := w.replQ[0]
		w.replQ[0] = nil
		w.replQ = w.replQ[1:]
		s := t.s
		if s.ticket == t {
			s.ticket = nil
		}
		if !w.ownsSlot(s) || s.proc == nil || s.proc.down() || !w.want || w.fatal || w.flapping {
			t.done = true
			continue
		}
		t.old = s.proc
		j := w.prepareLocked(s, true)
		j.p.ticket = t
		t.p = j.p
		w.replCur = t
		w.queueJobsLocked([]*spawnJob{j})
	}
	if len(w.replQ) == 0 {
		w.replQ = nil
	}
	w.notify()
}

// replDoneLocked ends the replacement whose new process is p: it took
// its slot (failed == "") or not (why).
func (w *Watcher) replDoneLocked(p *proc, failed string) {
	t := p.ticket
	if t == nil {
		return
	}
	p.ticket = nil
	t.done, t.err = true, failed
	if failed != "" {
		w.log.Warn("replacement failed; the old process keeps its slot", "wid", t.s.wid, "reason", failed)
		if old := t.old; old != nil && !old.down() && old.ageT == nil && w.ownsSlot(t.s) && t.s.proc == old {
			w.armAgeLocked(old) // max age: try again later
		}
	}
	if w.replCur == t {
		w.replCur = nil
	}
	w.pumpReplLocked()
}

// dropReplacementsLocked forgets the queued replacements (stop, fatal,
// flapping); the running one ends with its new process.
func (w *Watcher) dropReplacementsLocked() {
	for _, t := range w.replQ {
		t.done = true
		if t.s.ticket == t {
			t.s.ticket = nil
		}
	}
	w.replQ = nil
}

// armAgeLocked arms p's max age (Spec.MaxAge, plus up to MaxAgeVariance):
// then it is replaced like a reload replaces it.
func (w *Watcher) armAgeLocked(p *proc) {
	age := w.spec.MaxAge
	if age <= 0 {
		return
	}
	if v := w.spec.MaxAgeVariance; v > 0 {
		age += time.Duration(rand.Int64N(int64(v) + 1))
	}
	w.armAgeAtLocked(p, time.Now().Add(age))
}

// armAgeAtLocked arms p's max age to be reached at due (armAgeLocked's
// timer; an adopted process's is the due time handed over, kept as it
// was so that upgrades do not shift it).
func (w *Watcher) armAgeAtLocked(p *proc, due time.Time) {
	if p.kit == nil {
		p.kit = &readyKit{}
	}
	p.kit.ageDue = due
	var t *time.Timer
	t = time.AfterFunc(max(time.Until(due), 0), func() {
		w.post(func() {
			if p.ageT != t {
				return
			}
			p.ageT = nil
			for _, s := range w.slots {
				if s.proc == p && !p.down() && w.want && !w.fatal && !w.flapping {
					w.log.Info("max age reached; replacing the process", "wid", s.wid, "pid", p.pid, "age", time.Since(p.startedAt).Round(time.Millisecond))
					w.queueReplacementsLocked([]*slot{s})
				}
			}
		})
	})
	p.ageT = t
}
