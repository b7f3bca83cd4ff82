// GOMAXPROCS stays as set at start: following cgroup CPU limit changes
// would wake an idle daemon every 10 s to re-read them.
//go:debug updatemaxprocs=0

package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/circle-supervisor/circle/internal/buildinfo"
	"github.com/circle-supervisor/circle/watcher"
	"github.com/spf13/cobra"
)

// exitError carries an exit code up to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

func main() {
	// Must come first: a child started for umask/rlimits is circled itself.
	watcher.RunTrampolineIfRequested()
	closeInheritedFDs()
	clearInheritedSignalMask()
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(os.Stderr, "circled:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(os.Stderr, "circled:", err)
	return 2 // cobra's own errors are usage errors
}

type rootFlags struct {
	config   string
	daemon   bool
	pidfile  string
	socket   string
	logLevel string
	version  bool
}

func newRootCmd() *cobra.Command {
	var f rootFlags
	cmd := &cobra.Command{
		Use:           "circled -c FILE [--daemon]",
		Short:         "circled supervises processes described by a circus-style ini file",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.version {
				fmt.Fprintln(cmd.OutOrStdout(), buildinfo.String("circled"))
				return nil
			}
			if f.config == "" {
				return &exitError{code: 2, err: errors.New("missing -c FILE (the main config file)")}
			}
			if f.logLevel != "" && !validLogLevel(f.logLevel) {
				// As loglevel = loud is a config error: never start at info.
				return &exitError{code: 2, err: fmt.Errorf("--log-level %q: want debug, info, warn or error", f.logLevel)}
			}
			if svcFlags.service {
				return runService(cmd, f)
			}
			if f.daemon {
				return daemonize(cmd, f)
			}
			return serve(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", defaultConfigPath(), "main config file")
	fl.BoolVar(&f.daemon, "daemon", false, "detach and run in the background")
	fl.StringVar(&f.pidfile, "pidfile", "", "write the daemon's pid to this file (overrides [circled] pidfile)")
	fl.StringVar(&f.socket, "socket", "", "control socket path (overrides [circled] socket)")
	fl.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error (overrides [circled] loglevel)")
	fl.BoolVar(&f.version, "version", false, "print the version and exit")
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &exitError{code: 2, err: err} })
	addServiceFlags(cmd)
	cmd.AddCommand(newCheckCmd())
	cmd.AddCommand(newConvertCmd())
	cmd.AddCommand(newServiceCmd())
	cmd.AddCommand(newUpgradeCheckCmd())
	return cmd
}

func newCheckCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "check -c FILE",
		Short: "validate a config and print the resolved watchers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return &exitError{code: 2, err: errors.New("missing -c FILE")}
			}
			return check(cmd, file)
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "main config file")
	return cmd
}

// validLogLevel accepts what [circled] loglevel accepts.
func validLogLevel(l string) bool {
	switch strings.ToLower(l) {
	case "debug", "info", "warn", "warning", "error", "critical":
		return true
	}
	return false
}
