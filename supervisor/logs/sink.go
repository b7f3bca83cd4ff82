package logs

import (
	"bytes"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// maxPartial bounds an unterminated line: beyond it the text so far is
// emitted as a line of its own, so a child that never writes '\n' cannot
// grow circled's memory.
const maxPartial = 64 << 10

// Dest is where a stream's lines go. Writes get whole lines only, so a
// rotating file never splits one.
type Dest interface {
	Write(p []byte) (int, error)
}

// LockedWriter serialises writers sharing one destination (circled's
// stdout) so lines never interleave.
type LockedWriter struct {
	Mu *sync.Mutex
	W  io.Writer
}

func (l LockedWriter) Write(p []byte) (int, error) {
	l.Mu.Lock()
	defer l.Mu.Unlock()
	return l.W.Write(p)
}

// Sink is one watcher stream's capture. It implements watcher.Sink.
type Sink struct {
	Name   string
	Stream int
	Ring   *Ring
	// Dest gives the destination of process wid's lines; nil (or a nil
	// result) discards them (class null).
	Dest func(wid int) Dest
	// Prefix adds "NAME.WID | " to each line written to Dest (StdoutStream).
	Prefix bool
	// TimeLayout, when set, starts each line written to Dest with the
	// time in this Go layout and a space.
	TimeLayout string
	Drops      *Drops
	Log        *slog.Logger
}

// Open implements watcher.Sink.
func (s *Sink) Open(wid, pid int) io.WriteCloser {
	w := &procWriter{s: s, prefix: []byte(s.Name + "." + strconv.Itoa(wid) + " | "), dropped: s.Drops.acquire(pid), pid: pid}
	if s.Dest != nil {
		w.dest = s.Dest(wid)
	}
	return w
}

type procWriter struct {
	s       *Sink
	prefix  []byte
	pid     int
	dest    Dest
	partial []byte
	out     []byte
	dropped *atomic.Int64
}

// Write splits p into whole lines, joining a line split across reads.
func (w *procWriter) Write(p []byte) (int, error) {
	n := len(p)
	if len(w.partial) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.addPartial(p)
			return n, nil
		}
		w.partial = append(w.partial, p[:i+1]...)
		w.emit(w.partial)
		w.partial = w.partial[:0]
		p = p[i+1:]
	}
	if last := bytes.LastIndexByte(p, '\n'); last >= 0 {
		w.emit(p[:last+1])
		p = p[last+1:]
	}
	if len(p) > 0 {
		w.addPartial(p)
	}
	return n, nil
}

func (w *procWriter) addPartial(p []byte) {
	w.partial = append(w.partial, p...)
	if len(w.partial) >= maxPartial {
		w.partial = append(w.partial, '\n')
		w.emit(w.partial)
		w.partial = w.partial[:0]
	}
	if cap(w.partial) > 4*maxPartial {
		w.partial = nil
	}
}

// emit handles a block of complete lines.
func (w *procWriter) emit(lines []byte) {
	s := w.s
	if s.Ring != nil {
		s.Ring.appendLines(s.Stream, w.prefix, lines)
	}
	if w.dest == nil {
		return
	}
	data := lines
	if s.Prefix || s.TimeLayout != "" {
		var ts []byte
		if s.TimeLayout != "" {
			ts = time.Now().AppendFormat(nil, s.TimeLayout)
			ts = append(ts, ' ')
		}
		w.out = w.out[:0]
		for rest := lines; len(rest) > 0; {
			i := bytes.IndexByte(rest, '\n')
			w.out = append(w.out, ts...)
			if s.Prefix {
				w.out = append(w.out, w.prefix...)
			}
			w.out = append(w.out, rest[:i+1]...)
			rest = rest[i+1:]
		}
		data = w.out
		if cap(w.out) > 1<<20 {
			w.out = nil
		}
	}
	if n, err := w.dest.Write(data); err != nil {
		// Keep draining the pipe so the child never blocks; count and
		// report (throttled) what is lost. A Rotating file reports in n
		// the whole lines it kept.
		w.dropped.Add(int64(len(data) - min(max(n, 0), len(data))))
		s.Drops.report(s.Log, s.Name, err)
	}
}

func (w *procWriter) Close() error {
	if len(w.partial) > 0 {
		w.partial = append(w.partial, '\n')
		w.emit(w.partial)
		w.partial = nil
	}
	w.s.Drops.release(w.pid)
	if r, ok := w.dest.(interface{ Release() }); ok {
		r.Release() // the process no longer writes to the shared file
	}
	return nil
}

// Drops counts bytes a destination refused, per pid, while the pid has
// an open stream (so crash churn does not grow the map).
type Drops struct {
	mu      sync.Mutex
	byPID   map[int]*dropCounter
	lastLog atomic.Int64 // unix nanos of the last error logged
}

type dropCounter struct {
	atomic.Int64
	refs int
}

// NewDrops makes a counter set.
func NewDrops() *Drops { return &Drops{byPID: map[int]*dropCounter{}} }

func (d *Drops) acquire(pid int) *atomic.Int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.byPID[pid]
	if c == nil {
		c = &dropCounter{}
		d.byPID[pid] = c
	}
	c.refs++
	return &c.Int64
}

func (d *Drops) release(pid int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c := d.byPID[pid]; c != nil {
		if c.refs--; c.refs <= 0 {
			delete(d.byPID, pid)
		}
	}
}

// Dropped is the bytes lost so far for pid's output.
func (d *Drops) Dropped(pid int) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c := d.byPID[pid]; c != nil {
		return c.Load()
	}
	return 0
}

// report logs a write error at most every 10 s.
func (d *Drops) report(log *slog.Logger, name string, err error) {
	now := time.Now().UnixNano()
	last := d.lastLog.Load()
	if now-last < int64(10*time.Second) || !d.lastLog.CompareAndSwap(last, now) {
		return
	}
	if log != nil {
		log.Error("cannot write output; dropping it (see dropped_bytes in status --json)", "watcher", name, "err", err)
	}
}
