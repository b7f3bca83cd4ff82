package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/internal/buildinfo"
	"github.com/circle-supervisor/circle/supervisor/config"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitNoSuchWatch = 3
	exitUnreachable = 4
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes circlectl with args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	initCompletionCmd(root) // after SetOut: cobra's scripts go where it was then
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code := exitUsage // cobra's own errors: unknown command, bad flag, wrong args
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintf(stderr, "circlectl: %s\n", msg)
	}
	if code == exitUsage {
		fmt.Fprintln(stderr, "Run 'circlectl --help' for usage.")
	}
	return code
}

// exitError carries an exit code from a command up to run. A nil err
// exits silently (status --quiet).
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

// usageErrorf is a usage error found by a command itself.
func usageErrorf(format string, args ...any) error {
	return &exitError{exitUsage, fmt.Errorf(format, args...)}
}

// withCode gives err the exit code its kind calls for.
func withCode(err error) error {
	var ee *exitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		return err
	case errors.Is(err, ctl.ErrNoSuchWatcher):
		return &exitError{exitNoSuchWatch, err}
	case errors.Is(err, ctl.ErrUnreachable):
		return &exitError{exitUnreachable, err}
	}
	return &exitError{exitFailed, err}
}

// globals are the persistent flags.
type globals struct {
	socket string
	config string
	host   string // -H; else $CIRCLED_HOST (see client)

	clients []*ctl.Client // to close when the command ends
}

// client returns a client for the daemon the global flags select: on the
// host -H (else $CIRCLED_HOST) names, over ssh, with --socket and -c
// passed to the remote dial-stdio; else on the local socket.
func (g *globals) client() (*ctl.Client, error) {
	host := g.host
	if host == "" {
		host = os.Getenv(ctl.HostEnv)
	}
	if host != "" {
		h, err := ctl.ParseHost(host)
		if err != nil {
			return nil, usageErrorf("%v", err)
		}
		var remote []string
		if g.socket != "" {
			remote = append(remote, "--socket", g.socket)
		}
		if g.config != "" {
			remote = append(remote, "--config", g.config)
		}
		c := ctl.NewSSHClient(h, remote...)
		g.clients = append(g.clients, c)
		return c, nil
	}
	socket, err := g.localSocket()
	if err != nil {
		return nil, err
	}
	c := ctl.NewClient(socket)
	g.clients = append(g.clients, c)
	return c, nil
}

// localSocket is the local control socket: --socket, else -c FILE's
// [circled] socket, else the default.
func (g *globals) localSocket() (string, error) {
	var confSocket string
	if g.config != "" {
		d, err := config.ReadDaemon(g.config)
		if err != nil {
			return "", &exitError{exitFailed, fmt.Errorf("read %s: %w", g.config, err)}
		}
		confSocket = d.Socket
	}
	return ctl.ResolveSocket(g.socket, confSocket), nil
}

// close closes the clients' connections (ends their ssh processes).
func (g *globals) close() {
	for _, c := range g.clients {
		c.Close()
	}
	g.clients = nil
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "circlectl",
		Short: "Control circled, the process supervisor",
		Long: `circlectl controls a running circled over its control socket.

The socket is --socket, else -c FILE's [circled] socket, else $CIRCLED_SOCKET,
else /run/circled/circled.sock for root, else $XDG_RUNTIME_DIR/circled.sock,
else /tmp/circled-$UID/circled.sock. circlectl refuses (exit 4) a socket that
is not owned by you or root, or whose directory (or one above it) someone
else owns or may write to, unless it is sticky like /tmp.

With -H ssh://[user@]host[:port] (else $CIRCLED_HOST), circlectl controls the
circled on that host: each connection runs 'ssh [-l user] [-p port] -- host
circlectl dial-stdio' (your ssh config, keys, agent and jump hosts apply),
with --socket and -c passed on to the remote circlectl, which resolves the
socket there. The remote command is ?circlectl=PATH in the URL, else
$CIRCLED_SSH_CIRCLECTL, else circlectl on the remote PATH; the ssh command is
$CIRCLED_SSH_COMMAND (split on spaces), else ssh. When ssh fails (host
unreachable, authentication, no circlectl or no daemon there) circlectl
exits 4 and prints ssh's error.

Exit codes: 0 done, 1 the operation failed, 2 usage error, 3 no such watcher,
4 daemon not reachable.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// --version prints what the first line of `circlectl version` does,
	// without asking the daemon. No -v: it is not verbose.
	root.Version = buildinfo.String("circlectl")
	root.SetVersionTemplate("{{.Version}}\n")
	root.Flags().Bool("version", false, "print circlectl's version and exit (circlectl version also asks the daemon)")
	root.PersistentFlags().StringVar(&g.socket, "socket", "", "control socket `PATH`")
	root.PersistentFlags().StringVarP(&g.config, "config", "c", "", "circled config `FILE` (for its socket; for check)")
	root.PersistentFlags().StringVarP(&g.host, "host", "H", "", "control the circled on `ssh://[user@]host[:port]` (default $"+ctl.HostEnv+")")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &exitError{exitUsage, err}
	})
	root.AddCommand(
		newStatusCmd(g),
		newListCmd(g),
		newActionCmd(g, "start", "Start watchers (all when none is named)"),
		newActionCmd(g, "stop", "Stop watchers (all when none is named)"),
		newActionCmd(g, "restart", "Restart watchers (all when none is named)"),
		newReloadCmd(g),
		newReloadConfigCmd(g),
		newSignalCmd(g),
		newIncrCmd(g, "incr", 1),
		newIncrCmd(g, "decr", -1),
		newNumProcessesCmd(g),
		newStatsCmd(g),
		newSocketsCmd(g),
		newQuitCmd(g),
		newLogsCmd(g),
		newEventsCmd(g),
		newReopenCmd(g),
		newUpgradeCmd(g),
		newVersionCmd(g),
		newCheckCmd(g),
		newDialStdioCmd(g),
	)
	// Every error a command returns leaves with its exit code; anything
	// else reaching run is cobra's own (usage) error.
	for _, c := range root.Commands() {
		if c.RunE != nil {
			runE := c.RunE
			c.RunE = func(cmd *cobra.Command, args []string) error {
				defer g.close()
				return withCode(runE(cmd, args))
			}
		}
	}
	return root
}

// printJSON prints v as the daemon does: compact, one line.
func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// completeWatchers completes watcher names from the running daemon.
func completeWatchers(g *globals) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		c, err := g.client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defer g.close()
		ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Second)
		defer cancel()
		names, err := c.List(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// jsonFlag adds --json to cmd.
func jsonFlag(cmd *cobra.Command, p *bool) {
	cmd.Flags().BoolVar(p, "json", false, "print the daemon's JSON reply")
}

// initCompletionCmd adds cobra's completion command now (cobra would at
// Execute) so that a shell it has no script for is a usage error: cobra's
// own command prints its help and exits 0 for `completion tcsh`.
func initCompletionCmd(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() != "completion" {
			continue
		}
		var shells []string
		for _, sc := range c.Commands() {
			shells = append(shells, sc.Name())
		}
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return usageErrorf("completion: no completion script for shell %q (shells: %s)", args[0], strings.Join(shells, ", "))
		}
	}
}
