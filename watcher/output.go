package watcher

import (
	"io"
	"os"
	"os/exec"
	"sync"
)

// attachOutput gives the child a pipe for each stream that has a sink
// (/dev/null otherwise). It returns the parent's read ends and the
// child's write ends, which the caller closes once the child started.
func attachOutput(cmd *exec.Cmd, spec Spec) (readers, writers []*os.File, err error) {
	for _, pair := range []struct {
		sink Sink
		dst  *io.Writer
	}{{spec.Stdout, &cmd.Stdout}, {spec.Stderr, &cmd.Stderr}} {
		if pair.sink == nil {
			continue
		}
		r, w, perr := os.Pipe()
		if perr != nil {
			for _, f := range append(readers, writers...) {
				f.Close()
			}
			return nil, nil, perr
		}
		*pair.dst = w // an *os.File: the child gets it directly, no copying goroutine
		readers = append(readers, r)
		writers = append(writers, w)
	}
	return readers, writers, nil
}

// startPumps copies each read end to its sink until EOF; wg tracks them.
// With a tap (ready.log), the lines also go to the process's prober.
func startPumps(wg *sync.WaitGroup, readers []*os.File, spec Spec, wid, pid int, tap *lineTap) {
	sinks := []Sink{}
	if spec.Stdout != nil {
		sinks = append(sinks, spec.Stdout)
	}
	if spec.Stderr != nil {
		sinks = append(sinks, spec.Stderr)
	}
	for i, r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := sinks[i].Open(wid, pid)
			if tap != nil {
				out = &tapWriter{WriteCloser: out, tap: tap}
			}
			pump(r, out)
		}()
	}
}

// bufPool holds read buffers; a pump takes one only while data is ready,
// so thousands of idle children cost no buffer memory.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}
