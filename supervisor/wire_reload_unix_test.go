//go:build unix

package supervisor

import (
	"context"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

// A reloadconfig whose request context already ended (the ctl client
// gave up while another reload held opMu) still stops a watcher it
// removes: the processes do not run on unmanaged, and nothing is left
// after shutdown. (A reviewer's reproduction.)
func TestWireReloadCancelledCtxStopsRemoved(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, "[watcher:keep]\ncmd = sleep 1000\n[watcher:gone]\ncmd = sleep 1003\n")
	s, stop := newSup(t, path)
	testhelper.Eventually(t, 10*time.Second, "all active", allActive(s))
	gone, _ := s.PIDs("gone")
	keep, _ := s.PIDs("keep")
	if len(gone) != 1 || len(keep) != 1 {
		t.Fatalf("pids gone %v keep %v", gone, keep)
	}
	t.Cleanup(func() { syscall.Kill(-gone[0], syscall.SIGKILL); syscall.Kill(-keep[0], syscall.SIGKILL) })
	writeConfig(t, dir, "[watcher:keep]\ncmd = sleep 1000\n")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sum, err := s.ReloadConfig(ctx)
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if !slices.Equal(sum.Removed, []string{"gone"}) {
		t.Fatalf("summary %s", sum)
	}
	if _, err := s.get("gone"); err == nil {
		t.Fatalf("gone still known after its stop")
	}
	testhelper.Eventually(t, 20*time.Second, fmt.Sprintf("removed watcher's pid %d gone", gone[0]), func() bool {
		return syscall.Kill(gone[0], 0) != nil
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, p := range append(gone, keep...) {
		if syscall.Kill(p, 0) == nil {
			t.Fatalf("pid %d alive after shutdown", p)
		}
	}
}

// A config change of the command replaces a running watcher slot by
// slot: at every moment at least one process of it runs (issue 15).
func TestWireReloadReplacesSlotBySlot(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, "[watcher:w]\ncmd = sleep 1000\nnumprocesses = 2\n")
	s, _ := newSup(t, path)
	testhelper.Eventually(t, 10*time.Second, "all active", allActive(s))
	old, _ := s.PIDs("w")
	writeConfig(t, dir, "[watcher:w]\ncmd = sleep 1001\nnumprocesses = 2\n")
	done := make(chan struct{})
	minRunning := 2
	go func() {
		defer close(done)
		for {
			select {
			case <-time.After(time.Millisecond):
			case <-done:
				return
			}
			st, _, _ := s.Status([]string{"w"})
			n := 0
			for _, p := range st[0].Processes {
				if p.PID != 0 {
					n++
				}
			}
			if n < minRunning {
				minRunning = n
			}
			if s.Stopping() {
				return
			}
			select {
			case <-done:
				return
			default:
			}
		}
	}()
	sum, err := s.ReloadConfig(context.Background())
	done <- struct{}{}
	<-done
	if err != nil || !slices.Equal(sum.Restarted, []string{"w"}) || sum.Failed != nil {
		t.Fatalf("reload: %s %v", sum, err)
	}
	now, _ := s.PIDs("w")
	if len(now) != 2 || slices.Contains(now, old[0]) || slices.Contains(now, old[1]) {
		t.Fatalf("pids before %v after %v", old, now)
	}
	if minRunning < 1 {
		t.Fatalf("a moment with no process running during the replacement")
	}
}
