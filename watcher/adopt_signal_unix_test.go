//go:build unix

package watcher

import (
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

// lineSink collects every process's output of a watcher.
type lineSink struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (s *lineSink) Open(wid, pid int) io.WriteCloser { return s }
func (s *lineSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}
func (s *lineSink) Close() error { return nil }
func (s *lineSink) lines() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.buf.String(), "\n")
}

// TestSignalPumpsThenStopOrThaw: the pumps of two frozen watchers are
// told to stop first (SignalPumps) and waited for after (StopPumps), as
// a live upgrade does across all watchers; no line is read between
// StopPumps and Thaw. A watcher thawed after SignalPumps without
// StopPumps (an upgrade refused in between) gets its pumps back: its
// output flows again.
func TestSignalPumpsThenStopOrThaw(t *testing.T) {
	var sinks [2]*lineSink
	var ws [2]*Watcher
	for i := range ws {
		spec := shSpec(t, []string{"sigA", "sigB"}[i], `i=0; while :; do i=$((i+1)); echo "line $i"; sleep 0.01; done`)
		sinks[i] = &lineSink{}
		spec.Stdout = sinks[i]
		ws[i] = startWatcher(t, spec)
	}
	for i := range ws {
		testhelper.Poll(t, 20*time.Second, "output flowing", func() (bool, string) { return sinks[i].lines() > 3, "" })
	}
	var fs [2]*Frozen
	for i, w := range ws {
		ok, desc := testhelper.Wait(20*time.Second, func() (bool, string) {
			f, err := w.Freeze()
			if err == nil {
				fs[i] = f
				return true, ""
			}
			if !errors.Is(err, ErrBusy) {
				t.Fatal(err)
			}
			return false, err.Error()
		})
		if !ok {
			t.Fatalf("freeze: %s", desc)
		}
	}
	fs[0].SignalPumps()
	fs[1].SignalPumps()
	fs[0].StopPumps()
	if len(fs[0].State.Pipes) == 0 {
		t.Fatalf("StopPumps after SignalPumps recorded no pipe")
	}
	stopped := sinks[0].lines()
	// fs[1]: signalled, never waited for; Thaw must wait and resume.
	fs[1].Thaw()
	n1 := sinks[1].lines()
	testhelper.Poll(t, 20*time.Second, "the thawed watcher's output flowing again", func() (bool, string) {
		return sinks[1].lines() > n1+3, ""
	})
	if got := sinks[0].lines(); got != stopped {
		t.Fatalf("a stopped pump read %d more lines", got-stopped)
	}
	fs[0].Thaw()
	testhelper.Poll(t, 20*time.Second, "the stopped then thawed watcher's output flowing again", func() (bool, string) {
		return sinks[0].lines() > stopped+3, ""
	})
}
