package watcher

import (
	"context"
	"errors"
	"sync"
	"time"
)

// The owner: one goroutine per watcher runs every change to its state,
// one message at a time (see doc.go). A message is a func run on the
// owner goroutine; post queues one without ever blocking (the queue is
// unbounded, so the reaper's exit callback and timer callbacks never
// wait for a busy watcher), call queues one and waits until it has run.

// ErrClosed is returned by the commands of a watcher after Close.
var ErrClosed = errors.New("watcher closed")

// owner is the message loop's state, shared with the senders.
type owner struct {
	inMu   sync.Mutex
	inbox  []func()
	closed bool

	wake chan struct{} // cap 1: the inbox has messages
	quit chan struct{} // closed by Close
	done chan struct{} // closed when the loop has ended

	ctx    context.Context // cancelled by Close: hooks, spawns
	cancel context.CancelFunc
	wg     sync.WaitGroup // goroutines the watcher started (spawns, hooks, events)
}

func (o *owner) init() {
	o.wake = make(chan struct{}, 1)
	o.quit = make(chan struct{})
	o.done = make(chan struct{})
	o.ctx, o.cancel = context.WithCancel(context.Background())
}

// post queues f to run on the owner. It never blocks; it returns false
// (and drops f) once the watcher is closed.
func (w *Watcher) post(f func()) bool {
	w.o.inMu.Lock()
	if w.o.closed {
		w.o.inMu.Unlock()
		return false
	}
	w.o.inbox = append(w.o.inbox, f)
	w.o.inMu.Unlock()
	select {
	case w.o.wake <- struct{}{}:
	default:
	}
	return true
}

// call runs f on the owner and returns once it has run (false: the
// watcher is closed and f did not run).
func (w *Watcher) call(f func()) bool {
	ran := make(chan struct{})
	if !w.post(func() { f(); close(ran) }) {
		<-w.o.done // the owner's last writes happen before the caller's reads
		return false
	}
	select {
	case <-ran:
		return true
	case <-w.o.done:
		select {
		case <-ran:
			return true
		default:
			return false
		}
	}
}

// goTracked runs f in a goroutine that Close waits for.
func (w *Watcher) goTracked(f func()) {
	w.o.wg.Add(1)
	go func() {
		defer w.o.wg.Done()
		f()
	}()
}

// loop is the owner goroutine.
func (w *Watcher) loop() {
	defer close(w.o.done)
	var batch []func()
	for {
		select {
		case <-w.o.wake:
		case <-w.o.quit:
			w.shutdownLocked()
			return
		}
		for {
			w.o.inMu.Lock()
			batch, w.o.inbox = w.o.inbox, batch[:0]
			w.o.inMu.Unlock()
			if len(batch) == 0 {
				break
			}
			for i, f := range batch {
				f()
				batch[i] = nil
			}
		}
		if w.dirty && w.inflight > 0 && !w.holdOver {
			// Spawns are in flight: publish once they are recorded, or
			// after maxHold whatever happens. A respawn after an exit is
			// then seen with the exit (respawnLocked), and a mass spawn
			// wakes waiters and observers (each of which reads a Status
			// of every process) every maxHold, not once per process.
			if w.holdT == nil {
				var t *time.Timer
				t = time.AfterFunc(w.holdFor(), func() {
					w.post(func() {
						if w.holdT == t {
							w.holdOver = true
						}
					})
				})
				w.holdT = t
			}
			continue
		}
		if w.dirty {
			w.dirty = false
			w.stopTimer(&w.holdT)
			w.holdOver = false
			w.publishLocked()
		}
	}
}

// How long spawns in flight delay publishing changes: at most maxHold
// while more are queued than run (a mass spawn), else up to maxHoldFew
// (each is a fork and exec, and a before_spawn hook: publishing them with
// the change that caused them keeps the order observers saw when the
// spawns ran under a lock, a spawn before the state it causes).
const (
	maxHold    = 250 * time.Millisecond
	maxHoldFew = time.Second
)

func (w *Watcher) holdFor() time.Duration {
	w.jobMu.Lock()
	queued := len(w.jobQ)
	w.jobMu.Unlock()
	if queued > 0 {
		return maxHold
	}
	return maxHoldFew
}

// notify records a change: once the current messages have run, waiters
// are checked and Changed's channel is closed.
func (w *Watcher) notify() { w.dirty = true }

// publishLocked wakes whoever waits for a change: the waiters whose
// condition now holds, and Changed's channel.
func (w *Watcher) publishLocked() {
	// A waiter's condition may change the state (a hook starts, a stop
	// goes on): check again until nothing changes.
	for range 4 {
		keep := w.waiters[:0]
		for _, wt := range w.waiters {
			if wt.cond() {
				if wt.done != nil {
					close(wt.done)
				}
				continue
			}
			keep = append(keep, wt)
		}
		clear(w.waiters[len(keep):])
		w.waiters = keep
		if !w.dirty {
			break
		}
		w.dirty = false
	}
	w.chMu.Lock()
	close(w.changed)
	w.changed = make(chan struct{})
	w.chMu.Unlock()
}

// waiter is a condition checked on the owner after every change; cond
// records its result before returning true.
type waiter struct {
	cond func() bool
	done chan struct{} // closed once cond held (nil: nobody waits)
}

// addWaiterLocked registers cond, which is checked now and after every
// change until it returns true.
func (w *Watcher) addWaiterLocked(cond func() bool) *waiter {
	wt := &waiter{cond: cond, done: make(chan struct{})}
	if cond() {
		close(wt.done)
		return wt
	}
	w.waiters = append(w.waiters, wt)
	return wt
}

// onceLocked runs f on the owner the first time cond holds.
func (w *Watcher) onceLocked(cond func() bool, f func()) {
	wt := &waiter{cond: func() bool {
		if cond() {
			f()
			return true
		}
		return false
	}}
	if !wt.cond() {
		w.waiters = append(w.waiters, wt)
	}
}

// await blocks until wt's condition held, ctx ended (the waiter is
// dropped) or the watcher closed.
func (w *Watcher) await(ctx context.Context, wt *waiter) error {
	select {
	case <-wt.done:
		return nil
	case <-ctx.Done():
		w.post(func() {
			for i, x := range w.waiters {
				if x == wt {
					w.waiters = append(w.waiters[:i], w.waiters[i+1:]...)
					break
				}
			}
		})
		return ctx.Err()
	case <-w.o.done:
		select {
		case <-wt.done:
			return nil
		default:
			return ErrClosed
		}
	}
}

// Close ends the watcher: its timers, checks, hooks and pending spawns
// are cancelled and its goroutines have ended when Close returns. It
// does not stop the processes (Stop does); their ends are no longer
// handled. Every command after Close returns ErrClosed or the last
// state.
func (w *Watcher) Close() {
	w.o.inMu.Lock()
	first := !w.o.closed
	w.o.closed = true
	w.o.inMu.Unlock()
	if first {
		w.o.cancel()
		close(w.o.quit)
	}
	<-w.o.done
	w.o.wg.Wait()
}

// shutdownLocked is the owner's last act: everything it armed is
// disarmed, and waiters are woken (they see ErrClosed).
func (w *Watcher) shutdownLocked() {
	w.final.Store(ptr(w.statusLocked()))
	w.stopTimer(&w.flapT)
	w.stopTimer(&w.upT)
	w.stopTimer(&w.holdT)
	for _, s := range w.slots {
		w.stopTimer(&s.timer)
		w.removeCell(s.spare)
		s.spare = nil
	}
	for _, p := range w.liveLocked() {
		w.stopTimer(&p.killT)
		w.stopTimer(&p.recheckT)
		w.stopTimer(&p.ageT)
		if p.cellWatch != nil {
			p.cellWatch()
			p.cellWatch = nil
		}
		if p.kit != nil || p.notify != nil {
			w.endReadyLocked(p)
		}
	}
	if w.orphanSub != nil {
		w.orphanSub()
		w.orphanSub = nil
	}
	w.waiters = nil
	w.chMu.Lock()
	close(w.changed)
	w.changed = make(chan struct{})
	w.chMu.Unlock()
}

func ptr[T any](v T) *T { return &v }
