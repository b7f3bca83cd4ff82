package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/circle-supervisor/circle/ctl"
)

func newListCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List watcher names",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			names, err := c.List(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				if names == nil {
					names = []string{}
				}
				return printJSON(cmd.OutOrStdout(), ctl.WatcherList{Watchers: names})
			}
			for _, n := range names {
				fmt.Fprintln(cmd.OutOrStdout(), n)
			}
			return nil
		},
	}
	jsonFlag(cmd, &asJSON)
	return cmd
}
