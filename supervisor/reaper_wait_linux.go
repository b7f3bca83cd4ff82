package supervisor

import (
	"context"
	"runtime"
	"unsafe"

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
				// Reap the child waitid reported, not every child that
				// has exited (a sweep): wait4(-1) walks all of circled's
				// children, and a sweep calls it once more to learn
				// there is nothing left. Any other zombie (another exit,
				// an orphan re-parented to circled) makes the next
				// waitid return at once.
				reaped := true
				if pid := siginfoPid(&info); pid > 0 {
					reaped = r.reap(true, pid)
				} else {
					reaped = r.sweep(true)
				}
				if !reaped {
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

// siginfoPid is si_pid of a waitid result: the first field of the
// SIGCHLD union, which follows si_signo, si_errno and si_code aligned to
// a pointer (offset 16 on 64-bit Linux, 12 on 32-bit). x/sys/unix's
// Siginfo leaves the union opaque.
func siginfoPid(info *unix.Siginfo) int {
	const off = (12 + unsafe.Sizeof(uintptr(0)) - 1) &^ (unsafe.Sizeof(uintptr(0)) - 1)
	return int(*(*int32)(unsafe.Add(unsafe.Pointer(info), off)))
}
