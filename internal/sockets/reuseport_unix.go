//go:build unix && !solaris

package sockets

import (
	"os"

	"golang.org/x/sys/unix"
)

func setReusePort(fd int) error {
	return os.NewSyscallError("setsockopt SO_REUSEPORT", unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1))
}
