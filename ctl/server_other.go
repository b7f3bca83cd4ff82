//go:build !unix && !windows

package ctl

import (
	"errors"
	"net"
	"os"
)

func listen(path string, mode os.FileMode) (net.Listener, error) {
	return nil, errors.New("control socket not supported on this platform")
}
