package main

import (
	"context"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/circle-supervisor/circle/ctl"
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
			return callResult(cmd, g, asJSON, func(c *ctl.Client, ctx context.Context) (ctl.Result, error) {
				return c.Incr(ctx, args[0], sign*n)
			}, printCount)
		},
	}
	jsonFlag(cmd, &asJSON)
	return cmd
}
