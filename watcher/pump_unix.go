//go:build unix

package watcher

import (
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// floodChunk: a stream that gives at least this much per hotWindow is a
// flood; its pipe is then enlarged and the pump switches to blocking reads.
const floodChunk = 64 << 10

// hotWindow: a pump stays in blocking mode while it keeps reading at
// least floodChunk bytes per hotWindow.
const hotWindow = 100 * time.Millisecond

// hotBuf is the read size in hot mode: the enlarged pipe's capacity, so
// one wake-up can drain a whole pipe.
const hotBuf = 1 << 20

// hotPool keeps hot buffers between floods.
var hotPool = sync.Pool{New: func() any { b := make([]byte, hotBuf); return &b }}

// pump copies r to w.
//
// Idle or chatty children are read through the runtime poller, borrowing
// a buffer only for the reads themselves, so thousands of idle children
// cost neither threads nor buffers. A flooding child ("hot") gets a 1 MiB
// pipe and blocking reads of up to 1 MiB, like cat: a wake-up per write
// through the poller costs several times the copy itself, and with the
// default 64 KiB pipe the child blocks on every 64 KiB it writes. The pump
// switches back once the flood slows down.
//
// stop (set before r's read deadline is made to expire) makes it return
// true between two reads, with r and w open and r non-blocking: the bytes
// the child wrote since stay in the pipe (live upgrade). Otherwise it
// closes both at EOF and returns false.
func pumpStop(r *os.File, w io.WriteCloser, stop *atomic.Bool) (stopped bool) {
	defer func() {
		if !stopped {
			r.Close()
			w.Close()
		}
	}()
	rc, err := r.SyscallConn()
	if err != nil {
		return false
	}
	enlarged := false // a pipe is enlarged once, when it first gets hot
	var hot *[]byte   // the hot buffer, nil when cold
	defer func() {
		if hot != nil {
			hotPool.Put(hot)
		}
	}()
	var windowStart time.Time
	var windowBytes int
	for {
		if stop.Load() {
			if hot != nil {
				rc.Control(func(fd uintptr) { unix.SetNonblock(int(fd), true) })
			}
			return true
		}
		var got int
		eof := false
		err := rc.Read(func(fd uintptr) bool {
			if hot != nil && got == 0 {
				// Blocking reads: wait for data a bounded time, so that
				// a pause in the flood turns the pump cold and a stop
				// is seen.
				pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
				if n, perr := unix.Poll(pfd, int(hotWindow/time.Millisecond)); n == 0 || perr != nil {
					return true
				}
			}
			bp := hot
			if bp == nil {
				bp = bufPool.Get().(*[]byte)
				defer bufPool.Put(bp)
			}
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
				w.Write((*bp)[:n]) // on a write error keep draining: the child must never block
				if hot != nil || n < len(*bp) {
					return true
				}
			}
		})
		if err != nil && stop.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
			continue // stopped at a read boundary (checked above)
		}
		if err != nil || eof {
			return false
		}
		windowBytes += got
		now := time.Now()
		// Turn hot as soon as a window has seen a flood's worth; turn
		// cold only when a whole window has not.
		if windowEnded := now.Sub(windowStart) > hotWindow; windowEnded || (hot == nil && windowBytes >= floodChunk) {
			if shouldBeHot := windowBytes >= floodChunk; shouldBeHot != (hot != nil) {
				if shouldBeHot {
					hot = hotPool.Get().(*[]byte)
				} else {
					hotPool.Put(hot)
					hot = nil
				}
				rc.Control(func(fd uintptr) {
					unix.SetNonblock(int(fd), !shouldBeHot)
					if shouldBeHot && !enlarged {
						enlarged = true
						enlargePipe(int(fd))
					}
				})
			}
			windowStart, windowBytes = now, 0
		}
	}
}

// pump copies r to w until EOF, then closes both.
func pump(r *os.File, w io.WriteCloser) { pumpStop(r, w, new(atomic.Bool)) }
