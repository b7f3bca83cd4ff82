package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/circle-supervisor/circle/ctl"
)

func newNumProcessesCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:               "numprocesses NAME",
		Short:             "Print the number of processes of watcher NAME",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeWatchers(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			return callResult(cmd, g, asJSON, func(c *ctl.Client, ctx context.Context) (ctl.Result, error) {
				return c.NumProcesses(ctx, args[0])
			}, printCount)
		},
	}
	jsonFlag(cmd, &asJSON)
	return cmd
}
