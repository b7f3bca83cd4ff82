package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newStatsCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:               "stats [NAME|GLOB...]",
		Short:             "Show CPU % and RSS per process",
		ValidArgsFunction: completeWatchers(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			st, err := c.Stats(cmd.Context(), args)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), st)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tWID\tPID\tCPU%\tRSS")
			for _, w := range st.Watchers {
				if len(w.Processes) == 0 {
					fmt.Fprintf(tw, "%s\t-\t-\t-\t-\n", w.Name)
				}
				for _, p := range w.Processes {
					fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%s\n", w.Name, p.WID, p.PID, p.CPU, bytesIEC(p.RSS))
				}
			}
			return tw.Flush()
		},
	}
	jsonFlag(cmd, &asJSON)
	return cmd
}

// bytesIEC formats n bytes for a person: 512B, 3.0MiB, 1.2GiB.
func bytesIEC(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTP"[exp])
}
