package watcher

import "golang.org/x/sys/unix"

// enlargePipe raises a pipe's capacity to 1 MiB (the default unprivileged
// maximum), best effort; only done for pipes that fill our buffer.
func enlargePipe(fd int) { unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, 1<<20) }
