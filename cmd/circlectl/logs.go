package main

import (
	"github.com/spf13/cobra"

	"github.com/circle-supervisor/circle/ctl"
)

func newLogsCmd(g *globals) *cobra.Command {
	var lines int
	var follow bool
	var stream string
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Print a watcher's last output lines; follow with -f",
		Long: `Print the last lines watcher NAME's processes wrote (stdout and stderr,
each line prefixed with NAME.WID), from circled's in-memory buffer, whatever
the stream class. With -f, keep printing new lines until Ctrl-C, the watcher
is removed or circled stops (all exit 0).`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeWatchers(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			if lines < 0 {
				return usageErrorf("-n must be 0 or more, got %d", lines)
			}
			if stream != "" && stream != "stdout" && stream != "stderr" {
				return usageErrorf("--stream must be stdout or stderr, got %q", stream)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			req := ctl.LogsRequest{Lines: lines, Follow: follow, Stream: stream}
			// Ctrl-C cancels cmd.Context(): Logs then returns nil.
			return c.Logs(cmd.Context(), args[0], req, cmd.OutOrStdout())
		},
	}
	cmd.Flags().IntVarP(&lines, "lines", "n", ctl.DefaultLogLines, "print the last `LINES` lines first")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "then print new lines as they come")
	cmd.Flags().StringVar(&stream, "stream", "", "only this `STREAM`: stdout or stderr (default: both)")
	cmd.RegisterFlagCompletionFunc("stream", cobra.FixedCompletions([]string{"stdout", "stderr"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}
