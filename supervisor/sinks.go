package supervisor

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/circle-supervisor/circle/supervisor/config"
	"github.com/circle-supervisor/circle/supervisor/logs"
	"github.com/circle-supervisor/circle/watcher"
)

// ring returns the watcher's output ring, making it on first use. It
// survives restarts and reloads of the watcher; removal closes it.
func (s *Supervisor) ring(name string) *logs.Ring {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rings[name]
	if r == nil {
		r = logs.NewRing()
		s.rings[name] = r
	}
	return r
}

func (s *Supervisor) closeRing(name string) {
	s.mu.Lock()
	r := s.rings[name]
	delete(s.rings, name)
	s.mu.Unlock()
	if r != nil {
		r.Close()
	}
}

// sink builds the capture of one stream of a watcher.
func (s *Supervisor) sink(wc *config.Watcher, st config.Stream, stream int) watcher.Sink {
	k := &logs.Sink{
		Name:       wc.Name,
		Stream:     stream,
		Ring:       s.ring(wc.Name),
		TimeLayout: logs.Layout(st.TimeFormat),
		Drops:      s.drops,
		Log:        s.log,
	}
	switch st.Class {
	case "null":
	case "file", "timed":
		spec := logs.FileSpec{Path: st.Filename, MaxBytes: st.MaxBytes, BackupCount: st.BackupCount,
			MaxAgeDays: st.MaxAge, Compress: st.Compress, Mode: st.FileMode}
		if st.Class == "timed" {
			spec.RotateWhen, spec.RotateInterval = st.RotateWhen, st.RotateInterval
		}
		k.Dest = func(wid int) logs.Dest {
			sp := spec
			sp.Path = strings.ReplaceAll(sp.Path, watcher.WIDToken, watcher.FormatWID(wid, wc.WIDOffset, wc.WIDWidth))
			return s.files.Get(sp)
		}
	default: // circled's own stdout / stderr, lines prefixed NAME.WID |
		d := logs.Dest(logs.LockedWriter{Mu: &s.outMu, W: s.opts.Stdout})
		if stream == logs.Stderr {
			d = logs.LockedWriter{Mu: &s.errMu, W: s.opts.Stderr}
		}
		k.Prefix = true
		k.Dest = func(int) logs.Dest { return d }
	}
	return k
}

// Logs writes a watcher's last lines, then (follow) new ones, until ctx
// ends, the watcher is removed or circled stops.
func (s *Supervisor) Logs(ctx context.Context, name string, lines int, follow bool, stream string, w io.Writer) error {
	if _, err := s.get(name); err != nil {
		return err
	}
	sel := -1
	switch stream {
	case "stdout":
		sel = logs.Stdout
	case "stderr":
		sel = logs.Stderr
	case "":
	default:
		return fmt.Errorf("unknown stream %q (want stdout or stderr)", stream)
	}
	r := s.ring(name)
	data, cursor := r.Tail(lines, sel)
	if _, err := w.Write(data); err != nil { // even empty: sends the headers now
		return nil
	}
	for follow {
		data, next, lost, more, closed := r.Since(cursor, sel)
		cursor = next
		if lost > 0 {
			fmt.Fprintf(w, "circled: %d bytes of output were overwritten before they could be sent\n", lost)
		}
		if len(data) > 0 {
			if _, err := w.Write(data); err != nil {
				return nil
			}
		}
		if closed {
			return nil
		}
		select {
		case <-more:
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

// Reopen reopens every log file: the watchers' and, through
// Options.Reopen, circled's own.
func (s *Supervisor) Reopen() error {
	err := s.files.Reopen()
	if s.opts.Reopen != nil {
		if e := s.opts.Reopen(); e != nil && err == nil {
			err = e
		}
	}
	s.log.Info("log files reopened")
	return err
}
