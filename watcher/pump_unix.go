//go:build unix

package watcher

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// floodChunk is a read big enough to call the child a flood: its pipe is
// then enlarged.
const floodChunk = 64 << 10

// pump copies r to w. It waits for readability through the runtime
// poller and borrows a buffer only for the reads themselves, so idle
// children cost no buffer memory. Each wakeup drains the pipe.
func pump(r *os.File, w io.WriteCloser) {
	defer r.Close()
	defer w.Close()
	rc, err := r.SyscallConn()
	if err != nil {
		return
	}
	enlarged := false
	for {
		var got int
		eof := false
		err := rc.Read(func(fd uintptr) bool {
			bp := bufPool.Get().(*[]byte)
			defer bufPool.Put(bp)
			for {
				n, rerr := unix.Read(int(fd), *bp)
				if rerr == unix.EINTR {
					continue
				}
				if rerr == unix.EAGAIN {
					return got > 0 // nothing at all yet: wait for the poller
				}
				if rerr != nil || n <= 0 {
					eof = true
					return true
				}
				got += n
				if n >= floodChunk && !enlarged {
					// A flooding child: a bigger pipe means fewer, larger reads.
					enlarged = true
					enlargePipe(int(fd))
				}
				w.Write((*bp)[:n]) // on a write error keep draining: the child must never block
				if n < len(*bp) {
					return true // drained
				}
			}
		})
		if err != nil || eof {
			return
		}
	}
}
