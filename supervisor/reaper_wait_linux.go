package supervisor

import (
	"context"
	"runtime"

	"golang.org/x/sys/unix"
)

// waitExits starts the goroutine that sweeps whenever a child can be
// reaped, and returns true.
//
// It blocks in waitid(P_ALL, WEXITED|WNOWAIT), which returns as soon as
// any child has exited without reaping it, and then sweeps (wait4, as
// everywhere) on its own goroutine. A SIGCHLD takes the signal handler,
// os/signal's goroutine and the reaper's before wait4 runs: on a busy
// 2-core machine that was 0.2-0.5 ms of the restart latency. The thread
// blocked in waitid costs no CPU and no wake-up while no child exits.
//
// With no child at all (ECHILD) it waits for the next Start, a SIGCHLD
// (a process that re-parented to circled: PID 1 adopts what `docker
// exec` left), or ctx. When ctx ends it returns at its next wake-up; Run
// does not wait for it.
func (r *Reaper) waitExits(ctx context.Context) bool {
	go func() {
		for ctx.Err() == nil {
			var info unix.Siginfo
			err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOWAIT, nil)
			switch err {
			case nil:
				if !r.sweep(true) {
					return // Run has returned
				}
				// The exits just posted made owners runnable on this
				// goroutine's P; waitid would block with that P held
				// until another thread woke up and stole them. Yield
				// first: they run now, on this thread.
				runtime.Gosched()
			case unix.EINTR:
			case unix.ECHILD:
				select {
				case <-r.started:
				case <-r.sigch:
					if !r.sweep(true) {
						return
					}
				case <-ctx.Done():
				}
			default:
				// Not expected (a seccomp filter?): reap on SIGCHLD
				// from now on, as other systems do.
				r.log.Warn("waitid failed; reaping on SIGCHLD instead", "err", err)
				for {
					if !r.sweep(true) {
						return
					}
					select {
					case <-r.sigch:
					case <-ctx.Done():
						return
					}
				}
			}
		}
	}()
	return true
}
