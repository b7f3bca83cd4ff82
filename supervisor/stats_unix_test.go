//go:build unix

package supervisor

import (
	"maps"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

// stats forgets the CPU sample of every process that is gone: the table
// holds exactly the live processes (it used to keep every pid ever
// sampled, and a reused pid could show negative CPU).
func TestStatsForgetsReapedProcesses(t *testing.T) {
	dir := t.TempDir()
	s, _ := newSup(t, writeConfig(t, dir, "[circled]\nsocket = "+filepath.Join(dir, "s.sock")+"\n[watcher:w]\ncmd = sleep 1013\nnumprocesses = 3\n"))
	pids := func() []int { p, _ := s.PIDs("w"); slices.Sort(p); return p }
	testhelper.Eventually(t, 20*time.Second, "3 processes", func() bool { return len(pids()) == 3 })
	old := pids()
	if _, err := s.Stats([]string{"w"}); err != nil {
		t.Fatal(err)
	}
	for _, pid := range old {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	testhelper.Eventually(t, 10*time.Second, "3 new processes", func() bool {
		p := pids()
		if len(p) != 3 {
			return false
		}
		for _, pid := range p {
			if slices.Contains(old, pid) {
				return false
			}
		}
		return true
	})
	st, err := s.Stats([]string{"w"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range st[0].Processes {
		if p.CPU < 0 {
			t.Errorf("pid %d: negative CPU %f", p.PID, p.CPU)
		}
	}
	sampler.mu.Lock()
	held := slices.Sorted(maps.Keys(sampler.last))
	sampler.mu.Unlock()
	for _, pid := range old {
		if slices.Contains(held, pid) {
			t.Errorf("sample of reaped pid %d still held (table: %v, live: %v)", pid, held, pids())
		}
	}
}
