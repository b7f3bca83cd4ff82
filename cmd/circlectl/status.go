package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/circle-supervisor/circle/ctl"
)

func newStatusCmd(g *globals) *cobra.Command {
	var asJSON, quiet bool
	cmd := &cobra.Command{
		Use:   "status [NAME|GLOB...]",
		Short: "Show watchers and their processes",
		Long: `Show watchers and their processes (all when none is named).

The table's STATE is the watcher's state, except that an active watcher
with no process to run (numprocesses = 0: scaled to zero with decr, or
configured so) shows as "idle". LAST-EXIT is how the process that restarted
most last ended: "exit N", "signal NAME", "spawn failed" when it could not
be started (the error is in ERROR), "-" when none has ended. RESTARTS
counts unplanned restarts: a process that crashed or exited without being
asked to and was started again, including after a flapping pause. The
restarts someone asked for (restart, reload, stop then start, a config
change) are not in the table; --json has both per process, "restarts"
(unplanned) and "planned_restarts".

With --quiet print nothing on stdout; exit 0 when every autostart watcher
(of those named) is active with at least one process and no watcher is
fatal, flapping or backing off, else exit 1. A watcher with autostart =
false may be stopped or idle. Meant for health checks such as a Kubernetes
liveness probe: an autostart watcher stopped by hand, scaled to zero, still
starting, or a respawn = false one that has finished counts as not active.
When there is no verdict to give, --quiet exits like every other command,
with the error on stderr: 4 when the daemon does not answer, 3 when a name
matches no watcher, 2 on a usage error.`,
		ValidArgsFunction: completeWatchers(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if asJSON && !quiet {
				// The issue 12 contract: --json shows descendants.
				ctx = ctl.WithStatusOptions(ctx, ctl.StatusOptions{Descendants: true})
			}
			st, err := c.Status(ctx, args)
			if err != nil {
				return err
			}
			switch {
			case quiet:
				if !healthy(st) {
					return &exitError{exitFailed, nil}
				}
				return nil
			case asJSON:
				// An older daemon sends no sockets: [] as a list always is.
				st.Sockets = nonNilSockets(st.Sockets)
				return printJSON(cmd.OutOrStdout(), st)
			}
			return writeStatus(cmd.OutOrStdout(), st, time.Now())
		},
	}
	jsonFlag(cmd, &asJSON)
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing; exit 0 when every autostart watcher is active with a process, else 1 (4: no daemon)")
	return cmd
}

// healthy is the --quiet verdict: every autostart watcher is active with
// at least one process wanted (not idle), and no watcher (autostart or
// started by hand) is failing.
func healthy(st ctl.Status) bool {
	for _, w := range st.Watchers {
		if w.Autostart && (w.State != "active" || idle(w)) || failing(w.State) {
			return false
		}
	}
	return true
}

// idle reports an active watcher that has no process to run
// (numprocesses = 0).
func idle(w ctl.WatcherStatus) bool {
	return w.State == "active" && w.NumProcesses == 0
}

// tableState is the STATE column: the watcher's state, or "idle".
func tableState(w ctl.WatcherStatus) string {
	if idle(w) {
		return "idle"
	}
	return w.State
}

func failing(state string) bool {
	return state == "fatal" || state == "flapping" || state == "backoff"
}

// writeStatus prints one line per watcher, for a person.
func writeStatus(w io.Writer, st ctl.Status, now time.Time) error {
	withErr := slices.ContainsFunc(st.Watchers, func(ws ctl.WatcherStatus) bool { return watcherError(ws) != "" })
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	header := "NAME\tSTATE\tPIDS\tUPTIME\tRESTARTS\tLAST-EXIT"
	if withErr {
		header += "\tERROR"
	}
	fmt.Fprintln(tw, header)
	for _, ws := range st.Watchers {
		line := strings.Join([]string{ws.Name, tableState(ws), pids(ws.Processes), uptime(ws.Processes, now),
			strconv.Itoa(restarts(ws.Processes)), lastExit(ws.Processes)}, "\t")
		if withErr {
			line += "\t" + orDash(watcherError(ws))
		}
		fmt.Fprintln(tw, line)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if st.LastReloadError != "" {
		fmt.Fprintf(w, "last config reload failed: %s\n", st.LastReloadError)
	}
	return nil
}

func watcherError(ws ctl.WatcherStatus) string {
	if ws.Error != "" {
		return ws.Error
	}
	for _, p := range ws.Processes {
		if p.Error != "" {
			return p.Error
		}
	}
	return ""
}

// maxPIDs is how many pids a status line shows before "+N".
const maxPIDs = 4

func pids(ps []ctl.ProcessStatus) string {
	var s []string
	n := 0
	for _, p := range ps {
		if p.PID == 0 {
			continue
		}
		n++
		if len(s) < maxPIDs {
			s = append(s, strconv.Itoa(p.PID))
		}
	}
	if n == 0 {
		return "-"
	}
	out := strings.Join(s, ",")
	if n > maxPIDs {
		out += fmt.Sprintf(",+%d", n-maxPIDs)
	}
	return out
}

// uptime is that of the youngest running process: a recent restart is
// what a person looking at the line wants to notice.
func uptime(ps []ctl.ProcessStatus, now time.Time) string {
	var youngest time.Time
	for _, p := range ps {
		if p.State == "running" && !p.StartedAt.IsZero() && p.StartedAt.After(youngest) {
			youngest = p.StartedAt
		}
	}
	if youngest.IsZero() {
		return "-"
	}
	return shortDuration(now.Sub(youngest))
}

func shortDuration(d time.Duration) string {
	d = max(d, 0).Truncate(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

func restarts(ps []ctl.ProcessStatus) int {
	n := 0
	for _, p := range ps {
		n += p.Restarts
	}
	return n
}

// lastExit shows how the process that restarted most last ended: "spawn
// failed" when its slot's last start failed (ERROR has the error), "-"
// when none has ended.
func lastExit(ps []ctl.ProcessStatus) string {
	var best *ctl.ProcessStatus
	for i := range ps {
		p := &ps[i]
		if !ended(p) {
			continue
		}
		if best == nil || p.Restarts > best.Restarts {
			best = p
		}
	}
	switch {
	case best == nil:
		return "-"
	case spawnFailed(best):
		return "spawn failed"
	case best.LastExit.OOM:
		return "oom"
	case best.LastExit.Signal != "":
		return "signal " + best.LastExit.Signal
	}
	return "exit " + strconv.Itoa(best.LastExit.Code)
}

// spawnFailed: the slot's last start failed (a slot's error is cleared
// when a process starts).
func spawnFailed(p *ctl.ProcessStatus) bool {
	return p.Error != "" && p.PID == 0
}

// ended reports whether the slot has something to show in LAST-EXIT: a
// failed start or an exit. A daemon that says last_exit.none is believed;
// one that does not (older) is read from the restarts and the state.
func ended(p *ctl.ProcessStatus) bool {
	switch {
	case spawnFailed(p):
		return true
	case p.LastExit.None:
		return false
	}
	return p.Restarts > 0 || p.LastExit != (ctl.Exit{}) || p.State == "exited"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
