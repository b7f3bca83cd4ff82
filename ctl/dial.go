package ctl

import (
	"context"
	"net"
)

// dial connects to the control socket. (Windows will dial the named pipe
// here once it lands; AF_UNIX works on Windows 10+ meanwhile.)
func dial(ctx context.Context, d *net.Dialer, socket string) (net.Conn, error) {
	return d.DialContext(ctx, "unix", socket)
}
