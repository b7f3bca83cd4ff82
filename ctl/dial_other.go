//go:build !windows

package ctl

import (
	"context"
	"errors"
	"io/fs"
	"net"
)

// dial connects to the control socket, after checking that it and its
// directories belong to this user or root (checkSocketPath).
func dial(ctx context.Context, d *net.Dialer, socket string) (net.Conn, error) {
	if err := checkSocketPath(socket); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) && errors.Is(err, fs.ErrNotExist) {
			return nil, pe.Err // as connect(2) would say: no such file or directory
		}
		return nil, err
	}
	return d.DialContext(ctx, "unix", socket)
}
