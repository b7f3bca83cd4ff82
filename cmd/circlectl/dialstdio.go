package main

import (
	"github.com/spf13/cobra"

	"github.com/circle-supervisor/circle/ctl"
)

func newDialStdioCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "dial-stdio",
		Short: "Connect stdin and stdout to the control socket (what -H ssh:// runs on the host)",
		Long: `Connect stdin and stdout to the local control socket, resolved as every
command does (--socket, -c, $CIRCLED_SOCKET, the default) and checked the
same way (exit 4 when it is unsafe or nobody answers). circlectl -H
ssh://host runs it on the host over ssh. It ignores $CIRCLED_HOST. It ends
when circled closes the connection; when stdin ends, it half-closes the
connection so that circled finishes what it was serving.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if g.host != "" {
				return usageErrorf("dial-stdio connects to the local socket: no -H")
			}
			socket, err := g.localSocket()
			if err != nil {
				return err
			}
			conn, err := ctl.Dial(cmd.Context(), socket)
			if err != nil {
				return err
			}
			return ctl.Proxy(cmd.Context(), conn, cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
}
