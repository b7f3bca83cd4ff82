//go:build !unix

package watcher

import (
	"io"
	"os"
	"sync/atomic"
)

// pump copies r to w until EOF (stop is for live upgrades, which do not
// exist here: it returns true only when stopped with r and w open).
func pumpStop(r *os.File, w io.WriteCloser, stop *atomic.Bool) bool {
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			w.Write(buf[:n])
		}
		if err != nil {
			if stop.Load() && os.IsTimeout(err) {
				return true
			}
			r.Close()
			w.Close()
			return false
		}
	}
}

// pump copies r to w until EOF, then closes both.
func pump(r *os.File, w io.WriteCloser) { pumpStop(r, w, new(atomic.Bool)) }
