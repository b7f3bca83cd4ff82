package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/circle-supervisor/circle/ctl"
)

func newSocketsCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "sockets",
		Short: "List the sockets circled holds and the watchers that use them",
		Long: `List the sockets circled holds ([socket:NAME] in the config), as circus's
listsockets does.

ADDRESS is the bound address (with the port the system chose when the
config says port = 0) or the unix socket's path. FD is circled's own
descriptor for it. WATCHERS are the watchers whose processes get it
(use_sockets), each as WATCHER:FD, the descriptor number its processes see
(what $(circle.sockets.NAME) expands to); "-" when none uses it. --json
also has each socket's family and type.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ss, err := c.Sockets(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), ctl.SocketList{Sockets: nonNilSockets(ss)})
			}
			return writeSockets(cmd.OutOrStdout(), ss)
		},
	}
	jsonFlag(cmd, &asJSON)
	return cmd
}

// writeSockets prints one line per socket, for a person.
func writeSockets(w io.Writer, ss []ctl.Socket) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDRESS\tFD\tWATCHERS")
	for _, s := range ss {
		uses := make([]string, 0, len(s.Watchers))
		for _, u := range s.Watchers {
			uses = append(uses, u.Watcher+":"+strconv.Itoa(u.FD))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", s.Name, orDash(s.Address), s.FD, orDash(strings.Join(uses, ",")))
	}
	return tw.Flush()
}

// nonNilSockets is ss with [] for every list an older daemon (or none)
// left out, as circled itself answers.
func nonNilSockets(ss []ctl.Socket) []ctl.Socket {
	if ss == nil {
		return []ctl.Socket{}
	}
	for i := range ss {
		if ss[i].Watchers == nil {
			ss[i].Watchers = []ctl.SocketUse{}
		}
	}
	return ss
}
