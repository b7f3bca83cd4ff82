//go:build unix && !aix

package supervisor

import "golang.org/x/sys/unix"

const wnohang = unix.WNOHANG
