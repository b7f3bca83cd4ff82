package watcher

import (
	"sync/atomic"
	"time"

	"github.com/circle-supervisor/circle/internal/ready"
)

// Changed returns a channel that is closed at the watcher's next change
// (a process started, exited or changed state, the watcher's state
// changed, a reload or scale). Take it, read Status, then wait on it:
// whatever changes after the channel was taken closes it, so no change
// is missed between the Status and the wait. Nothing is sent while
// nothing changes.
func (w *Watcher) Changed() <-chan struct{} {
	w.chMu.Lock()
	defer w.chMu.Unlock()
	return w.changed
}

// SlotDigest is what an observer of changes needs of one slot: the
// fields of its ProcStatus that events and restart counts are made of.
type SlotDigest struct {
	WID, PID                  int
	Ready                     bool
	Health                    string // ProcStatus.Health
	Error                     string // the slot's error (ProcStatus.Error)
	Restarts, PlannedRestarts int
	// LivenessRestarts counts the Restarts that followed a failed
	// liveness check (health.*) or a missed watchdog: the observer tells
	// why a slot restarted without having seen its process unhealthy.
	LivenessRestarts int
}

// Digest is a watcher's state and its listed slots (the slots Status
// lists, in its order; not the processes draining after a reload or a
// scale-down).
type Digest struct {
	State, Error string
	Slots        []SlotDigest
}

// Digest fills d, reusing d.Slots' storage, and reports whether it
// could (false once the watcher is closed; Status then has its final
// state). It is Status without the cost that matters at thousands of
// processes on the owner: no ProcStatus (220 bytes each), no allocation
// once d.Slots is large enough, no notify status text.
//
// While a live upgrade holds the watcher (Freeze), it gives the digest
// taken at the freeze at once: the observer publishes what changed just
// before the freeze, ahead of the hand-over, instead of waiting for the
// owner until an exec that never returns.
func (w *Watcher) Digest(d *Digest) bool {
	for {
		w.freezeMu.Lock()
		fd := w.frozenDigest
		if w.freezeCh == nil {
			w.freezeCh = make(chan struct{})
		}
		frozen := w.freezeCh
		w.freezeMu.Unlock()
		if fd != nil {
			d.State, d.Error = fd.State, fd.Error
			d.Slots = append(d.Slots[:0], fd.Slots...)
			return true
		}
		// w.call, but given up if a freeze comes first (the owner would
		// run it after Thaw only): claim is 1 once the owner runs it, 2
		// once given up.
		var claim atomic.Int32
		ran := make(chan struct{})
		if !w.post(func() {
			if claim.CompareAndSwap(0, 1) {
				w.digestLocked(d)
				close(ran)
			}
		}) {
			<-w.o.done
			return false
		}
		select {
		case <-ran:
			return true
		case <-frozen:
			if claim.CompareAndSwap(0, 2) {
				continue // the frozen digest (or, thawed already, again)
			}
			<-ran
			return true
		case <-w.o.done:
			if claim.CompareAndSwap(0, 2) {
				return false
			}
			<-ran
			return true
		}
	}
}

// setFrozenDigest gives Digest's callers d while the owner is frozen
// (nil: thawed).
func (w *Watcher) setFrozenDigest(d *Digest) {
	w.freezeMu.Lock()
	defer w.freezeMu.Unlock()
	w.frozenDigest = d
	if d != nil && w.freezeCh != nil {
		close(w.freezeCh)
		w.freezeCh = make(chan struct{})
	}
}

func (w *Watcher) digestLocked(d *Digest) {
	d.State, d.Error = w.stateLocked(), w.errMsg
	d.Slots = d.Slots[:0]
	now := time.Now()
	for _, s := range w.slots {
		sd := SlotDigest{WID: s.wid, Error: s.lastErr, Restarts: s.unplanned, PlannedRestarts: s.planned, LivenessRestarts: s.liveRestarts, Health: string(ready.HealthUnknown)}
		switch {
		case s.proc != nil:
			sd.PID = s.proc.pid
			sd.Ready = w.procReadyLocked(s.proc, now)
			sd.Health = string(s.proc.health.State())
		case s.job != nil, s.pending != "", s.hasExit || s.lastErr != "":
		default:
			continue // Status does not list it
		}
		d.Slots = append(d.Slots, sd)
	}
}
