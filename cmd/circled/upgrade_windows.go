package main

import (
	"context"
	"errors"
	"net"
	"os/exec"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/supervisor"
)

// Upgrade implements ctl.UpgradeBackend: never on Windows.
func (u *upgrader) Upgrade(ctx context.Context, req ctl.UpgradeRequest) (ctl.UpgradeReply, func(), error) {
	return ctl.UpgradeReply{}, nil, upgradeRefused{"on Windows a process cannot execute a new binary in place; " +
		"restart the circled service instead (its Job Objects stop the processes with it, and it starts them again)"}
}

func (u *upgrader) runCheck(ctx context.Context, cmd *exec.Cmd) error { return cmd.Run() }

// readUpgradeState: no live upgrade on Windows.
func readUpgradeState() (*supervisor.UpgradeState, error) { return nil, nil }

// listenerFromFD: no live upgrade on Windows.
func listenerFromFD(fd int) (net.Listener, error) {
	return nil, errors.New("no live upgrade on Windows")
}
