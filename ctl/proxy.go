package ctl

import (
	"context"
	"errors"
	"io"
	"net"
)

// Proxy copies in to conn and conn to out, for circlectl dial-stdio. When
// in ends, conn's write side is closed (the daemon then ends what it was
// serving and closes the connection); Proxy returns when conn's read side
// ends, out fails or ctx ends, and closes conn. It returns nil when the
// daemon closed the connection or ctx ended.
func Proxy(ctx context.Context, conn net.Conn, in io.Reader, out io.Writer) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	go func() {
		io.Copy(conn, in)
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			if cw.CloseWrite() == nil {
				return
			}
		}
		conn.Close()
	}()
	_, err := io.Copy(out, conn)
	conn.Close()
	if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
