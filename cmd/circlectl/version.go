package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/internal/buildinfo"
)

// versions is the --json document of circlectl version.
type versions struct {
	Client ctl.Version  `json:"client"`
	Daemon *ctl.Version `json:"daemon,omitempty"` // absent when unreachable
}

func newVersionCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the versions of circlectl and of the running circled",
		Long: `Print the version of circlectl, then that of the running circled. When no
daemon answers, print the client's and exit 4.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			v := versions{Client: ctl.Version{
				Version: buildinfo.Version, Commit: buildinfo.Commit,
				GoVersion: buildinfo.GoVersion(), PID: os.Getpid(),
			}}
			c, err := g.client()
			if err == nil {
				var d ctl.Version
				if d, err = c.Version(cmd.Context()); err == nil {
					v.Daemon = &d
				}
			}
			if asJSON {
				if perr := printJSON(out, v); perr != nil {
					return perr
				}
			} else {
				fmt.Fprintln(out, buildinfo.String("circlectl"))
				if v.Daemon != nil {
					d := v.Daemon
					fmt.Fprintf(out, "circled %s (commit %s, %s, pid %d)\n", d.Version, d.Commit, d.GoVersion, d.PID)
				}
			}
			return err
		},
	}
	jsonFlag(cmd, &asJSON)
	return cmd
}
