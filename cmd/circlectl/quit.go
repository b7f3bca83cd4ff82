package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/circle-supervisor/circle/ctl"
)

func newQuitCmd(g *globals) *cobra.Command {
	var asJSON, noWait bool
	cmd := &cobra.Command{
		Use:   "quit",
		Short: "Stop every watcher, then circled",
		Long:  "Stop every watcher, then circled. Waits until every watcher has stopped unless --no-wait.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.Quit(cmd.Context(), !noWait); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), ctl.QuitReply{Quitting: true})
			}
			if noWait {
				fmt.Fprintln(cmd.OutOrStdout(), "circled is quitting")
			} else {
				fmt.Fprintln(cmd.OutOrStdout(), "circled stopped")
			}
			return nil
		},
	}
	jsonFlag(cmd, &asJSON)
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the daemon has the order, without waiting")
	return cmd
}
