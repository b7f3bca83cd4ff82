package main

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// logfileWriter is circled's own logfile. When the file cannot be written
// (a full disk, a refused symbolic link), what is lost would otherwise go
// unnoticed: the error goes to stderr instead (at most every
// logfileWarnEvery), with the bytes dropped so far, and once writes work
// again recovered is called (in a goroutine: it may log) with the bytes
// lost meanwhile.
type logfileWriter struct {
	w         io.Writer
	path      string
	stderr    io.Writer
	recovered func(dropped int64)

	mu       sync.Mutex
	dropped  int64 // since the last successful write
	lastWarn time.Time
}

const logfileWarnEvery = 10 * time.Second

func (l *logfileWriter) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.dropped += int64(len(p) - min(max(n, 0), len(p)))
		if now := time.Now(); l.lastWarn.IsZero() || now.Sub(l.lastWarn) >= logfileWarnEvery {
			l.lastWarn = now
			fmt.Fprintf(l.stderr, "circled: cannot write logfile %s: %v (%d bytes dropped so far)\n", l.path, err, l.dropped)
		}
		return n, err
	}
	if l.dropped > 0 && len(p) > 0 {
		d := l.dropped
		l.dropped, l.lastWarn = 0, time.Time{}
		fmt.Fprintf(l.stderr, "circled: logfile %s is writable again; %d bytes were dropped\n", l.path, d)
		if l.recovered != nil {
			go l.recovered(d)
		}
	}
	return n, nil
}
