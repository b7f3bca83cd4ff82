//go:build unix && !linux

package safefile

import "golang.org/x/sys/unix"

const dirOpenFlags = unix.O_RDONLY
