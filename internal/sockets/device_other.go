//go:build unix && !linux

package sockets

import "errors"

func bindToDevice(fd int, ifname string) error {
	return errors.New("interface (SO_BINDTODEVICE) is only supported on Linux")
}
