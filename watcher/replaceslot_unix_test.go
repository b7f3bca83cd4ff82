//go:build unix

package watcher

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

// spawnedPIDs reads the pids the script appended to path.
func spawnedPIDs(path string) []string {
	b, _ := os.ReadFile(path)
	return strings.Fields(string(b))
}

// ReplaceSlot for a slot whose replacement is already in flight
// (max_age or an earlier ReplaceSlot started it; the new process is not
// ready yet) queues a second ticket; once the first replacement is done the
// second one replaces the new, healthy process too.
func TestReplaceSlotDuringReplacementReplacesOnce(t *testing.T) {
	dir := t.TempDir()
	spawned := filepath.Join(dir, "spawned")
	gate := filepath.Join(dir, "go")
	spec := shSpec(t, "rs", "echo $$ >> "+spawned+"; exec sleep 100")
	spec.Policy.MinUptime = 0
	spec.Ready = ReadySpec{Exec: "test -e " + gate, Timeout: 20 * time.Second, Interval: 20 * time.Millisecond}
	os.WriteFile(gate, nil, 0o644)
	w := newWatcher(t, spec)
	if err := w.Start(ctx30(t), true); err != nil {
		t.Fatal(err)
	}
	first := w.PIDs()[0]
	os.Remove(gate) // the replacement will wait for readiness
	if err := w.ReplaceSlot(1, "first (max_age, say)"); err != nil {
		t.Fatal(err)
	}
	testhelper.Eventually(t, 10*time.Second, "the replacement to be spawned", func() bool { return len(spawnedPIDs(spawned)) >= 2 })
	// While it waits for readiness, the old process goes over max_memory.
	if err := w.ReplaceSlot(1, "second (max_memory over, same old process)"); err != nil {
		t.Fatal(err)
	}
	queued := 0
	w.call(func() { queued = len(w.replQ) })
	os.WriteFile(gate, nil, 0o644)
	testhelper.Eventually(t, 20*time.Second, "the old process to be replaced", func() bool {
		p := w.PIDs()
		return len(p) == 1 && p[0] != first && !alive(first)
	})
	second := spawnedPIDs(spawned)[1]
	// Give a second replacement the time to show (it starts at once).
	ok, _ := testhelper.Wait(3*time.Second, func() (bool, string) { return len(spawnedPIDs(spawned)) > 2, "" })
	if queued > 0 || ok {
		t.Fatalf("one over-memory process, two replacements: a second ticket was queued (%d) while the slot's replacement was in flight; spawned %v (the healthy replacement %s was replaced too: now %v)",
			queued, spawnedPIDs(spawned), second, w.PIDs())
	}
}

// a slot scaled away while its ReplaceSlot replacement waits for
// readiness: both processes of the slot end, and the watcher's single
// replacement lane is free again (a later ReplaceSlot of another slot works).
func TestReplaceSlotThenScaledAway(t *testing.T) {
	dir := t.TempDir()
	spawned := filepath.Join(dir, "spawned")
	gate := filepath.Join(dir, "go")
	spec := shSpec(t, "rs", "echo $$ >> "+spawned+"; exec sleep 100")
	spec.NumProcesses = 2
	spec.Policy.MinUptime = 0
	spec.Ready = ReadySpec{Exec: "test -e " + gate, Timeout: 20 * time.Second, Interval: 20 * time.Millisecond}
	os.WriteFile(gate, nil, 0o644)
	w := newWatcher(t, spec)
	if err := w.Start(ctx30(t), true); err != nil {
		t.Fatal(err)
	}
	before := w.PIDs()
	os.Remove(gate)
	if err := w.ReplaceSlot(2, "max_memory"); err != nil {
		t.Fatal(err)
	}
	testhelper.Eventually(t, 10*time.Second, "the replacement to be spawned", func() bool { return len(spawnedPIDs(spawned)) >= 3 })
	newPID := spawnedPIDs(spawned)[2]
	if n := w.Incr(-1); n != 1 {
		t.Fatalf("Incr(-1) = %d", n)
	}
	os.WriteFile(gate, nil, 0o644)
	testhelper.Eventually(t, 20*time.Second, "slot 2's old and new processes to end", func() bool {
		np, _ := strconv.Atoi(newPID)
		return !alive(before[1]) && !alive(np) && len(w.PIDs()) == 1
	})
	// The lane is free: slot 1 can still be replaced.
	if err := w.ReplaceSlot(1, "max_memory"); err != nil {
		t.Fatal(err)
	}
	testhelper.Eventually(t, 20*time.Second, "slot 1 to be replaced after slot 2 was scaled away mid-replacement", func() bool {
		p := w.PIDs()
		return len(p) == 1 && p[0] != before[0] && !alive(before[0])
	})
}
