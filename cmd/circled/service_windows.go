package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/supervisor/config"
	"github.com/circle-supervisor/circle/supervisor/logs"
	"github.com/kardianos/service"
	"github.com/spf13/cobra"
	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"
)

// installerSIDValue is the registry value (under the service's Parameters
// key) that names the user who installed the service: the control pipe
// grants that user access besides SYSTEM and Administrators.
const installerSIDValue = "InstallerSID"

// runAsService runs serve under the service control manager. It does not
// use kardianos's Run: that decides with svc.IsWindowsService(), which is
// false under Wine; --service says it explicitly.
func runAsService(cmd *cobra.Command, f rootFlags) error {
	name := serviceName(svcFlags.name, f.config)
	os.MkdirAll(defaultLogsDir(), 0o755)
	// A service has no stderr: without a [circled] logfile, log under
	// %ProgramData%\circled\logs.
	if d, err := config.ReadDaemon(f.config); err != nil || d.Logfile == "" {
		lw := &logs.LockedWriter{Mu: new(sync.Mutex), W: logs.NewRotating(filepath.Join(defaultLogsDir(), name+".log"), 100<<20, 5, 0, false)}
		cmd.SetOut(lw)
		cmd.SetErr(lw)
	}
	if sid := readInstallerSID(name); sid != "" {
		ctl.AllowPipeUser(sid)
	}
	h := &serviceHandler{cmd: cmd, f: f, name: name}
	if err := svc.Run(name, h); err != nil {
		return &exitError{code: 1, err: fmt.Errorf("--service: not started by the service control manager (use circled service start %s): %w", name, err)}
	}
	return nil
}

// serviceHandler is circled as a Windows service.
type serviceHandler struct {
	cmd  *cobra.Command
	f    rootFlags
	name string
}

// stopWait bounds the wait for serve after a stop request: the watchers'
// graceful stops plus a margin. Past it Execute returns anyway; the
// process then exits and the kernel closes every Job Object, which kills
// what is left (kardianos#337: nothing may wait forever).
func (h *serviceHandler) stopWait() time.Duration {
	g := 30 * time.Second
	if cfg, err := config.Load(h.f.config, config.Options{Environ: os.Environ()}); err == nil {
		g = cfg.Daemon.GracefulTimeout
		for _, w := range cfg.Watchers {
			if w.GracefulTimeout > g {
				g = w.GracefulTimeout
			}
		}
	}
	return g + 15*time.Second
}

// Execute implements svc.Handler: Start pending until serve reports ready
// (or its error, written for the --daemon launcher), Running, then a stop
// request feeds serve's signal channel.
func (h *serviceHandler) Execute(args []string, req <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	status <- svc.Status{State: svc.StartPending, WaitHint: 60000}
	errFile := startErrorFile(h.name)
	os.Remove(errFile)

	// serve reports readiness on the handle named by CIRCLED_READY_FD, the
	// same protocol as the Unix --daemon launcher, here within one process.
	var rd, wr windows.Handle
	if err := windows.CreatePipe(&rd, &wr, nil, 0); err != nil {
		os.WriteFile(errFile, []byte("ready pipe: "+err.Error()), 0o644)
		return true, 1
	}
	readyR := os.NewFile(uintptr(rd), "ready")
	os.Setenv(readyFDEnv, strconv.FormatUint(uint64(wr), 10))
	ready := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(readyR, 1<<20))
		readyR.Close()
		ready <- strings.TrimSpace(string(b))
	}()
	done := make(chan error, 1)
	go func() { done <- serve(h.cmd, h.f) }()

	select {
	case msg := <-ready:
		if msg != "ok" {
			err := <-done
			if msg == "" && err != nil {
				msg = err.Error()
			}
			os.WriteFile(errFile, []byte(msg), 0o644)
			return true, 1
		}
	case err := <-done:
		if err == nil {
			return false, 0
		}
		os.WriteFile(errFile, []byte(err.Error()), 0o644)
		return true, uint32(exitCodeOf(err))
	}

	status <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
	for {
		select {
		case err := <-done:
			// circlectl quit (0) or a critical watcher (its code): a
			// non-zero code is a failure, so recovery restarts the service.
			if code := exitCodeOf(err); code != 0 {
				return true, uint32(code)
			}
			return false, 0
		case c := <-req:
			switch c.Cmd {
			case svc.Interrogate:
				status <- c.CurrentStatus
			case svc.Stop, svc.Shutdown:
				wait := h.stopWait()
				status <- svc.Status{State: svc.StopPending, WaitHint: uint32(wait / time.Millisecond)}
				requestStop()
				select {
				case err := <-done:
					if code := exitCodeOf(err); code != 0 {
						return true, uint32(code)
					}
				case <-time.After(wait):
				}
				return false, 0
			}
		}
	}
}

// exitCodeOf maps serve's result to circled's exit code.
func exitCodeOf(err error) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// stopService stops the service and waits, at most timeout, until it is
// stopped. kardianos's Stop would wait forever (kardianos#337).
func stopService(_ service.Service, name string, timeout time.Duration) error {
	m, err := mgr.Connect()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	s, err := m.OpenService(name)
	if err != nil {
		return err
	}
	defer s.Close()
	return stopAndWait(s, timeout)
}

func stopAndWait(s *mgr.Service, timeout time.Duration) error {
	st, err := s.Query()
	if err != nil {
		return err
	}
	if st.State != svc.Stopped {
		if st, err = s.Control(svc.Stop); err != nil && !errors.Is(err, windows.ERROR_SERVICE_NOT_ACTIVE) {
			return err
		}
	}
	deadline := time.Now().Add(timeout)
	for st.State != svc.Stopped {
		if time.Now().After(deadline) {
			return fmt.Errorf("still %s after %s", stateName(st.State), timeout)
		}
		time.Sleep(100 * time.Millisecond)
		if st, err = s.Query(); err != nil {
			return err
		}
	}
	return nil
}

func stateName(s svc.State) string {
	switch s {
	case svc.Stopped:
		return "stopped"
	case svc.StartPending:
		return "starting"
	case svc.StopPending:
		return "stopping"
	case svc.Running:
		return "running"
	}
	return "in state " + strconv.Itoa(int(s))
}

// serviceOptions drops the recovery action under Wine: Wine 8 cannot set
// one, and kardianos would fail the install after creating the service.
func serviceOptions(o service.KeyValue) {
	if isWine() {
		delete(o, "OnFailure")
		o["DelayedAutoStart"] = false // nor ChangeServiceConfig2 DELAYED_AUTO_START
	}
}

// afterInstall records the installing user for the control pipe's
// security descriptor, and on real Windows makes a non-zero exit (a
// critical watcher) count as a failure for the recovery action too.
func afterInstall(name string) error {
	sid, err := ctl.CurrentUserSID()
	if err != nil {
		return err
	}
	k, _, err := registry.CreateKey(registry.LOCAL_MACHINE, `SYSTEM\CurrentControlSet\Services\`+name+`\Parameters`, registry.SET_VALUE)
	if err != nil {
		return fmt.Errorf("record installing user: %w", err)
	}
	defer k.Close()
	if err := k.SetStringValue(installerSIDValue, sid); err != nil {
		return fmt.Errorf("record installing user: %w", err)
	}
	if isWine() {
		return nil
	}
	m, err := mgr.Connect()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	s, err := m.OpenService(name)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.SetRecoveryActionsOnNonCrashFailures(true)
}

func readInstallerSID(name string) string {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, `SYSTEM\CurrentControlSet\Services\`+name+`\Parameters`, registry.QUERY_VALUE)
	if err != nil {
		return ""
	}
	defer k.Close()
	v, _, err := k.GetStringValue(installerSIDValue)
	if err != nil {
		return ""
	}
	return v
}

// isWine reports whether we run under Wine (ntdll exports
// wine_get_version there).
func isWine() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}

// isElevated reports whether the process token is elevated (or the
// process runs as SYSTEM).
func isElevated() bool {
	return windows.GetCurrentProcessToken().IsElevated()
}

// serviceDefined: the Windows backend reports a missing service as
// service.ErrNotInstalled itself.
func serviceDefined(string) bool { return true }
