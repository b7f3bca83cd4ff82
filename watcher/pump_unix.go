//go:build unix

package watcher

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// pump copies r to w. It waits for readability through the runtime
// poller and borrows a buffer only for the read itself.
func pump(r *os.File, w io.WriteCloser) {
	defer r.Close()
	defer w.Close()
	rc, err := r.SyscallConn()
	if err != nil {
		return
	}
	for {
		var n int
		var rerr error
		var bp *[]byte
		err := rc.Read(func(fd uintptr) bool {
			bp = bufPool.Get().(*[]byte)
			for {
				n, rerr = unix.Read(int(fd), *bp)
				if rerr != unix.EINTR {
					break
				}
			}
			if rerr == unix.EAGAIN {
				bufPool.Put(bp)
				bp = nil
				return false
			}
			return true
		})
		if bp != nil && n > 0 {
			w.Write((*bp)[:n]) // on a write error keep draining: the child must never block
		}
		if bp != nil {
			bufPool.Put(bp)
		}
		if err != nil || rerr != nil || n <= 0 {
			return
		}
	}
}
