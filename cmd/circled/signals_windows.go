package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/circle-supervisor/circle/supervisor"
)

func notifySignals() chan os.Signal {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, os.Interrupt)
	return ch
}

func handleSignals(ch chan os.Signal, sup *supervisor.Supervisor, stop context.CancelFunc, log *slog.Logger) {
	for range ch {
		log.Info("interrupt received, stopping every watcher")
		stop()
	}
}

func setUmask(int) {}

func afterStop(*slog.Logger, time.Duration, *supervisor.Reaper) {}
