//go:build unix

package supervisor

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
	"github.com/circle-supervisor/circle/watcher"
)

func watcherMetrics(s *Supervisor, name string) WatcherMetrics {
	for _, w := range s.Metrics(false).Watchers {
		if w.Name == name {
			return w
		}
	}
	return WatcherMetrics{}
}

func exitCount(w WatcherMetrics, code, signal string) uint64 {
	for _, e := range w.Exits {
		if e.Code == code && e.Signal == signal {
			return e.N
		}
	}
	return 0
}

// Restarts are counted by reason (a kill is a crash, restart is manual,
// reload is reload), exits by signal or code, and each shows as events.
func TestRestartReasonsAndExitCounts(t *testing.T) {
	dir := t.TempDir()
	p := writeConfig(t, dir, "[circled]\nsocket = "+filepath.Join(dir, "s.sock")+`
[watcher:w]
cmd = sleep 1000
graceful_timeout = 5

[watcher:quitter]
cmd = sh -c "sleep 0.05; exit 3"
respawn = never
`)
	t0 := time.Now()
	s, _ := newSup(t, p)
	sub := s.Subscribe([]string{"w"}, t0) // from the start: replayed
	defer sub.Close()
	testhelper.Eventually(t, 20*time.Second, "w active", func() bool { return state(s, "w") == "active" })
	pids, _ := s.PIDs("w")
	if len(pids) != 1 {
		t.Fatalf("pids = %v", pids)
	}
	syscall.Kill(pids[0], syscall.SIGKILL)
	testhelper.Eventually(t, 20*time.Second, "a crash restart counted", func() bool {
		return watcherMetrics(s, "w").Restarts[ReasonCrash] == 1
	})
	if n := exitCount(watcherMetrics(s, "w"), "", "KILL"); n != 1 {
		t.Fatalf("exits by KILL = %d, want 1", n)
	}
	if _, err := s.Restart(context.Background(), []string{"w"}, true); err != nil {
		t.Fatal(err)
	}
	testhelper.Eventually(t, 20*time.Second, "a manual restart counted", func() bool {
		return watcherMetrics(s, "w").Restarts[ReasonManual] == 1
	})
	if _, err := s.Reload(context.Background(), []string{"w"}, true); err != nil {
		t.Fatal(err)
	}
	// Reload counts synchronously, before it returns.
	m := watcherMetrics(s, "w")
	if m.Restarts[ReasonReload] != 1 || m.Restarts[ReasonCrash] != 1 || m.Restarts[ReasonManual] != 1 {
		t.Fatalf("restarts = %v, want crash, manual and reload 1 each", m.Restarts)
	}
	testhelper.Eventually(t, 20*time.Second, "quitter's exit counted", func() bool {
		return exitCount(watcherMetrics(s, "quitter"), "3", "") == 1
	})

	// The events of w, in order: the first spawn, the kill's exit, its
	// respawn and a crash restart.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []string
	want := []string{"spawn", "exit KILL", "spawn", "restart crash"}
	for len(got) < len(want) {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("events so far %v: %v", got, err)
		}
		switch ev.Type {
		case EventSpawn:
			got = append(got, "spawn")
		case EventExit:
			d := ev.Signal
			if ev.Code != nil {
				d = strconv.Itoa(*ev.Code)
			}
			got = append(got, "exit "+d)
		case EventRestart:
			got = append(got, "restart "+ev.Reason)
		}
		if ev.Watcher != "w" {
			t.Fatalf("filtered subscription got %+v", ev)
		}
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("events = %v, want %v", got, want)
		}
	}
}

func TestHealthFailure(t *testing.T) {
	for err, want := range map[string]bool{
		"health.http: connection refused (3 failures in a row)": true,
		"watchdog: no WATCHDOG=1 within 2s":                     true,
		"exit code 1 after 20ms":                                false,
		"":                                                      false,
	} {
		if got := healthFailure(err); got != want {
			t.Errorf("healthFailure(%q) = %v, want %v", err, got, want)
		}
	}
}

// A process that fails its liveness check is replaced: an unhealthy
// event, a restart counted as health; exec checks' own processes are
// neither events nor exits; ready follows readiness.
func TestHealthRestartReason(t *testing.T) {
	dir := t.TempDir()
	sick := filepath.Join(dir, "sick")
	p := writeConfig(t, dir, "[circled]\nsocket = "+filepath.Join(dir, "s.sock")+`
[watcher:w]
cmd = sleep 1000
min_uptime = 0
graceful_timeout = 5
health.exec = test ! -e `+sick+`
health.interval = 0.05
health.retries = 1
`)
	t0 := time.Now()
	s, _ := newSup(t, p)
	sub := s.Subscribe(nil, t0) // from the start: replayed
	defer sub.Close()
	testhelper.Eventually(t, 20*time.Second, "w active", func() bool { return state(s, "w") == "active" })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	next := func() Event {
		t.Helper()
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	// The first process: spawn, then ready; the health checks that pass
	// meanwhile are no spawn or exit events (nor exits, below).
	var firstPID int
	for firstPID == 0 {
		if ev := next(); ev.Type == EventReady {
			firstPID = ev.PID
		} else if ev.Type == EventExit {
			t.Fatalf("an exit before anything failed: %+v", ev)
		}
	}
	if err := os.WriteFile(sick, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var seen []string
	for !slices.Contains(seen, "restart") {
		ev := next()
		switch ev.Type {
		case EventUnhealthy:
			if ev.PID != firstPID {
				t.Fatalf("unhealthy %+v, want pid %d", ev, firstPID)
			}
			seen = append(seen, "unhealthy")
			os.Remove(sick) // the next process is healthy
		case EventRestart:
			if ev.Reason != ReasonHealth {
				t.Fatalf("restart %+v, want reason health", ev)
			}
			seen = append(seen, "restart")
		case EventSpawn, EventExit:
			if ev.PID == 0 || ev.WID != 1 {
				t.Fatalf("%+v: a check's process?", ev)
			}
		}
	}
	if !slices.Equal(seen, []string{"unhealthy", "restart"}) {
		t.Fatalf("events %v, want unhealthy then restart", seen)
	}
	m := watcherMetrics(s, "w")
	if m.Restarts[ReasonHealth] != 1 || m.Restarts[ReasonCrash] != 0 {
		t.Fatalf("restarts = %v, want health 1", m.Restarts)
	}
	// Only the unhealthy process's exit: the checks' own processes (one
	// failed, others passed) are not the watcher's exits.
	var n uint64
	for _, e := range m.Exits {
		n += e.N
	}
	if n != 1 {
		t.Fatalf("exits = %+v, want the one stopped process", m.Exits)
	}
}

// The spawner wrap keeps the reaper's OrphanEvents: without it a
// lingering process group is never seen gone and a stop can hang.
func TestSpawnerWrapKeepsOrphanEvents(t *testing.T) {
	dir := t.TempDir()
	p := writeConfig(t, dir, "[circled]\nsocket = "+filepath.Join(dir, "s.sock")+"\n[watcher:w]\ncmd = sleep 1000\nautostart = false\n")
	s, _ := newSup(t, p)
	if _, ok := s.opts.Spawner.(watcher.OrphanEvents); !ok {
		t.Fatal("the reaper does not implement OrphanEvents")
	}
	if _, ok := s.spawnerFor("w").(watcher.OrphanEvents); !ok {
		t.Fatal("the wrapped spawner lost OrphanEvents")
	}
	if _, ok := (&Supervisor{opts: Options{Spawner: watcher.DirectSpawner{}}}).spawnerFor("w").(watcher.OrphanEvents); ok {
		t.Fatal("a spawner without OrphanEvents gained it")
	}
}

// Config reloads: counted by result, each a reload event (the summary,
// or the error as reason); the last success time moves only on success.
func TestConfigReloadCountsAndEvents(t *testing.T) {
	dir := t.TempDir()
	head := "[circled]\nsocket = " + filepath.Join(dir, "s.sock") + "\n"
	p := writeConfig(t, dir, head+"[watcher:a]\ncmd = sleep 1000\n")
	s, _ := newSup(t, p)
	sub := s.Subscribe([]string{"nothing-matches"}, time.Time{})
	defer sub.Close()
	start := s.Metrics(false).LastReloadOK
	writeConfig(t, dir, head+"[watcher:a]\ncmd = sleep 1000\n[watcher:b]\ncmd = sleep 1000\n")
	if _, err := s.ReloadConfig(context.Background()); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, dir, head+"[watcher:a]\nbogus_key = 1\n")
	if _, err := s.ReloadConfig(context.Background()); err == nil {
		t.Fatal("a bad config reloaded")
	}
	m := s.Metrics(false)
	if m.ReloadsOK != 1 || m.ReloadsFailed != 1 || !m.LastReloadOK.After(start) {
		t.Fatalf("reloads ok %d failed %d, last ok %v (start %v)", m.ReloadsOK, m.ReloadsFailed, m.LastReloadOK, start)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev, err := sub.Next(ctx) // reload events pass any watcher filter
	if err != nil || ev.Type != EventReload || ev.Summary == nil || !slices.Equal(ev.Summary.Added, []string{"b"}) {
		t.Fatalf("first event %+v (%v), want the reload adding b", ev, err)
	}
	ev, err = sub.Next(ctx)
	if err != nil || ev.Type != EventReload || ev.Summary != nil || !strings.Contains(ev.Reason, "bogus_key") {
		t.Fatalf("second event %+v (%v), want the failed reload's error", ev, err)
	}
}
