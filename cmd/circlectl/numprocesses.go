package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newNumProcessesCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:               "numprocesses NAME",
		Short:             "Print the number of processes of watcher NAME",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeWatchers(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			res, err := c.NumProcesses(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				if res.Watchers == nil {
					res.Watchers = []string{}
				}
				return printJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintln(cmd.OutOrStdout(), res.NumProcesses)
			return nil
		},
	}
	jsonFlag(cmd, &asJSON)
	return cmd
}
