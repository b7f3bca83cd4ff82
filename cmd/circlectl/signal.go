package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/circle-supervisor/circle/ctl"
)

func newSignalCmd(g *globals) *cobra.Command {
	var asJSON, children bool
	var pid int
	cmd := &cobra.Command{
		Use:   "signal NAME SIGNAL",
		Short: "Send a signal to a watcher's processes",
		Long: `Send SIGNAL (HUP, SIGHUP, 1...) to every process of watcher NAME, or only
to --pid. With --children, to each process's whole process group.`,
		Args: cobra.ExactArgs(2),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return completeWatchers(g)(cmd, args, toComplete)
			}
			return []string{"HUP", "INT", "QUIT", "KILL", "USR1", "USR2", "TERM"}, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if pid < 0 {
				return usageErrorf("--pid must be positive")
			}
			return callResult(cmd, g, asJSON, func(c *ctl.Client, ctx context.Context) (ctl.Result, error) {
				return c.Signal(ctx, args[0], args[1], pid, children)
			}, func(w io.Writer, res ctl.Result) { printResult(w, res, "sent "+args[1]) })
		},
	}
	jsonFlag(cmd, &asJSON)
	cmd.Flags().IntVar(&pid, "pid", 0, "signal only this `PID` of the watcher")
	cmd.Flags().BoolVar(&children, "children", false, "signal each process's whole process group")
	return cmd
}
