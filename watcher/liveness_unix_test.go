//go:build unix

package watcher

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

// TestDigestCountsLivenessRestarts: the digest tells the restarts that
// followed a failed liveness check from crashes, so the metrics/events
// observer names the reason even when it never saw the process unhealthy
// (the slot's error is cleared at the next spawn). Before, a loaded host
// had the supervisor count a health restart as a crash.
func TestDigestCountsLivenessRestarts(t *testing.T) {
	dir := t.TempDir()
	sick := filepath.Join(dir, "sick")
	spec := shSpec(t, "live", "exec sleep 100")
	spec.Health = HealthSpec{Exec: "test ! -e " + sick, Interval: 50 * time.Millisecond, Timeout: 5 * time.Second, Retries: 1}
	w := newWatcher(t, spec)
	if err := w.Start(ctx30(t), true); err != nil {
		t.Fatal(err)
	}
	digest := func() SlotDigest {
		var d Digest
		if !w.Digest(&d) || len(d.Slots) != 1 {
			t.Fatalf("digest %+v", d)
		}
		return d.Slots[0]
	}
	testhelper.Eventually(t, 20*time.Second, "healthy", func() bool { return w.Status().Processes[0].Health == "healthy" })

	// A crash: an unplanned restart, not a liveness one.
	pid := digest().PID
	syscall.Kill(pid, syscall.SIGKILL)
	testhelper.Eventually(t, 20*time.Second, "a restart after the crash", func() bool {
		d := digest()
		return d.Restarts == 1 && d.PID != 0 && d.PID != pid
	})
	if d := digest(); d.LivenessRestarts != 0 {
		t.Fatalf("after a crash: %+v, want no liveness restart", d)
	}

	// Unhealthy: stopped and replaced; every restart from now on is a
	// liveness one (a replacement may fail too before the file goes).
	testhelper.Eventually(t, 20*time.Second, "healthy again", func() bool { return w.Status().Processes[0].Health == "healthy" })
	if err := os.WriteFile(sick, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	testhelper.Eventually(t, 20*time.Second, "a restart after unhealthy", func() bool { return digest().Restarts >= 2 })
	os.Remove(sick)
	testhelper.Eventually(t, 20*time.Second, "healthy after the liveness restarts", func() bool { return w.Status().Processes[0].Health == "healthy" })
	if d := digest(); d.LivenessRestarts != d.Restarts-1 || d.LivenessRestarts < 1 {
		t.Fatalf("after a liveness failure: %+v, want every restart but the crash counted as liveness", d)
	}
}
