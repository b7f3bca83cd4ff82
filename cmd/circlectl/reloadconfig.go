package main

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/circle-supervisor/circle/ctl"
)

func newReloadConfigCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "reloadconfig",
		Short: "Re-read the config and apply the changes",
		Long: `Re-read the config and apply it: only watchers whose config changed are
touched. A config error changes nothing and exits 1. A watcher that the
reload restarted or started but that did not come up (a spawn error, fatal)
is listed under "failed" and makes circlectl exit 1; the rest of the config
is applied all the same.

With --json, print the daemon's summary; on failure it has "error" set (and
"failed" per watcher), and it is printed even when the reload failed as a
whole (a bad config, no daemon), with empty lists.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sum, err := reloadConfig(cmd, g)
			if err != nil {
				if asJSON {
					doc := ctl.ReloadSummary{Added: []string{}, Removed: []string{}, Restarted: []string{},
						Scaled: []string{}, Updated: []string{}, Unchanged: []string{}, Error: err.Error()}
					if perr := printJSON(cmd.OutOrStdout(), doc); perr != nil {
						return perr
					}
				}
				return err
			}
			if sum.Error == "" {
				sum.Error = sum.FailedMessage()
			}
			var failed error
			if sum.Error != "" {
				failed = &exitError{exitFailed, errors.New(sum.Error)}
			}
			if asJSON {
				if err := printJSON(cmd.OutOrStdout(), sum); err != nil {
					return err
				}
				return failed
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
			for _, n := range slices.Sorted(maps.Keys(sum.Failed)) {
				fmt.Fprintf(w, "failed: %s: %s\n", n, sum.Failed[n])
			}
			return failed
		},
	}
	jsonFlag(cmd, &asJSON)
	return cmd
}

func reloadConfig(cmd *cobra.Command, g *globals) (ctl.ReloadSummary, error) {
	c, err := g.client()
	if err != nil {
		return ctl.ReloadSummary{}, err
	}
	return c.ReloadConfig(cmd.Context())
}
