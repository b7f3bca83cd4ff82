package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/circle-supervisor/circle/ctl"
)

func newUpgradeCmd(g *globals) *cobra.Command {
	var (
		asJSON  bool
		binary  string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "upgrade [--binary PATH]",
		Short: "Replace the running circled by a new binary without touching its processes",
		Long: `Make circled execute a new binary in place: same pid, every process keeps
running untouched (no signal, no closed pipe, no lost output line), and the new
binary adopts them with their restart counts, timers and log rings. The new
binary is the path circled was started from (where a package installs the new
version), or --binary PATH.

Before anything changes circled runs "PATH __upgrade-check", which must prove the
binary runs on this machine and reads the running state's format; if it fails
(missing, not executable, another architecture, another state format) circled
keeps running as it was and upgrade exits 1 with the reason. On success it
waits until the new binary answers and prints both versions.

Not available on Windows, where a process cannot execute another binary in
place: restart the service there.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if binary != "" && !filepath.IsAbs(binary) && g.host == "" && os.Getenv(ctl.HostEnv) == "" {
				// The daemon runs elsewhere: a relative path is the caller's.
				if abs, err := filepath.Abs(binary); err == nil {
					binary = abs
				}
			}
			reply, err := c.Upgrade(cmd.Context(), ctl.UpgradeRequest{Binary: binary})
			if err != nil {
				return fmt.Errorf("upgrade refused, circled keeps running unchanged: %w", err)
			}
			if err := waitUpgraded(cmd.Context(), c, reply, timeout); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), reply)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "circled upgraded from %s to %s (pid %d, %s)\n", reply.From, reply.To, reply.PID, reply.Binary)
			return nil
		},
	}
	cmd.Flags().StringVar(&binary, "binary", "", "the new circled `PATH` (default: the path circled was started from)")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "how long to wait for the new binary to answer")
	jsonFlag(cmd, &asJSON)
	return cmd
}

// waitUpgraded polls GET /v1/version until the new binary answers (same
// pid, Upgrades reached), the old one reports that its exec failed, or
// timeout passes. Connections refused or cut while circled execs are
// retried.
func waitUpgraded(ctx context.Context, c *ctl.Client, reply ctl.UpgradeReply, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		v, err := c.Version(rctx)
		cancel()
		switch {
		case err != nil:
			last = err
		case v.PID != reply.PID:
			return fmt.Errorf("another circled (pid %d, not %d) answers on the socket: the upgrade's outcome is unknown", v.PID, reply.PID)
		case v.Upgrades >= reply.Upgrades:
			return nil
		case v.UpgradeError != "":
			return fmt.Errorf("upgrade failed, circled keeps running version %s: %s", v.Version, v.UpgradeError)
		default:
			last = errors.New("still the old binary")
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the new circled did not answer within %s (%v)", timeout, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
