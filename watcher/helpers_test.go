package watcher

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"
)

// Test helpers shared by the Unix and Windows tests.

// testSpec runs this test binary as a helper process in mode (see the
// per-OS TestMain), n of them. The environment and the graceful timeout
// are per OS (helperEnv, helperGrace): Wine cannot deliver CTRL_BREAK, so
// a Windows stop always waits out the timeout.
func testSpec(t *testing.T, name, mode string, n int) Spec {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Spec{
		Name:            name,
		Argv:            []string{exe},
		Env:             helperEnv(mode),
		Umask:           -1,
		StopSignal:      "TERM",
		StopChildren:    true,
		GracefulTimeout: helperGrace,
		NumProcesses:    n,
		Policy: Policy{
			Respawn: true, MinUptime: time.Second, BackoffMax: 10 * time.Second, MaxRetry: 5,
			Flapping: Flapping{Attempts: 5, Window: 10 * time.Second, RetryIn: 30 * time.Second, MaxRetry: 5},
		},
	}
}

// writePid appends pid to the file at path (the helper processes record
// themselves and their children there).
func writePid(path string, pid int) {
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	fmt.Fprintln(f, pid)
	f.Close()
}

var testLog = func() *slog.Logger {
	if os.Getenv("CIRCLE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}()

// startWatcher starts spec with a DirectSpawner, waits until it runs,
// and stops it when the test ends.
func startWatcher(t *testing.T, spec Spec) *Watcher {
	t.Helper()
	w := New(spec, DirectSpawner{}, testLog, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.Start(ctx, true); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := w.Stop(ctx, true); err != nil {
			t.Errorf("cleanup stop: %v", err)
		}
	})
	return w
}

// restart is what the supervisor's restart does to one watcher: stop,
// then start.
func restart(w *Watcher) func(context.Context, bool) error {
	return func(ctx context.Context, wait bool) error {
		if err := w.Stop(ctx, wait); err != nil {
			return err
		}
		return w.Start(ctx, wait)
	}
}
