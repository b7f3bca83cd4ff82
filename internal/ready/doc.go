// Package ready implements circled's readiness and liveness checks
// (issue 15: ready.*, health.*, watchdog) for one process at a time.
//
// It is a leaf: it imports only the standard library and golang.org/x/sys,
// so the watcher may import it. It never starts or waits for a process
// itself: an exec check runs its command through a StartFunc supplied by
// the caller, which on Unix routes it through circled's single reaper.
//
//   - Check describes one check: TCP, HTTP, Exec, Log or NotifyReady.
//   - StartProber runs the readiness checks of one starting process. It
//     reports exactly once, Ready or failed, then nothing of it is left
//     running (no timer, no goroutine). Log and notify checks are event
//     driven; tcp/http/exec are paced by Options.Interval.
//   - StartHealth runs liveness checks every Interval after the process is
//     ready, and reports each change of its state (unknown, healthy,
//     unhealthy after Retries failures in a row).
//   - ListenNotify (Unix) opens a per-process NOTIFY_SOCKET speaking the
//     sd_notify(3) protocol (READY=1, STATUS=, RELOADING=1, STOPPING=1,
//     WATCHDOG=1, WATCHDOG_USEC=, MAINPID=, EXTEND_TIMEOUT_USEC=) with an
//     optional watchdog.
//
// Substituting $(circle.wid) is the caller's job: every string given to
// this package is final.
package ready
