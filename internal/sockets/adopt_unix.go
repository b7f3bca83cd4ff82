//go:build unix

package sockets

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/circle-supervisor/circle/supervisor/config"
)

// adoptFile makes the File of an inherited socket descriptor as Bind
// makes one: while blocking (no poller), then in c's mode.
func adoptFile(fd int, c config.Socket) (*os.File, error) {
	if err := unix.SetNonblock(fd, false); err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	f := os.NewFile(uintptr(fd), "socket:"+c.Name)
	if !c.Blocking {
		if err := unix.SetNonblock(fd, true); err != nil {
			return nil, os.NewSyscallError("fcntl O_NONBLOCK", err)
		}
	}
	return f, nil
}
