package evlistener

import (
	"io"
	"strings"
)

// LogEvents wraps next (nil: none) so that each chunk a process writes
// to channel ("stdout" or "stderr") is also published as a
// PROCESS_LOG_STDOUT or PROCESS_LOG_STDERR event: supervisord's
// stdout_events_enabled and stderr_events_enabled. names gives slot
// wid's supervisor process and group names. While no pool subscribes to
// the event type, a chunk costs one check and no copy.
func (b *Bus) LogEvents(next Sink, channel string, names func(wid int) (process, group string)) Sink {
	return logEventSink{b: b, next: next, channel: channel, name: "PROCESS_LOG_" + strings.ToUpper(channel), names: names}
}

type logEventSink struct {
	b             *Bus
	next          Sink
	channel, name string
	names         func(int) (string, string)
}

func (s logEventSink) Open(wid, pid int) io.WriteCloser {
	w := &logEventWriter{s: s, pid: pid}
	w.process, w.group = s.names(wid)
	if s.next != nil {
		w.next = s.next.Open(wid, pid)
	}
	return w
}

type logEventWriter struct {
	s              logEventSink
	next           io.WriteCloser
	pid            int
	process, group string
}

func (w *logEventWriter) Write(p []byte) (int, error) {
	n, err := len(p), error(nil)
	if w.next != nil {
		n, err = w.next.Write(p)
	}
	if len(p) > 0 && w.s.b.anyWants(w.s.name) {
		w.s.b.Publish(ProcessLog(w.process, w.group, w.pid, w.s.channel, p))
	}
	return n, err
}

func (w *logEventWriter) Close() error {
	if w.next != nil {
		return w.next.Close()
	}
	return nil
}

// anyWants reports whether some pool subscribes to events named name.
func (b *Bus) anyWants(name string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.pools {
		if p.wants(name) {
			return true
		}
	}
	return false
}
