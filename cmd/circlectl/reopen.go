package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/circle-supervisor/circle/ctl"
)

func newReopenCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "reopen",
		Short: "Reopen every log file (after an external logrotate)",
		Long: `Reopen every log file circled writes (watchers' FileStream and
TimedRotatingFileStream files and circled's own logfile), as SIGUSR1 does:
after logrotate moved them, circled writes to fresh files.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.Reopen(cmd.Context()); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), ctl.ReopenReply{Reopened: true})
			}
			fmt.Fprintln(cmd.OutOrStdout(), "log files reopened")
			return nil
		},
	}
	jsonFlag(cmd, &asJSON)
	return cmd
}
