package main

import "github.com/spf13/cobra"

func newReloadCmd(g *globals) *cobra.Command {
	var asJSON, noWait bool
	cmd := &cobra.Command{
		Use:   "reload [NAME|GLOB...]",
		Short: "Gracefully reload watchers: new processes up, then the old ones stopped",
		Long: `Gracefully reload watchers (all when none is named): new processes are
started, then the old ones stopped. Waits until done unless --no-wait.`,
		ValidArgsFunction: completeWatchers(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAction(cmd, g, "reload", args, !noWait, asJSON)
		},
	}
	jsonFlag(cmd, &asJSON)
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the daemon has the order, without waiting")
	return cmd
}
