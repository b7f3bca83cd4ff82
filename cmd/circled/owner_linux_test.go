//go:build linux

package main

// Issue 14 §1, the watcher's half (one owner per watcher), against the
// real circled and circlectl binaries: the failures the issue lists that
// come from one watcher's state being changed from several places.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/internal/testhelper"
)

// ctlWithin runs circlectl and fails the test if it has not returned
// within limit (a hung client is the failure these tests look for). The
// command's own error (a superseded stop, say) is returned, not fatal.
func (p *circledProc) ctlWithin(limit time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "circlectl"), append([]string{"--socket", p.socket}, args...)...)
	cmd.Env = append(cmd.Environ(), "GORACE=atexit_sleep_ms=10")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		p.t.Errorf("circlectl %v did not return within %s", args, limit)
	}
	return string(out), err
}

// `circlectl stop --no-wait web; circlectl start web` while web's
// processes are in their grace period: start returns, and web ends up
// active with new processes running (it used to stay "starting" with no
// process for good, and start hung).
func TestOwnerStopNoWaitThenStartInGrace(t *testing.T) {
	dir := t.TempDir()
	// The shell ignores TERM: each process stays in its grace period
	// (3 s) until SIGKILL.
	cfg := "[circled]\nwatch_config = false\n\n[watcher:web]\nnumprocesses = 2\ngraceful_timeout = 3\n" +
		"cmd = sh -c 'trap \"\" TERM; while :; do sleep 0.1; done'\n"
	p := startCircled(t, dir, cfg)
	p.up()
	p.waitState("web", "active")
	old := p.livePIDs("web")
	if out, err := p.ctlWithin(30*time.Second, "stop", "--no-wait", "web"); err != nil {
		t.Fatalf("stop --no-wait: %v\n%s", err, out)
	}
	start := time.Now()
	out, err := p.ctlWithin(60*time.Second, "start", "web")
	t.Logf("start returned after %v: %v %s", time.Since(start).Round(time.Millisecond), err, out)
	p.waitState("web", "active")
	now := p.livePIDs("web")
	if len(now) != 2 {
		t.Fatalf("web runs %v, want 2 processes", now)
	}
	for _, pid := range old {
		if slices.Contains(now, pid) {
			// Start won over the stop before it took effect: the old
			// process keeps running, which is also the last command's state.
			continue
		}
		testhelper.Eventually(t, waitTimeout, fmt.Sprintf("old pid %d to go", pid), func() bool { return !pidAlive(pid) })
	}
	// A second start is a no-op that returns at once.
	if out, err := p.ctlWithin(30*time.Second, "start", "web"); err != nil {
		t.Fatalf("second start: %v\n%s", err, out)
	}
	p.quit()
}

// Many parallel restart/stop/start clients of one watcher, with config
// reloads: every client returns (a stop overtaken by a start says so
// rather than waiting forever), and the watcher obeys the last command.
func TestOwnerParallelClientsReturn(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 5 s of parallel clients; skipped with -short")
	}
	dir := t.TempDir()
	cfg := "[circled]\nwatch_config = false\n\n[watcher:web]\nnumprocesses = 2\ngraceful_timeout = 2\n" +
		"cmd = sh -c 'trap \"sleep 0.3; exit 0\" TERM; while :; do sleep 0.1; done'\n"
	p := startCircled(t, dir, cfg)
	p.up()
	p.waitState("web", "active")
	cmds := [][]string{
		{"restart", "web"}, {"stop", "web"}, {"start", "web"},
		{"stop", "--no-wait", "web"}, {"start", "--no-wait", "web"}, {"restart", "--no-wait", "web"},
		{"reload", "web"}, {"reloadconfig"}, {"status", "web"},
	}
	const limit = 90 * time.Second // the issue saw clients hang for more than 120 s
	var wg sync.WaitGroup
	var mu sync.Mutex
	calls, failed := 0, 0
	end := time.Now().Add(5 * time.Second)
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				_, err := p.ctlWithin(limit, cmds[rand.IntN(len(cmds))]...)
				mu.Lock()
				calls++
				if err != nil {
					failed++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d client calls, %d exited non-zero (superseded, stopped while starting)", calls, failed)
	if t.Failed() {
		t.FailNow()
	}
	if out, err := p.ctlWithin(limit, "start", "web"); err != nil {
		t.Fatalf("final start: %v\n%s", err, out)
	}
	p.waitState("web", "active")
	if out, err := p.ctlWithin(limit, "stop", "web"); err != nil {
		t.Fatalf("final stop: %v\n%s", err, out)
	}
	p.waitState("web", "stopped")
	p.quit()
}

// status answers while a watcher spawns 2000 processes (issue 14: a mass
// spawn held the watcher's lock and status waited for it). The figure is
// logged; only a generous bound is asserted.
func TestOwnerStatusDuringMassSpawn(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 2000 processes; skipped with -short")
	}
	const n = 2000
	dir := t.TempDir()
	cfg := fmt.Sprintf("[circled]\nwatch_config = false\n\n[watcher:big]\nautostart = false\nnumprocesses = %d\ncmd = sleep 1000\n", n)
	p := startCircled(t, dir, cfg)
	p.up()
	c := ctl.NewClient(p.socket)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	started := make(chan error, 1)
	go func() {
		_, err := c.Start(ctx, []string{"big"}, true)
		started <- err
	}()
	var worst time.Duration
	during := 0 // status calls answered while the spawn was under way
	var startErr error
	for done := false; !done; {
		select {
		case startErr = <-started:
			done = true
			continue
		default:
		}
		t0 := time.Now()
		st, err := c.Status(ctx, []string{"big"})
		d := time.Since(t0)
		if err != nil {
			t.Fatalf("status: %v", err)
		}
		running := 0
		for _, pr := range st.Watchers[0].Processes {
			if pr.PID > 0 {
				running++
			}
		}
		if running < n {
			during++
			worst = max(worst, d)
		}
	}
	if startErr != nil {
		t.Fatalf("start: %v", startErr)
	}
	t.Logf("%d status calls during the spawn of %d processes; the slowest took %v", during, n, worst.Round(time.Microsecond))
	if during == 0 {
		// A spawn of 2000 processes takes seconds: no status answered
		// meanwhile means status waited for the spawn (the defect).
		t.Fatalf("no status call was answered while %d processes spawned", n)
	}
	if worst > 10*time.Second { // (the issue saw 115 s; a loaded 2-core machine running -race binaries is slow)
		t.Fatalf("status took %v while the watcher spawned", worst)
	}
	qctx, qcancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer qcancel()
	if _, err := c.Stop(qctx, []string{"big"}, true); err != nil {
		t.Fatalf("stop: %v", err)
	}
	p.quit()
}
