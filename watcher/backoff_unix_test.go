//go:build unix

package watcher

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// A process that ran at least backoff_max and is then replaced by a
// reload resets its slot's backoff (issue 12 §6): the replacement of a
// server that holds a lock (a port) fails once while its predecessor
// stops, and must be retried after the first backoff step every time,
// not after one that doubles with every reload (0.1, 0.2, 0.4, 0.8 s...).
func TestReloadResetsBackoffOfLongRun(t *testing.T) {
	spec := testSpec(t, "rl", "lock", 1)
	spec.Env = append(spec.Env, "CIRCLE_LOCK="+filepath.Join(t.TempDir(), "lock"), "GORACE=atexit_sleep_ms=0")
	spec.Policy.BackoffMax = 1500 * time.Millisecond
	spec.Policy.Flapping.Attempts = 0 // the quick failures are not flapping here
	w := startWatcher(t, spec)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := 1; i <= 5; i++ {
		started := w.Status().Processes[0].StartedAt
		eventually(t, 10*time.Second, "a run of backoff_max", func() bool {
			return time.Since(started) >= spec.Policy.BackoffMax
		})
		reload := time.Now()
		if err := w.Reload(ctx, true); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		// The replacement failed once (the old process held the lock)
		// and its retry runs.
		var p ProcStatus
		eventually(t, 10*time.Second, "the retried replacement running", func() bool {
			p = w.Status().Processes[0]
			return p.State == ProcRunning && p.HasExit && p.LastExit.Code == 1 &&
				p.LastExit.Time.After(reload) && p.StartedAt.After(p.LastExit.Time)
		})
		// 0.1 s ±10% plus scheduling; without the reset the fourth reload
		// waits 0.8 s and the fifth 1.5 s.
		if d := p.StartedAt.Sub(p.LastExit.Time); d > 600*time.Millisecond {
			t.Fatalf("reload %d: the replacement was retried after %s, want the first backoff step (0.1 s)", i, d)
		} else {
			t.Logf("reload %d: retried after %s", i, d.Round(time.Millisecond))
		}
	}
}

// The restarts after a crash and after a flapping pause are unplanned;
// none is planned (issue 20 §3).
func TestFlappingRestartsAreUnplanned(t *testing.T) {
	spec := testSpec(t, "fl", "exit", 1)
	spec.Env = append(spec.Env, "CIRCLE_CODE=3", "GORACE=atexit_sleep_ms=0")
	spec.Policy.Flapping = Flapping{Attempts: 2, Window: 10 * time.Second, RetryIn: 50 * time.Millisecond, MaxRetry: -1}
	w := New(spec, DirectSpawner{}, testLog, nil)
	if err := w.Start(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Stop(context.Background(), true) })
	sawFlapping := false
	var p ProcStatus
	eventually(t, 20*time.Second, "restarts through a flapping pause", func() bool {
		st := w.Status()
		sawFlapping = sawFlapping || st.State == StateFlapping
		if len(st.Processes) == 0 {
			return false
		}
		p = st.Processes[0]
		if p.PlannedRestarts != 0 {
			t.Fatalf("planned restarts = %d, want 0: %+v", p.PlannedRestarts, p)
		}
		return sawFlapping && p.Restarts >= 3
	})
	t.Logf("%+v", p)
}
