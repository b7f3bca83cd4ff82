package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"time"

	"github.com/circle-supervisor/circle/supervisor"
)

// stopCh is the channel of the running serve's signal handler; the
// service's Stop handler feeds it, so a service stop and Ctrl-C take the
// same path.
var stopCh struct {
	sync.Mutex
	ch chan os.Signal
}

func notifySignals() chan os.Signal {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, os.Interrupt)
	stopCh.Lock()
	stopCh.ch = ch
	stopCh.Unlock()
	return ch
}

// requestStop asks the running serve to stop every watcher and return;
// false when serve has not subscribed yet.
func requestStop() bool {
	stopCh.Lock()
	defer stopCh.Unlock()
	if stopCh.ch == nil {
		return false
	}
	select {
	case stopCh.ch <- os.Interrupt:
	default: // a stop is already queued
	}
	return true
}

func handleSignals(ch chan os.Signal, sup *supervisor.Supervisor, stop context.CancelFunc, log *slog.Logger) {
	for range ch {
		log.Info("interrupt received, stopping every watcher")
		stop()
	}
}

func setUmask(int) {}

func afterStop(*slog.Logger, time.Duration, *supervisor.Reaper) {}
