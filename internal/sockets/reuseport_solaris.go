package sockets

import "errors"

func setReusePort(fd int) error {
	return errors.New("so_reuseport is not supported on this system")
}
