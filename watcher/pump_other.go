//go:build !unix

package watcher

import (
	"io"
	"os"
)

func pump(r *os.File, w io.WriteCloser) {
	defer r.Close()
	defer w.Close()
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			w.Write(buf[:n])
		}
		if err != nil {
			return
		}
	}
}
