//go:build unix

package watcher

import (
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// floodChunk is a read big enough to call the child a flood: its pipe is
// then enlarged and the pump switches to blocking reads.
const floodChunk = 64 << 10

// hotWindow: a pump stays in blocking mode while it keeps reading at
// least floodChunk bytes per hotWindow.
const hotWindow = 100 * time.Millisecond

// pump copies r to w.
//
// Idle or chatty children are read through the runtime poller, borrowing
// a buffer only for the reads themselves, so thousands of idle children
// cost neither threads nor buffers. A flooding child's pipe is switched to
// blocking reads on a thread of its own, like cat: a wakeup per write
// through the poller costs several times the copy itself. It switches back
// once the flood slows down.
func pump(r *os.File, w io.WriteCloser) {
	defer r.Close()
	defer w.Close()
	rc, err := r.SyscallConn()
	if err != nil {
		return
	}
	enlarged, hot := false, false
	var windowStart time.Time
	var windowBytes int
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
					enlarged = true
					enlargePipe(int(fd))
				}
				w.Write((*bp)[:n]) // on a write error keep draining: the child must never block
				if hot || n < len(*bp) {
					return true
				}
			}
		})
		if err != nil || eof {
			return
		}
		now := time.Now()
		if now.Sub(windowStart) > hotWindow {
			shouldBeHot := windowBytes >= floodChunk
			if shouldBeHot != hot {
				hot = shouldBeHot
				rc.Control(func(fd uintptr) { unix.SetNonblock(int(fd), !hot) })
			}
			windowStart, windowBytes = now, 0
		}
		windowBytes += got
	}
}
