package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newReloadConfigCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "reloadconfig",
		Short: "Re-read the config and apply the changes",
		Long: `Re-read the config and apply it: only watchers whose config changed are
touched. A config error changes nothing and exits 1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			sum, err := c.ReloadConfig(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), sum)
			}
			w := cmd.OutOrStdout()
			changed := false
			for _, l := range []struct {
				label string
				names []string
			}{
				{"added", sum.Added},
				{"removed", sum.Removed},
				{"restarted", sum.Restarted},
				{"scaled", sum.Scaled},
				{"updated", sum.Updated},
			} {
				if len(l.names) > 0 {
					changed = true
					fmt.Fprintf(w, "%s: %s\n", l.label, strings.Join(l.names, ", "))
				}
			}
			if !changed {
				fmt.Fprintln(w, "no changes")
			}
			if len(sum.NeedRestart) > 0 {
				fmt.Fprintf(w, "changed but only applied when circled restarts: %s\n", strings.Join(sum.NeedRestart, ", "))
			}
			return nil
		},
	}
	jsonFlag(cmd, &asJSON)
	return cmd
}
