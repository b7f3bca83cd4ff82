//go:build unix

package watcher

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A reload whose new process cannot become ready beside its predecessor
// (it holds a lock, as a server its port) fails with the new process's
// exit, and the old process keeps its slot (issue 15): the replacement
// is stopped, never the server that works.
func TestReloadKeepsOldWhenNewFails(t *testing.T) {
	spec := testSpec(t, "rl", "lock", 1)
	lock := filepath.Join(t.TempDir(), "lock")
	spec.Env = append(spec.Env, "CIRCLE_LOCK="+lock, "GORACE=atexit_sleep_ms=0")
	// The new process's quick failure must come before MinUptime, even
	// from a -race child on a loaded machine.
	spec.Policy.MinUptime = 2 * time.Second
	w := startWatcher(t, spec)
	// (Runs before the stop: the holder then exits at once.)
	t.Cleanup(func() { os.WriteFile(lock+".failed", nil, 0o644) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	old := w.Status().Processes[0].PID
	for i := 1; i <= 2; i++ {
		err := w.Reload(ctx, true)
		if err == nil || !strings.Contains(err.Error(), "rl.1: exited with code 1") || !strings.Contains(err.Error(), "before it was ready") {
			t.Fatalf("reload %d: err = %v, want the new process's exit", i, err)
		}
		os.Remove(lock + ".failed")
		st := w.Status()
		if len(st.Processes) != 1 || st.Processes[0].PID != old || st.Processes[0].State != ProcRunning || st.State != StateActive {
			t.Fatalf("reload %d: status = %+v, want the old pid %d running", i, st, old)
		}
		if !strings.Contains(st.Processes[0].Error, "reload: exited with code 1") {
			t.Fatalf("reload %d: the slot does not report the failure: %q", i, st.Processes[0].Error)
		}
	}
}
