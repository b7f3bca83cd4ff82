package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"github.com/circle-supervisor/circle/supervisor/config"
	"github.com/kardianos/service"
	"github.com/spf13/cobra"
)

// The service glue: `circled service ACTION` installs and controls circled
// as a system service through github.com/kardianos/service (a Windows
// service, a systemd unit, a launchd job). The installed command line
// carries the hidden --service flag, so service mode is always explicit:
// under Wine, svc.IsWindowsService() is false even for a real service.
//
// Per-OS files implement:
//
//	runAsService(cmd, f) error   // --service: serve under the OS's service manager
//	stopService(s, name, timeout) error   // a bounded stop (kardianos#337)
//	serviceOptions(o service.KeyValue)    // OS-specific install options
//	afterInstall(name string) error       // e.g. what kardianos cannot set
//	defaultConfigPath() string            // "" = -c is required

const defaultServiceName = "circled"

// svcFlags holds the root command's service flags.
var svcFlags struct {
	service bool   // hidden: run as the installed service
	name    string // --service-name
}

// addServiceFlags registers --service-name and the hidden --service on
// the root command.
func addServiceFlags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&svcFlags.service, "service", false, "run as the installed service (the service's command line carries it)")
	fl.MarkHidden("service")
	fl.StringVar(&svcFlags.name, "service-name", "", "service name for --daemon on windows (default "+defaultServiceName+")")
}

// runService is the root command with --service.
func runService(cmd *cobra.Command, f rootFlags) error {
	return runAsService(cmd, f)
}

// serviceName is --service-name, else the default.
// The name is --service-name, else the config's [circled] service_name,
// else circled.
func serviceName(flag, configFile string) string {
	if flag != "" {
		return flag
	}
	if configFile != "" {
		if d, err := config.ReadDaemon(configFile); err == nil && d.ServiceName != "" {
			return d.ServiceName
		}
	}
	return defaultServiceName
}

// serviceArgs is the installed command line after the executable: -c with
// an absolute path, the other given flags (sorted, paths made absolute),
// then --service. `circled service install` and `--daemon` build it the
// same way, so a service installed by one is recognised by the other.
func serviceArgs(config string, extra map[string]string) ([]string, error) {
	abs, err := filepath.Abs(config)
	if err != nil {
		return nil, err
	}
	args := []string{"-c", abs}
	names := make([]string, 0, len(extra))
	for k := range extra {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := extra[k]
		if k == "pidfile" && v != "" {
			if a, err := filepath.Abs(v); err == nil {
				v = a
			}
		}
		args = append(args, "--"+k+"="+v)
	}
	return append(args, "--service"), nil
}

// daemonFlagsForService collects the root flags a --daemon launch passes on
// to the service: those set on the command line, but -c (given
// separately), --daemon, --service and --version.
func daemonFlagsForService(cmd *cobra.Command) map[string]string {
	extra := map[string]string{}
	for _, name := range []string{"log-level", "pidfile", "service-name", "socket"} {
		if fl := cmd.Flags().Lookup(name); fl != nil && fl.Changed {
			extra[name] = fl.Value.String()
		}
	}
	return extra
}

// noopProgram satisfies service.Interface for the control commands, which
// never run the service themselves.
type noopProgram struct{}

func (noopProgram) Start(service.Service) error { return nil }
func (noopProgram) Stop(service.Service) error  { return nil }

// newService describes the circled service for kardianos.
func newService(name string, args []string, delayed bool) (service.Service, error) {
	opts := service.KeyValue{
		"StartType":              "automatic",
		"DelayedAutoStart":       delayed,
		"OnFailure":              "restart", // without it no recovery action is written
		"OnFailureDelayDuration": "5s",
		"OnFailureResetPeriod":   86400,
		"Restart":                "on-failure", // systemd
		"KeepAlive":              true,         // launchd
		"RunAtLoad":              true,         // launchd
	}
	serviceOptions(opts)
	return service.New(noopProgram{}, &service.Config{
		Name:        name,
		DisplayName: "circled (" + name + ")",
		Description: "circled process supervisor",
		Arguments:   args,
		Option:      opts,
	})
}

func newServiceCmd() *cobra.Command {
	var (
		file, name string
		delayed    bool
		timeout    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "service install|uninstall|start|stop|restart|status [-c FILE]",
		Short: "install and control circled as a system service (Windows service, systemd unit, SysV init script, launchd job)",
		Long: `install and control circled as a system service (Windows service, systemd
unit, SysV init script, launchd job). install needs -c FILE (on Windows it
defaults to %ProgramData%\circled\circled.ini); the installed command line is
"circled -c FILE --service". status prints running, stopped, not installed or
unknown and exits 0, 3, 4 or 4.`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"install", "uninstall", "start", "stop", "restart", "status"},
		RunE: func(cmd *cobra.Command, args []string) error {
			action := args[0]
			if action == "install" && file == "" {
				file = defaultConfigPath()
			}
			name := serviceName(name, file)
			var svcArgs []string
			if action == "install" {
				if file == "" {
					return &exitError{code: 2, err: errors.New("service install: missing -c FILE (the main config file)")}
				}
				extra := map[string]string{}
				if name != defaultServiceName {
					extra["service-name"] = name
				}
				var err error
				if svcArgs, err = serviceArgs(file, extra); err != nil {
					return &exitError{code: 1, err: err}
				}
			}
			s, err := newService(name, svcArgs, delayed)
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("service: %w", err)}
			}
			return serviceAction(cmd, s, name, action, timeout)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&file, "config", "c", "", "main config file (install)")
	fl.StringVar(&name, "service-name", "", "service name (default "+defaultServiceName+")")
	fl.BoolVar(&delayed, "delayed", false, "install: delayed automatic start (windows)")
	fl.DurationVar(&timeout, "timeout", 2*time.Minute, "stop, restart: give up waiting for the service to stop after this long")
	return cmd
}

func serviceAction(cmd *cobra.Command, s service.Service, name, action string, timeout time.Duration) error {
	out := cmd.OutOrStdout()
	fail := func(err error) error {
		// kardianos's errors are often a bare "exit status 1" from the
		// init system's tool: say which service manager was asked.
		mgr := "none found"
		if sys := service.ChosenSystem(); sys != nil {
			mgr = sys.String()
		}
		return &exitError{code: 1, err: fmt.Errorf("service %s: %s: %w (service manager: %s)", name, action, err, mgr)}
	}
	switch action {
	case "install":
		if err := s.Install(); err != nil {
			return fail(err)
		}
		if err := afterInstall(name); err != nil {
			return fail(err)
		}
		fmt.Fprintf(out, "service %s installed\n", name)
	case "uninstall":
		if err := s.Uninstall(); err != nil {
			return fail(err)
		}
		fmt.Fprintf(out, "service %s uninstalled\n", name)
	case "start":
		if err := s.Start(); err != nil {
			return fail(err)
		}
		fmt.Fprintf(out, "service %s started\n", name)
	case "stop":
		if err := stopService(s, name, timeout); err != nil {
			return fail(err)
		}
		fmt.Fprintf(out, "service %s stopped\n", name)
	case "restart":
		if err := stopService(s, name, timeout); err != nil {
			return fail(err)
		}
		if err := s.Start(); err != nil {
			return fail(err)
		}
		fmt.Fprintf(out, "service %s restarted\n", name)
	case "status":
		st, err := s.Status()
		switch {
		case errors.Is(err, service.ErrNotInstalled), err != nil && !serviceDefined(name):
			fmt.Fprintln(out, "not installed")
			return &exitError{code: 4}
		case err != nil:
			return fail(err)
		case st == service.StatusRunning:
			fmt.Fprintln(out, "running")
		case st == service.StatusStopped:
			fmt.Fprintln(out, "stopped")
			return &exitError{code: 3}
		default:
			fmt.Fprintln(out, "unknown")
			return &exitError{code: 4}
		}
	default:
		return &exitError{code: 2, err: fmt.Errorf("service: unknown action %q (install, uninstall, start, stop, restart, status)", action)}
	}
	return nil
}
