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

With --quiet print nothing; exit 0 when every autostart watcher (of those
named) is active and no watcher is fatal, flapping or backing off, else
exit 1. A watcher with autostart = false may be stopped. Meant for health
checks such as a Kubernetes liveness probe: an autostart watcher stopped by
hand, still starting, or a respawn = false one that has finished also
counts as not active.`,
		ValidArgsFunction: completeWatchers(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			st, err := c.Status(cmd.Context(), args)
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
				return printJSON(cmd.OutOrStdout(), st)
			}
			return writeStatus(cmd.OutOrStdout(), st, time.Now())
		},
	}
	jsonFlag(cmd, &asJSON)
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing; exit 0 when every autostart watcher is active, else 1")
	return cmd
}

// healthy is the --quiet verdict: every autostart watcher is active, and
// no watcher (autostart or started by hand) is failing.
func healthy(st ctl.Status) bool {
	for _, w := range st.Watchers {
		if w.Autostart && w.State != "active" || failing(w.State) {
			return false
		}
	}
	return true
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
		line := strings.Join([]string{ws.Name, ws.State, pids(ws.Processes), uptime(ws.Processes, now),
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

// lastExit shows the exit of the process that restarted most, "-" when
// none has exited yet.
func lastExit(ps []ctl.ProcessStatus) string {
	var best *ctl.ProcessStatus
	for i := range ps {
		p := &ps[i]
		if p.Restarts == 0 && p.LastExit == (ctl.Exit{}) && p.State != "exited" {
			continue
		}
		if best == nil || p.Restarts > best.Restarts {
			best = p
		}
	}
	if best == nil {
		return "-"
	}
	if best.LastExit.Signal != "" {
		return "signal " + best.LastExit.Signal
	}
	return "exit " + strconv.Itoa(best.LastExit.Code)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
