//go:build unix

package supervisor

import (
	"context"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
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
	s, _ := newSup(t, p)
	sub := s.Subscribe([]string{"w"}, time.Time{})
	defer sub.Close()
	eventually(t, 20*time.Second, "w active", func() bool { return state(s, "w") == "active" })
	pids, _ := s.PIDs("w")
	if len(pids) != 1 {
		t.Fatalf("pids = %v", pids)
	}
	syscall.Kill(pids[0], syscall.SIGKILL)
	eventually(t, 20*time.Second, "a crash restart counted", func() bool {
		return watcherMetrics(s, "w").Restarts[ReasonCrash] == 1
	})
	if n := exitCount(watcherMetrics(s, "w"), "", "KILL"); n != 1 {
		t.Fatalf("exits by KILL = %d, want 1", n)
	}
	if _, err := s.Restart(context.Background(), []string{"w"}, true); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "a manual restart counted", func() bool {
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
	eventually(t, 20*time.Second, "quitter's exit counted", func() bool {
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
