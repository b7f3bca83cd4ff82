//go:build unix

package supervisor

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/circle-supervisor/circle/watcher"
	"golang.org/x/sys/unix"
)

// Reaper starts processes and reaps every child of circled.
type Reaper struct {
	log   *slog.Logger
	sigch chan os.Signal

	reapedCh chan struct{} // gets a token after each sweep that reaped something
	started  chan struct{} // gets a token after each Start (waitExits' wake-up when it had no child)

	mu      sync.Mutex
	procs   map[int]reaperEntry
	orphans int // unregistered children reaped (the tests read it)
	// starting counts Starts between cmd.Start and registering the pid.
	// While any is in flight, a reaped pid nobody registered may be one
	// of theirs (a child that died at once): its status is parked in
	// early, and claimed by its Start or, once no Start is in flight,
	// counted as an orphan's.
	starting int
	early    map[int]watcher.ExitStatus
	// waiterOff: Run has returned; waitExits' goroutine (which may still
	// be blocked in waitid) must not sweep any more. waiterSweeps counts
	// its sweeps in progress, which Run waits for.
	waiterOff    bool
	waiterSweeps sync.WaitGroup
	// frozen: a live upgrade hands the children over (upgrade_unix.go):
	// nothing is reaped, exits stay zombies for the next circled, until
	// thaw is closed. sweeps counts the sweeps in progress.
	frozen bool
	thaw   chan struct{}
	sweeps sync.WaitGroup

	// complete: every orphan re-parents to circled (PID 1 or a child
	// subreaper), so NotifyOrphans sees every death in a process group
	// whose leader circled started.
	complete bool
	subMu    sync.Mutex
	subs     map[int]func()
	nextSub  int
}

type reaperEntry struct {
	onExit func(watcher.ExitStatus)
}

// NewReaper makes a reaper and subscribes to SIGCHLD at once, so no
// child's death between now and Run is missed. On Linux, when circled is
// not PID 1, it also makes circled a child subreaper.
func NewReaper(log *slog.Logger) *Reaper {
	r := &Reaper{log: log, sigch: make(chan os.Signal, 1), procs: map[int]reaperEntry{}, early: map[int]watcher.ExitStatus{}, reapedCh: make(chan struct{}, 1), started: make(chan struct{}, 1), subs: map[int]func(){}}
	signal.Notify(r.sigch, syscall.SIGCHLD)
	r.complete = true
	if os.Getpid() != 1 {
		if err := setSubreaper(); err != nil {
			r.complete = false
			log.Debug("cannot become a child subreaper", "err", err)
		}
	}
	return r
}

// NotifyOrphans implements watcher.OrphanEvents: f is called after each
// sweep that reaped a process no Start registered (the rest of a process
// group re-parents to circled when its leader is gone), from the
// reaper's goroutine with no lock held, until cancel is called. ok is
// false when orphans do not re-parent to circled (not PID 1 and no
// subreaper): the caller must not rely on f alone.
func (r *Reaper) NotifyOrphans(f func()) (cancel func(), ok bool) {
	r.subMu.Lock()
	defer r.subMu.Unlock()
	id := r.nextSub
	r.nextSub++
	r.subs[id] = f
	return func() {
		r.subMu.Lock()
		delete(r.subs, id)
		r.subMu.Unlock()
	}, r.complete
}

// notifyOrphans calls every NotifyOrphans subscriber.
func (r *Reaper) notifyOrphans() {
	r.subMu.Lock()
	if len(r.subs) == 0 {
		r.subMu.Unlock()
		return
	}
	fs := make([]func(), 0, len(r.subs))
	for _, f := range r.subs {
		fs = append(fs, f)
	}
	r.subMu.Unlock()
	for _, f := range fs {
		f()
	}
}

// Start implements watcher.Spawner. Starts run in parallel: the
// reaper's lock is not held across cmd.Start (which waits until the
// child has exec'd), only around the bookkeeping.
func (r *Reaper) Start(cmd *exec.Cmd, onExit func(watcher.ExitStatus)) (int, error) {
	r.mu.Lock()
	r.starting++
	r.mu.Unlock()
	began := time.Now()
	err := cmd.Start()
	if afterStartHook != nil && err == nil {
		afterStartHook(cmd.Process.Pid)
	}
	var pid int
	if err == nil {
		// Nothing uses the *os.Process but its pid: this reaper waits
		// with wait4, and processes are signalled by pid. Release closes
		// the pidfd os.StartProcess opened (Linux), so circled does not
		// keep one descriptor per child: every later fork copies
		// circled's descriptor table and every exec closes it again, at
		// a cost that grows with the number of descriptors (2000 pidfds
		// were a third of them with 2000 children).
		pid = cmd.Process.Pid
		cmd.Process.Release()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.starting--
	if err != nil {
		r.settleEarlyLocked()
		return 0, err
	}
	select {
	case r.started <- struct{}{}:
	default:
	}
	// A status reaped before this start began is an older process's
	// whose pid the kernel has since reused: not ours.
	if st, ok := r.early[pid]; ok && !st.Time.Before(began) {
		// It died, and was reaped, before we could register it. Its
		// caller records the start first (it holds its own lock now).
		delete(r.early, pid)
		go onExit(st)
	} else {
		r.procs[pid] = reaperEntry{onExit: onExit}
	}
	r.settleEarlyLocked()
	return pid, nil
}

// afterStartHook, set only by tests, runs between a child's start and
// its registration: the window where the reaper may reap it first.
var afterStartHook func(pid int)

// settleEarlyLocked counts the parked statuses as orphans' once no Start
// is in flight (none of them can be claimed any more).
func (r *Reaper) settleEarlyLocked() {
	if r.starting > 0 || len(r.early) == 0 {
		return
	}
	for pid, st := range r.early {
		r.orphanLocked(pid, st)
		delete(r.early, pid)
	}
}

// orphanLocked counts the reaped status of a process nobody started.
func (r *Reaper) orphanLocked(pid int, st watcher.ExitStatus) {
	r.orphans++
	r.log.Debug("reaped orphan", "pid", pid, "code", st.Code, "signal", st.Signal)
}

// Run sweeps on every SIGCHLD until ctx ends. No timer backs it up, so
// an idle daemon never wakes: SIGCHLDs arriving during a sweep leave a
// token in the buffered channel, and each sweep loops until wait4 has
// nothing left, so no exit is missed.
//
// On Linux a goroutine blocked in waitid(WNOWAIT) sweeps instead, the
// moment a child can be reaped (see waitExits); Run then only waits for
// ctx and sweeps a last time.
func (r *Reaper) Run(ctx context.Context) error {
	defer signal.Stop(r.sigch)
	if r.waitExits(ctx) {
		<-ctx.Done()
		r.Sweep()
		r.mu.Lock()
		r.waiterOff = true
		r.mu.Unlock()
		r.waiterSweeps.Wait()
		return nil
	}
	for {
		r.Sweep()
		select {
		case <-ctx.Done():
			r.Sweep()
			return nil
		case <-r.sigch:
		}
	}
}

type reaped struct {
	e  reaperEntry
	st watcher.ExitStatus
}

// Sweep reaps every child that has exited.
func (r *Reaper) Sweep() { r.sweep(false) }

// sweep is Sweep; from waitExits' goroutine (waiter) it reaps nothing
// once Run has returned, and reports false then.
func (r *Reaper) sweep(waiter bool) bool { return r.reap(waiter, -1) }

// reap is sweep when target is -1. With a pid, it reaps that child
// only, if it has exited (wait4(pid) looks the child up; wait4(-1)
// walks every child of circled, 2000 of them in a big config, and one
// more time to learn there is nothing left). waitExits reaps the pid
// waitid reported and goes back to waitid, which returns at once while
// any other child can be reaped: nothing waits for a sweep.
func (r *Reaper) reap(waiter bool, target int) bool {
	var done []reaped
	any, orphan := false, false
	r.mu.Lock()
	for r.frozen {
		thaw := r.thaw
		r.mu.Unlock()
		if !waiter {
			return true
		}
		<-thaw
		r.mu.Lock()
	}
	r.sweeps.Add(1)
	defer r.sweeps.Done()
	if waiter {
		if r.waiterOff {
			r.mu.Unlock()
			return false
		}
		r.waiterSweeps.Add(1)
		defer r.waiterSweeps.Done()
	}
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(target, &ws, wnohang, nil)
		if err == unix.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			break // with a target: not exited, or reaped by a Sweep meanwhile
		}
		any = true
		now := time.Now()
		st := watcher.ExitFromWaitStatus(syscall.WaitStatus(ws), now)
		if e, ok := r.procs[pid]; ok {
			delete(r.procs, pid)
			done = append(done, reaped{e, st})
		} else {
			orphan = true
			if r.starting > 0 {
				r.early[pid] = st
			} else {
				r.orphanLocked(pid, st)
			}
		}
		if target > 0 {
			break
		}
	}
	r.mu.Unlock()
	for _, d := range done {
		d.e.onExit(d.st)
	}
	if orphan {
		// After the exit callbacks: a group whose leader was reaped in
		// this sweep is re-checked once its watcher knows of the exit.
		r.notifyOrphans()
	}
	if any {
		select {
		case r.reapedCh <- struct{}{}:
		default:
		}
	}
	return true
}

// Reaped receives a token after a sweep reaped at least one child; a
// waiter re-checks its condition on each token, so none is lost.
func (r *Reaper) Reaped() <-chan struct{} { return r.reapedCh }
