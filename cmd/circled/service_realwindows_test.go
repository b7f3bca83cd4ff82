//go:build windows && realwindows

package main

// Real Windows only (go test -tags realwindows, from an elevated prompt):
// Wine 8 can neither set nor read service recovery actions, and
// svc.IsWindowsService() / the elevation check have no meaning there.

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/windows/svc/mgr"
)

func TestRealWindowsInstallSetsRecoveryActions(t *testing.T) {
	if !isElevated() {
		t.Skip("needs an elevated prompt")
	}
	name := "circled-recovery-test"
	cfg := filepath.Join(t.TempDir(), "circled.ini")
	os.WriteFile(cfg, []byte("[circled]\n"), 0o644)
	args, err := serviceArgs(cfg, map[string]string{"service-name": name})
	if err != nil {
		t.Fatal(err)
	}
	s, err := newService(name, args, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Install(); err != nil {
		t.Fatal(err)
	}
	defer s.Uninstall()
	if err := afterInstall(name); err != nil {
		t.Fatal(err)
	}
	m, err := mgr.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Disconnect()
	ms, err := m.OpenService(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	acts, err := ms.RecoveryActions()
	if err != nil {
		t.Fatal(err)
	}
	if len(acts) == 0 || acts[0].Type != mgr.ServiceRestart {
		t.Fatalf("recovery actions = %+v, want restart", acts)
	}
	nonCrash, err := ms.RecoveryActionsOnNonCrashFailures()
	if err != nil || !nonCrash {
		t.Fatalf("non-crash failures = %v, %v", nonCrash, err)
	}
	c, err := ms.Config()
	if err != nil {
		t.Fatal(err)
	}
	if c.StartType != mgr.StartAutomatic || !c.DelayedAutoStart {
		t.Fatalf("start type %d delayed %v", c.StartType, c.DelayedAutoStart)
	}
	if got := readInstallerSID(name); got == "" {
		t.Fatal("installing user not recorded")
	}
}
