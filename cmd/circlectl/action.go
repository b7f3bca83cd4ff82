package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/circle-supervisor/circle/ctl"
)

// actions maps start, stop, restart and reload to the client call and the
// words printed when it waited or not.
var actions = map[string]struct {
	call         func(c *ctl.Client, ctx context.Context, names []string, wait bool) (ctl.Result, error)
	done, queued string
}{
	"start":   {(*ctl.Client).Start, "started", "starting"},
	"stop":    {(*ctl.Client).Stop, "stopped", "stopping"},
	"restart": {(*ctl.Client).Restart, "restarted", "restarting"},
	"reload":  {(*ctl.Client).Reload, "reloaded", "reloading"},
}

// newActionCmd builds start, stop and restart, which share their shape.
func newActionCmd(g *globals, op, short string) *cobra.Command {
	var asJSON, noWait bool
	cmd := &cobra.Command{
		Use:               op + " [NAME|GLOB...]",
		Short:             short,
		Long:              short + ".\n\nWaits until done unless --no-wait.",
		ValidArgsFunction: completeWatchers(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAction(cmd, g, op, args, !noWait, asJSON)
		},
	}
	jsonFlag(cmd, &asJSON)
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the daemon has the order, without waiting")
	return cmd
}

func runAction(cmd *cobra.Command, g *globals, op string, names []string, wait, asJSON bool) error {
	a := actions[op]
	word := a.done
	if !wait {
		word = a.queued
	}
	return callResult(cmd, g, asJSON, func(c *ctl.Client, ctx context.Context) (ctl.Result, error) {
		return a.call(c, ctx, names, wait)
	}, func(w io.Writer, res ctl.Result) { printResult(w, res, word) })
}

// callResult is the body of the commands that answer with a ctl.Result
// (start, stop, restart, reload, signal, incr, decr, numprocesses): call
// the daemon, then print the Result as JSON with --json, else with text.
// An error is returned as it is: run maps it to the exit code.
func callResult(cmd *cobra.Command, g *globals, asJSON bool,
	call func(*ctl.Client, context.Context) (ctl.Result, error), text func(io.Writer, ctl.Result)) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	res, err := call(c, cmd.Context())
	if err != nil {
		return err
	}
	if asJSON {
		if res.Watchers == nil {
			res.Watchers = []string{}
		}
		return printJSON(cmd.OutOrStdout(), res)
	}
	text(cmd.OutOrStdout(), res)
	return nil
}

// printCount prints a Result's NumProcesses (incr, decr, numprocesses).
func printCount(w io.Writer, res ctl.Result) { fmt.Fprintln(w, res.NumProcesses) }

func printResult(w io.Writer, res ctl.Result, word string) {
	if len(res.Watchers) == 0 {
		fmt.Fprintln(w, "no watchers")
	}
	for _, n := range res.Watchers {
		fmt.Fprintf(w, "%s: %s\n", n, word)
	}
}
