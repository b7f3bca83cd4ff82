package sockets

import (
	"os"

	"golang.org/x/sys/unix"
)

// bindToDevice sets SO_BINDTODEVICE (needs CAP_NET_RAW before Linux 5.7).
func bindToDevice(fd int, ifname string) error {
	return os.NewSyscallError("setsockopt SO_BINDTODEVICE "+ifname, unix.BindToDevice(fd, ifname))
}
