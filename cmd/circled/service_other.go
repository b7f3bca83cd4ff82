//go:build !windows

package main

import (
	"time"

	"github.com/kardianos/service"
	"github.com/spf13/cobra"
)

// runAsService serves in the foreground: systemd and launchd supervise a
// plain process and stop it with SIGTERM, which serve already handles.
func runAsService(cmd *cobra.Command, f rootFlags) error {
	return serve(cmd, f)
}

// stopService is kardianos's stop: systemctl and launchctl bound it.
func stopService(s service.Service, _ string, _ time.Duration) error {
	return s.Stop()
}

func serviceOptions(service.KeyValue) {}

func afterInstall(string) error { return nil }

// defaultConfigPath is empty: -c is required on Unix.
func defaultConfigPath() string { return "" }
