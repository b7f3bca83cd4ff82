//go:build unix

package watcher

import (
	"context"
	"errors"
	"math/rand/v2"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestHammerOneWatcher runs parallel starts, stops, restarts, scales,
// updates and reloads of one watcher with real processes for a few
// seconds (issue 14): every call returns (none waits forever for a
// condition a later command made impossible), the watcher then obeys the
// last command, and once it is stopped and closed no goroutine is left.
func TestHammerOneWatcher(t *testing.T) {
	base := runtime.NumGoroutine()
	spec := testSpec(t, "hammer", "sleep", 2)
	spec.GracefulTimeout = 2 * time.Second
	spec.Policy.MinUptime = 50 * time.Millisecond
	w := New(spec, DirectSpawner{}, testLog, nil)

	const callLimit = 30 * time.Second // a call slower than this is stuck
	var calls, errs atomic.Int64
	do := func(what string, f func(ctx context.Context) error) {
		ctx, cancel := context.WithTimeout(context.Background(), callLimit)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- f(ctx) }()
		select {
		case err := <-done:
			calls.Add(1)
			if err != nil {
				errs.Add(1)
				if errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("%s: did not return within %s: %v", what, callLimit, err)
				}
			}
		case <-time.After(callLimit + 5*time.Second):
			buf := make([]byte, 1<<20)
			t.Errorf("%s: stuck for %s\n%s", what, callLimit+5*time.Second, buf[:runtime.Stack(buf, true)])
		}
	}
	ops := []struct {
		name string
		f    func(ctx context.Context) error
	}{
		{"start", func(ctx context.Context) error { return w.Start(ctx, true) }},
		{"start --no-wait", func(ctx context.Context) error { return w.Start(ctx, false) }},
		{"stop", func(ctx context.Context) error { return w.Stop(ctx, true) }},
		{"stop --no-wait", func(ctx context.Context) error { return w.Stop(ctx, false) }},
		{"restart", func(ctx context.Context) error { return restart(w)(ctx, true) }},
		{"reload", func(ctx context.Context) error { return w.Reload(ctx, true) }},
		{"reload --no-wait", func(ctx context.Context) error { return w.Reload(ctx, false) }},
		{"incr", func(context.Context) error { _, err := w.IncrMax(1, 5); return ignoreTooMany(err) }},
		{"decr", func(context.Context) error { w.Incr(-1); return nil }},
		{"update", func(context.Context) error {
			sp := spec
			sp.NumProcesses = 1 + rand.IntN(4)
			w.Update(sp)
			return nil
		}},
		{"status", func(context.Context) error { w.Status(); return nil }},
		{"signal", func(context.Context) error { w.Signal("CONT", 0, true); return nil }},
	}
	var wg sync.WaitGroup
	end := time.Now().Add(3 * time.Second)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				op := ops[rand.IntN(len(ops))]
				do(op.name, op.f)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d calls, %d returned an error (superseded, stopped while starting, ...)", calls.Load(), errs.Load())
	if t.Failed() {
		t.FailNow()
	}

	// The last command wins: start, then stop.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w.Update(spec) // 2 processes
	if err := w.Start(ctx, true); err != nil {
		t.Fatalf("final start: %v", err)
	}
	st := w.Status()
	running := 0
	var pids []int
	for _, p := range st.Processes {
		if p.State == ProcRunning {
			running++
			pids = append(pids, p.PID)
		}
	}
	if st.State != StateActive || st.NumProcesses != 2 || running != 2 {
		t.Fatalf("after the final start: %+v", st)
	}
	if err := w.Stop(ctx, true); err != nil {
		t.Fatalf("final stop: %v", err)
	}
	if st := w.Status(); st.State != StateStopped {
		t.Fatalf("after the final stop: %+v", st)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("pid %d alive after the final stop", pid)
		}
	}
	w.Close()
	if err := w.Start(ctx, false); !errors.Is(err, ErrClosed) {
		t.Fatalf("start after close = %v", err)
	}
	// Goroutines end shortly after (the spawner's waits return, timers
	// fire into a closed watcher): poll with a deadline.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after:\n%s", base, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ignoreTooMany(err error) error {
	if err != nil && strings.Contains(err.Error(), "too many") {
		return nil
	}
	return err
}

// Status answers while the watcher spawns thousands of processes: fork
// and exec run outside the owner (issue 14 asks for 50 ms; a loaded
// machine running -race can exceed any bound, so the figure is logged
// and only a generous one asserted).
func TestStatusDuringMassSpawn(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 2000 processes")
	}
	const n = 2000
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep program")
	}
	spec := shSpec(t, "mass", "")
	spec.Argv = []string{sleep, "1000"}
	spec.NumProcesses = n
	spec.Policy.MinUptime = 0
	w := newWatcher(t, spec)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	started := make(chan error, 1)
	go func() { started <- w.Start(ctx, true) }()
	var worst, total time.Duration
	calls := 0
	for {
		select {
		case err := <-started:
			if err != nil {
				t.Fatal(err)
			}
			if calls == 0 {
				// Starting 2000 processes takes seconds: no Status
				// answered meanwhile means Status waited for the spawn.
				t.Fatalf("no Status call was answered while %d processes started", n)
			}
			t.Logf("%d Status calls while %d processes started: slowest %v, mean %v", calls, n, worst, total/time.Duration(calls))
			if worst > 10*time.Second { // (it took 115 s when the spawn held the lock)
				t.Fatalf("Status took %v during the spawn", worst)
			}
			return
		default:
		}
		t0 := time.Now()
		st := w.Status()
		d := time.Since(t0)
		if len(st.Processes) < n || st.State != StateActive {
			calls++
			total += d
			worst = max(worst, d)
		}
		time.Sleep(time.Millisecond)
	}
}
