//go:build unix

package supervisor

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

// idle reports whether no command is in flight on e.
func idle(e *entry) bool {
	e.lane.mu.Lock()
	defer e.lane.mu.Unlock()
	return len(e.lane.live) == 0
}

// The lanes (supervisor.go, "Commands on one watcher") under a hammer:
// restarts, stops, starts, reloads (waiting or not), scaling, signals and
// config reloads of one watcher from 8 goroutines for 3 s (a reload
// may read a half-written file: web is then removed and added again). Every command
// returns (no deadlock); then, with --no-wait commands still in flight,
// the last command decides the final state, and shutdown leaves no
// command behind.
func TestLaneHammer(t *testing.T) {
	dir := t.TempDir()
	body := func(n int) string {
		return fmt.Sprintf("[watcher:web]\ncmd = sleep %d\nnumprocesses = 2\ngraceful_timeout = 5\n", 1000+n)
	}
	path := writeConfig(t, dir, body(0))
	s, stop := newSup(t, path)
	testhelper.Eventually(t, 10*time.Second, "web active", allActive(s))
	e, err := s.get("web")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	web := []string{"web"}

	deadline := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	var cfgMu sync.Mutex
	cfgN := 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; time.Now().Before(deadline); k++ {
				wait := k%2 == 0
				// Errors are expected (superseded, a start cut short): only
				// hangs and the final state matter here.
				switch (i + k) % 7 {
				case 0:
					s.Restart(ctx, web, wait)
				case 1:
					s.Stop(ctx, web, wait)
				case 2:
					s.Start(ctx, web, wait)
				case 3:
					s.Reload(ctx, web, wait)
				case 4:
					s.Incr("web", 1-2*(k%2))
				case 5:
					cfgMu.Lock()
					cfgN++
					os.WriteFile(path, []byte(body(cfgN%3)), 0o644)
					cfgMu.Unlock()
					s.ReloadConfig(ctx)
				case 6:
					s.Signal("web", "CONT", 0, false)
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		buf := make([]byte, 1<<20)
		t.Fatalf("commands still running 90 s after the hammer ended (deadlock?):\n%s", buf[:runtime.Stack(buf, true)])
	}

	// A reload that read the file while another goroutine rewrote it saw
	// no watcher: web may have been removed and added again (a new entry).
	writeConfig(t, dir, body(0))
	if _, err := s.ReloadConfig(ctx); err != nil {
		t.Fatal(err)
	}
	if e, err = s.get("web"); err != nil {
		t.Fatal(err)
	}

	// The last command decides, though commands begun before it are still
	// in flight in the background.
	final := func(up bool) {
		t.Helper()
		for range 5 {
			s.Restart(ctx, web, false)
			s.Reload(ctx, web, false)
			s.Start(ctx, web, false)
			s.Stop(ctx, web, false)
		}
		if up {
			s.Start(ctx, web, false)
		} else if _, err := s.Stop(ctx, web, true); err != nil {
			t.Fatalf("final stop: %v", err)
		}
		testhelper.Eventually(t, 60*time.Second, "no command in flight", func() bool { return idle(e) })
		if e.wanted() != up || e.w.Wanted() != up {
			t.Fatalf("last command wants up=%v: lane %v, watcher %v", up, e.wanted(), e.w.Wanted())
		}
		if !up {
			if pids := e.w.PIDs(); len(pids) > 0 || state(s, "web") != "stopped" {
				t.Fatalf("after the final stop: state %s, pids %v", state(s, "web"), pids)
			}
		}
	}
	final(false)
	final(true)
	final(false)

	// Shutdown with background commands in flight: Run waits for them.
	s.Restart(ctx, web, false)
	s.Reload(ctx, web, false)
	returned := make(chan error, 1)
	go func() { returned <- stop() }()
	select {
	case <-returned:
	case <-time.After(60 * time.Second):
		buf := make([]byte, 1<<20)
		t.Fatalf("shutdown still running after 60 s:\n%s", buf[:runtime.Stack(buf, true)])
	}
	if !idle(e) || len(e.w.PIDs()) > 0 {
		t.Fatalf("after shutdown: commands in flight %v, pids %v", !idle(e), e.w.PIDs())
	}
	if _, err := s.Start(ctx, web, true); err == nil {
		t.Fatal("a start after shutdown was accepted")
	}
}
