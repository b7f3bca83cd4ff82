package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
)

// newIncrCmd builds incr (sign 1) and decr (sign -1).
func newIncrCmd(g *globals, use string, sign int) *cobra.Command {
	var asJSON bool
	short := "Add N processes (default 1) to watcher NAME and print the new count"
	if sign < 0 {
		short = "Remove N processes (default 1) from watcher NAME and print the new count"
	}
	cmd := &cobra.Command{
		Use:   use + " NAME [N]",
		Short: short,
		Long: short + `.

N is 1..100000; an incr may not take the watcher beyond 100000 processes
(the maximum per watcher), and a decr stops at 0. The other processes are
not touched: incr starts new ones, decr stops the highest-numbered ones.`,
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: completeWatchers(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			n := 1
			if len(args) == 2 {
				var err error
				n, err = strconv.Atoi(args[1])
				if err != nil || n < 1 {
					return usageErrorf("%s: N must be a positive number, got %q", use, args[1])
				}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			res, err := c.Incr(cmd.Context(), args[0], sign*n)
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
