//go:build !windows

package ctl

import (
	"context"
	"net"
)

// dial connects to the control socket.
func dial(ctx context.Context, d *net.Dialer, socket string) (net.Conn, error) {
	return d.DialContext(ctx, "unix", socket)
}
