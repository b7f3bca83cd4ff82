package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/supervisor/config"
	"github.com/spf13/cobra"
	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"
)

// daemonize on Windows installs the circled service when it is missing
// (the same arguments minus --daemon, plus --service), starts it, and
// returns once it reports Running (exit 0), or with the service's own
// error (exit 1).
func daemonize(cmd *cobra.Command, f rootFlags) error {
	name := serviceName(svcFlags.name, f.config)
	fail := func(err error) error { return &exitError{code: 1, err: err} }
	d, err := config.ReadDaemon(f.config)
	if err != nil {
		return fail(err)
	}
	if !isElevated() {
		return fail(fmt.Errorf("--daemon installs and starts the %s service: run from an elevated prompt (Run as administrator)", name))
	}
	exe, err := os.Executable()
	if err != nil {
		return fail(err)
	}
	args, err := serviceArgs(f.config, daemonFlagsForService(cmd))
	if err != nil {
		return fail(err)
	}
	want := commandLine(exe, args)

	m, err := mgr.Connect()
	if err != nil {
		return fail(fmt.Errorf("connect to the service control manager: %w", err))
	}
	defer m.Disconnect()
	s, err := m.OpenService(name)
	if err != nil {
		svcObj, err := newService(name, args, false)
		if err == nil {
			err = svcObj.Install()
		}
		if err == nil {
			err = afterInstall(name)
		}
		if err != nil {
			return fail(fmt.Errorf("install service %s: %w", name, err))
		}
		fmt.Fprintf(cmd.OutOrStdout(), "service %s installed: %s\n", name, want)
		if s, err = m.OpenService(name); err != nil {
			return fail(err)
		}
	} else {
		got, err := binaryPathName(s)
		if err != nil {
			s.Close()
			return fail(fmt.Errorf("service %s: %w", name, err))
		}
		if !strings.EqualFold(strings.TrimSpace(got), want) {
			s.Close()
			return fail(fmt.Errorf("service %s is installed with other arguments:\n  installed: %s\n  wanted:    %s\nto reinstall: circled service stop --service-name %s, circled service uninstall --service-name %s, then run this command again (or use --service-name NAME for a second service)",
				name, got, want, name, name))
		}
	}
	defer s.Close()

	st, err := s.Query()
	if err != nil {
		return fail(err)
	}
	if st.State == svc.Running {
		fmt.Fprintf(cmd.OutOrStdout(), "service %s is already running (pid %d)\n", name, st.ProcessId)
		return nil
	}
	errFile := startErrorFile(name)
	os.Remove(errFile)
	if err := s.Start(); err != nil && !errors.Is(err, windows.ERROR_SERVICE_ALREADY_RUNNING) {
		return fail(fmt.Errorf("start service %s: %w", name, err))
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		st, err = s.Query()
		if err != nil {
			return fail(err)
		}
		if st.State == svc.Running {
			break
		}
		if st.State == svc.Stopped {
			return fail(fmt.Errorf("service %s failed to start: %s", name, startFailure(errFile, st)))
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("service %s is still %s after 90s", name, stateName(st.State)))
		}
		time.Sleep(100 * time.Millisecond)
	}
	socket := ctl.ResolveSocket(f.socket, d.Socket)
	fmt.Fprintf(cmd.OutOrStdout(), "circled service %s running (pid %d, socket %s)\n", name, st.ProcessId, socket)
	return nil
}

// binaryPathName is the service's command line. mgr.Service.Config would
// also query the delayed-start flag, which Wine 8 cannot answer.
func binaryPathName(s *mgr.Service) (string, error) {
	var need uint32
	err := windows.QueryServiceConfig(s.Handle, nil, 0, &need)
	if err != nil && !errors.Is(err, windows.ERROR_INSUFFICIENT_BUFFER) {
		return "", err
	}
	buf := make([]byte, need)
	c := (*windows.QUERY_SERVICE_CONFIG)(unsafe.Pointer(&buf[0]))
	if err := windows.QueryServiceConfig(s.Handle, c, need, &need); err != nil {
		return "", err
	}
	return windows.UTF16PtrToString(c.BinaryPathName), nil
}

// startFailure is the service's own error: what it wrote to its start
// error file, else its exit code.
func startFailure(errFile string, st svc.Status) string {
	if b, err := os.ReadFile(errFile); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b))
	}
	if st.Win32ExitCode == uint32(windows.ERROR_SERVICE_SPECIFIC_ERROR) {
		return fmt.Sprintf("exit code %d (see the log in %s)", st.ServiceSpecificExitCode, defaultLogsDir())
	}
	if st.Win32ExitCode != 0 {
		return syscall.Errno(st.Win32ExitCode).Error()
	}
	return "it stopped (see " + defaultLogsDir() + ")"
}

// commandLine is the service's BinaryPathName as mgr.CreateService
// writes it.
func commandLine(exe string, args []string) string {
	s := syscall.EscapeArg(exe)
	for _, a := range args {
		s += " " + syscall.EscapeArg(a)
	}
	return s
}
