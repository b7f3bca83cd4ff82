//go:build unix

package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
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
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP,
		syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGPIPE)
	return ch
}

func handleSignals(ch chan os.Signal, sup *supervisor.Supervisor, stop context.CancelFunc, log *slog.Logger) {
	for sig := range ch {
		switch sig {
		case syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT:
			log.Info("signal received, stopping every watcher", "signal", sig.String())
			stop()
		case syscall.SIGHUP:
			log.Info("SIGHUP: reloading config")
			go sup.ReloadConfig(context.Background())
		case syscall.SIGUSR1:
			log.Info("SIGUSR1: reopening log files")
		case syscall.SIGUSR2:
			sup.SignalAll("USR2")
		case syscall.SIGWINCH:
			sup.SignalAll("WINCH")
		}
	}
}

func setUmask(m int) { unix.Umask(m) }

// afterStop runs once every watcher has stopped, while the reaper still
// runs. As PID 1 it clears out every remaining process (escaped setsid
// groups included): SIGTERM, up to grace for them to go, then SIGKILL.
// It waits on reaper events, not on a timer loop.
func afterStop(log *slog.Logger, grace time.Duration, reaper *supervisor.Reaper) {
	if os.Getpid() != 1 {
		return
	}
	if unix.Kill(-1, unix.SIGTERM) == unix.ESRCH {
		return
	}
	if waitAllGone(reaper, grace) {
		return
	}
	log.Warn("processes left after the grace period; killing them", "grace", grace)
	unix.Kill(-1, unix.SIGKILL)
	if !waitAllGone(reaper, 5*time.Second) {
		log.Error("processes survived SIGKILL (uninterruptible sleep?)")
	}
}

// waitAllGone waits until no process but us is left, or d passes.
func waitAllGone(reaper *supervisor.Reaper, d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		if unix.Kill(-1, 0) == unix.ESRCH {
			return true
		}
		select {
		case <-reaper.Reaped():
		case <-deadline.C:
			return unix.Kill(-1, 0) == unix.ESRCH
		}
	}
}
