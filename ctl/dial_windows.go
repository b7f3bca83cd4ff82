package ctl

import (
	"context"
	"net"

	"github.com/Microsoft/go-winio"
)

// dial connects to the control named pipe, within d.Timeout.
func dial(ctx context.Context, d *net.Dialer, socket string) (net.Conn, error) {
	pipe, ok := pipePath(socket)
	if !ok {
		return nil, &notPipeError{socket}
	}
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	return winio.DialPipeContext(ctx, pipe)
}
