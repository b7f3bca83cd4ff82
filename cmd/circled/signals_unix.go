//go:build unix

package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/circle-supervisor/circle/supervisor"
	"golang.org/x/sys/unix"
)

// notifySignals subscribes to an explicit list only: a bare Notify would
// also deliver the runtime's SIGURG. Signals circled wants to swallow are
// caught and dropped, never ignored, so children keep default
// dispositions.
func notifySignals() chan os.Signal {
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, handled...)
	// A fault signal sent by another process (kill -ABRT, docker kill -s
	// SEGV) is delivered here instead of crashing circled; a genuine fault
	// in circled (si_code not SI_USER) still crashes it loudly: the Go
	// runtime only relays the ones sent with kill(2).
	signal.Notify(ch, faultSignals...)
	dropIgnored()
	resetRealtimeIgnored()
	return ch
}

// handled are the signals circled acts on (SIGCHLD belongs to the reaper).
var handled = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGPIPE}

// faultSignals would crash circled with a traceback (as PID 1 the kernel
// then kills every child without a graceful stop) when another process
// sends one; circled forwards them to its process groups instead.
var faultSignals = append([]os.Signal{syscall.SIGABRT, syscall.SIGILL, syscall.SIGTRAP,
	syscall.SIGBUS, syscall.SIGFPE, syscall.SIGSEGV, syscall.SIGSYS}, osFaultSignals...)

// dropIgnored catches and drops every other signal circled inherited as
// ignored (nohup, a shell's background job, docker's init...). An ignored
// disposition survives exec, a caught one does not: this way children
// start with default dispositions.
func dropIgnored() {
	drop := make(chan os.Signal, 8)
	n := 0
	for s := syscall.Signal(1); s < 32; s++ {
		switch s {
		case syscall.SIGKILL, syscall.SIGSTOP, syscall.SIGCHLD, syscall.SIGURG:
			continue
		}
		if slices.Contains(handled, os.Signal(s)) || slices.Contains(faultSignals, os.Signal(s)) || !(signal.Ignored(s) || inheritedIgnored(s)) {
			continue
		}
		signal.Notify(drop, s)
		n++
	}
	if n > 0 {
		go func() {
			for range drop {
			}
		}()
	}
}

func handleSignals(ch chan os.Signal, sup *supervisor.Supervisor, stop context.CancelFunc, log *slog.Logger) {
	for sig := range ch {
		switch sig {
		case syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT:
			log.Info("signal received, stopping every watcher", "signal", sig.String())
			stop()
		case syscall.SIGHUP:
			log.Info("SIGHUP: reloading config")
			sup.ReloadConfigAsync() // refused once shutdown began; shutdown waits for it
		case syscall.SIGUSR1:
			if err := sup.Reopen(); err != nil {
				log.Error("SIGUSR1: reopening log files", "err", err)
			}
		case syscall.SIGUSR2:
			sup.SignalAll("USR2")
		default:
			if s, ok := sig.(syscall.Signal); ok && slices.Contains(faultSignals, sig) {
				// Forwarded like USR2, as tini and dumb-init do: the
				// sender meant the children.
				name := unix.SignalName(s)
				log.Warn("fault signal sent by another process: forwarding it to every process group", "signal", name)
				sup.SignalAll(strings.TrimPrefix(name, "SIG"))
			}
		case syscall.SIGWINCH:
			sup.SignalAll("WINCH")
		}
	}
}

func setUmask(m int) { unix.Umask(m) }

// afterStop runs once every watcher has stopped, while the reaper still
// runs. As PID 1 it clears out every remaining process (escaped setsid
// groups included); as a subreaper, every descendant that re-parented to
// us: SIGTERM, up to grace for them to go, then SIGKILL. It waits on
// reaper events, not on a timer loop.
func afterStop(log *slog.Logger, grace time.Duration, reaper *supervisor.Reaper) {
	if os.Getpid() == 1 {
		for _, pid := range leftChildren() {
			log.Warn("left over after its watcher stopped (escaped its process group); stopping it", "process", describeProc(pid))
		}
		if unix.Kill(-1, unix.SIGTERM) == unix.ESRCH {
			return
		}
		if waitGone(reaper, grace, pid1Left) {
			return
		}
		log.Warn("processes left after the grace period; killing them", "grace", grace)
		unix.Kill(-1, unix.SIGKILL)
		if !waitGone(reaper, 5*time.Second, pid1Left) {
			log.Error("processes survived SIGKILL (uninterruptible sleep?)")
		}
		return
	}
	kids := leftChildren()
	if len(kids) == 0 {
		return
	}
	for _, pid := range kids {
		log.Warn("left over after its watcher stopped (escaped its process group); stopping it", "process", describeProc(pid))
	}
	signalAll := func(sig unix.Signal) {
		for _, pid := range leftChildren() {
			unix.Kill(pid, sig)
		}
	}
	signalAll(unix.SIGTERM)
	if waitGone(reaper, grace, func() bool { return len(leftChildren()) > 0 }) {
		return
	}
	log.Warn("descendants left after the grace period; killing them", "grace", grace)
	deadline := time.Now().Add(5 * time.Second)
	for len(leftChildren()) > 0 && time.Now().Before(deadline) {
		// Killing one may re-parent its own children to us: repeat.
		signalAll(unix.SIGKILL)
		waitGone(reaper, 100*time.Millisecond, func() bool { return len(leftChildren()) > 0 })
	}
}

func pid1Left() bool { return unix.Kill(-1, 0) != unix.ESRCH }

// waitGone waits until left() is false, re-checking after each reap, or
// until d passes; it reports whether nothing is left.
func waitGone(reaper *supervisor.Reaper, d time.Duration, left func() bool) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		if !left() {
			return true
		}
		select {
		case <-reaper.Reaped():
		case <-deadline.C:
			return !left()
		}
	}
}
