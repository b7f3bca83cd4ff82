//go:build unix

package watcher

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

// workerSpec runs sh -c 'worker & worker & wait' where each worker traps
// TERM, needs 0.5 s to clean up, then appends "done PID" to the returned
// file (and "ready PID" when it starts).
func workerSpec(t *testing.T, name string) (Spec, string) {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	worker := filepath.Join(dir, "worker.sh")
	os.WriteFile(worker, []byte(`trap 'sleep 0.5; echo done $$ >> "$OUT"; exit 0' TERM
echo ready $$ >> "$OUT"
sleep 1000 &
wait
`), 0o755)
	spec := testSpec(t, name, "", 1)
	spec.Argv = []string{"/bin/sh", "-c", `/bin/sh "$W" & /bin/sh "$W" & wait`}
	spec.Env = []string{"PATH=" + os.Getenv("PATH"), "W=" + worker, "OUT=" + out}
	return spec, out
}

func countPrefix(path, prefix string) int {
	b, _ := os.ReadFile(path)
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// During a stop the leader (sh) dies on TERM at once; its workers keep
// their grace period instead of being SIGKILLed with it (issue 12 §3).
func TestStopKeepsGraceForRestOfGroup(t *testing.T) {
	spec, out := workerSpec(t, "grace")
	w := startWatcher(t, spec)
	testhelper.Eventually(t, 20*time.Second, "2 workers ready", func() bool { return countPrefix(out, "ready") == 2 })
	if err := w.Stop(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if n := countPrefix(out, "done"); n != 2 {
		b, _ := os.ReadFile(out)
		t.Fatalf("after stop, %d workers finished their cleanup, want 2 (they got SIGKILL?):\n%s", n, b)
	}
}

// A leader that exits on its own: the rest of its group gets the stop
// signal (and its grace period), and the replacement starts only once
// they are all gone.
func TestLeaderExitStopsRestBeforeReplacement(t *testing.T) {
	spec, out := workerSpec(t, "lead")
	spec.Policy.MinUptime = 0 // restart at once
	w := startWatcher(t, spec)
	testhelper.Eventually(t, 20*time.Second, "2 workers ready", func() bool { return countPrefix(out, "ready") == 2 })
	old := w.PIDs()[0]
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testhelper.Eventually(t, 10*time.Second, "a new main process", func() bool {
		ps := w.Status().Processes
		return len(ps) == 1 && ps[0].State == ProcRunning && ps[0].PID != old
	})
	testhelper.Eventually(t, 20*time.Second, "4 workers ready", func() bool { return countPrefix(out, "ready") == 4 })
	b, _ := os.ReadFile(out)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	// ready, ready (old), done, done (old, after TERM), ready, ready (new).
	var kinds []string
	for _, l := range lines {
		kinds = append(kinds, strings.Fields(l)[0])
	}
	if got := strings.Join(kinds, " "); got != "ready ready done done ready ready" {
		t.Fatalf("events = %q, want the old workers done before the new ones start:\n%s", got, b)
	}
}

// A stop that has not finished (the workers are still cleaning up) and a
// start right after it: the slot gets a new process once the old ones
// are gone, instead of staying empty.
func TestStartDuringStopStartsReplacement(t *testing.T) {
	spec, out := workerSpec(t, "restart")
	w := startWatcher(t, spec)
	testhelper.Eventually(t, 20*time.Second, "2 workers ready", func() bool { return countPrefix(out, "ready") == 2 })
	old := w.PIDs()[0]
	if err := w.Stop(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Start(ctx, true); err != nil {
		t.Fatalf("start after stop: %v (status %+v)", err, w.Status())
	}
	ps := w.Status().Processes
	if len(ps) != 1 || ps[0].State != ProcRunning || ps[0].PID == old {
		t.Fatalf("after stop+start: %+v, want a new running process", ps)
	}
	if n := countPrefix(out, "done"); n != 2 {
		t.Fatalf("%d old workers finished their cleanup before the new start, want 2", n)
	}
}
