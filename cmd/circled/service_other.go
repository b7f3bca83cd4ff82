//go:build !windows

package main

import (
	"os"
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

// serviceDefined tells whether any init system here has a definition for
// the service: kardianos's SysV backend reports a missing service as a
// bare "exit status 1" from service(8).
func serviceDefined(name string) bool {
	for _, p := range []string{
		"/etc/init.d/" + name,
		"/etc/systemd/system/" + name + ".service",
		"/lib/systemd/system/" + name + ".service",
		"/usr/lib/systemd/system/" + name + ".service",
		"/etc/init/" + name + ".conf",
		"/etc/rc.d/" + name,
		"/usr/local/etc/rc.d/" + name,
		"/Library/LaunchDaemons/" + name + ".plist",
	} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}
