package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/circle-supervisor/circle/ctl"
)

func newEventsCmd(g *globals) *cobra.Command {
	var asJSON bool
	var since time.Duration
	cmd := &cobra.Command{
		Use:   "events [NAME|GLOB...]",
		Short: "Follow circled's events (spawns, exits, state changes, reloads)",
		Long: `Print circled's events as they happen, one line each, until Ctrl-C or
circled stops: processes spawned, exited (code or signal), ready and
restarted (with the reason: crash, flapping, health, manual, reload),
watchers changing state (flapping, fatal, ...), config reloads, output
that could not be written. Names or globs keep the events of those
watchers (events about no watcher, such as reload, always show).
--since 10m first prints the kept events (the last 1000) of the last
10 minutes. --json prints the raw NDJSON of GET /v1/events. A line
"lost N" means this client did not keep up and N events were skipped.`,
		ValidArgsFunction: completeWatchers(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			if since < 0 {
				return usageErrorf("--since must be a positive duration, got %s", since)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			req := ctl.EventsRequest{Watchers: args}
			if since > 0 {
				req.Since = time.Now().Add(-since)
			}
			out := cmd.OutOrStdout()
			return c.Events(cmd.Context(), req, func(ev ctl.Event, line []byte) error {
				if asJSON {
					_, err := fmt.Fprintf(out, "%s\n", line)
					return err
				}
				return printEvent(out, ev)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the raw NDJSON, one object per line")
	cmd.Flags().DurationVar(&since, "since", 0, "first print the kept events of the last `DURATION` (e.g. 10m)")
	return cmd
}

// printEvent writes one aligned line: time, type, watcher.wid, pid, details.
func printEvent(w io.Writer, ev ctl.Event) error {
	who := ev.Watcher
	if ev.WID != 0 {
		who += "." + strconv.Itoa(ev.WID)
	}
	if who == "" {
		who = "-"
	}
	pid := "-"
	if ev.PID != 0 {
		pid = strconv.Itoa(ev.PID)
	}
	var d []string
	switch {
	case ev.Code != nil:
		d = append(d, "code="+strconv.Itoa(*ev.Code))
	case ev.Signal != "":
		d = append(d, "signal="+ev.Signal)
	}
	if ev.State != "" {
		d = append(d, "state="+ev.State)
	}
	if ev.Type == "lost" || ev.Type == "log_dropped" {
		unit := "events"
		if ev.Type == "log_dropped" {
			unit = "bytes"
		}
		d = append(d, fmt.Sprintf("%d %s", ev.Count, unit))
	}
	if ev.Summary != nil {
		d = append(d, summaryText(*ev.Summary))
	}
	if ev.Reason != "" {
		d = append(d, ev.Reason)
	}
	line := fmt.Sprintf("%s  %-11s  %-20s  %7s  %s", ev.Time.Local().Format("2006-01-02 15:04:05.000"), ev.Type, who, pid, strings.Join(d, " "))
	_, err := fmt.Fprintln(w, strings.TrimRight(line, " "))
	return err
}

func summaryText(s ctl.ReloadSummary) string {
	var parts []string
	add := func(k string, l []string) {
		if len(l) > 0 {
			parts = append(parts, k+"="+strings.Join(l, ","))
		}
	}
	add("added", s.Added)
	add("removed", s.Removed)
	add("restarted", s.Restarted)
	add("scaled", s.Scaled)
	add("updated", s.Updated)
	for _, n := range slices.Sorted(maps.Keys(s.Failed)) {
		parts = append(parts, "failed:"+n+"="+strconv.Quote(s.Failed[n]))
	}
	if len(parts) == 0 {
		return "no change"
	}
	return strings.Join(parts, " ")
}
