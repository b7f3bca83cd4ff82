package watcher

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"strconv"
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

// startPumps copies each read end to its sink until EOF.
func startPumps(readers []*os.File, spec Spec, wid, pid int) {
	sinks := []Sink{}
	if spec.Stdout != nil {
		sinks = append(sinks, spec.Stdout)
	}
	if spec.Stderr != nil {
		sinks = append(sinks, spec.Stderr)
	}
	for i, r := range readers {
		go pump(r, sinks[i].Open(wid, pid))
	}
}

// bufPool holds read buffers; a pump takes one only while data is ready,
// so thousands of idle children cost no buffer memory.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// PrefixSink writes each line to Out as "NAME.WID | line". Writers of
// every process share Mu so lines never interleave.
type PrefixSink struct {
	Name string
	Out  io.Writer
	Mu   *sync.Mutex
	// NoPrefix writes whole lines without the prefix (file streams).
	NoPrefix bool
}

// Open implements Sink.
func (s PrefixSink) Open(wid, pid int) io.WriteCloser {
	lw := &lineWriter{out: s.Out, mu: s.Mu}
	if !s.NoPrefix {
		lw.prefix = []byte(s.Name + "." + strconv.Itoa(wid) + " | ")
	}
	return lw
}

type lineWriter struct {
	prefix  []byte
	out     io.Writer
	mu      *sync.Mutex
	partial []byte
	buf     []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	l.buf = l.buf[:0]
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			l.partial = append(l.partial, p...)
			break
		}
		l.buf = append(l.buf, l.prefix...)
		l.buf = append(l.buf, l.partial...)
		l.buf = append(l.buf, p[:i+1]...)
		l.partial = l.partial[:0]
		p = p[i+1:]
	}
	if len(l.buf) > 0 {
		l.mu.Lock()
		_, err := l.out.Write(l.buf)
		l.mu.Unlock()
		if cap(l.buf) > 256<<10 {
			l.buf = nil
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (l *lineWriter) Close() error {
	if len(l.partial) > 0 {
		l.Write([]byte{'\n'})
	}
	return nil
}
