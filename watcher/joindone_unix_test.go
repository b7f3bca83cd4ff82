//go:build unix

package watcher

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

// joinCounter is a Spec.Join whose directory is a plain one with a
// cgroup.procs file (the trampoline only writes the child's pid there)
// and whose every done counts its calls.
type joinCounter struct {
	dir   string
	mu    sync.Mutex
	calls []*atomic.Int32 // one per Join: its done's calls
}

func newJoinCounter(t *testing.T) *joinCounter {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return &joinCounter{dir: dir}
}

func (j *joinCounter) join(int) ([]string, func(), error) {
	n := new(atomic.Int32)
	j.mu.Lock()
	j.calls = append(j.calls, n)
	j.mu.Unlock()
	return []string{j.dir}, func() { n.Add(1) }, nil
}

// counts returns how many Joins there were and how many of their dones
// ran once; more than one call of a done fails the test.
func (j *joinCounter) counts(t *testing.T) (joins, done int) {
	t.Helper()
	j.mu.Lock()
	defer j.mu.Unlock()
	for i, n := range j.calls {
		switch c := n.Load(); {
		case c == 1:
			done++
		case c > 1:
			t.Fatalf("done of join %d called %d times", i, c)
		}
	}
	return len(j.calls), done
}

// Each process that ran has its Join's done called once it has ended,
// and each still running at the watcher's Stop once it is stopped.
func TestJoinDoneAfterExit(t *testing.T) {
	jc := newJoinCounter(t)
	spec := Spec{
		Name: "jd", Argv: []string{"/bin/true"}, Umask: -1, StopSignal: "TERM",
		GracefulTimeout: helperGrace, NumProcesses: 1, Join: jc.join,
		Policy: Policy{Respawn: true, BackoffMax: 10 * time.Millisecond, MaxRetry: 1000,
			Flapping: Flapping{Attempts: 1000, Window: time.Second, RetryIn: time.Second, MaxRetry: 5}},
	}
	w := New(spec, DirectSpawner{}, testLog, nil)
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.Start(ctx, false); err != nil {
		t.Fatalf("start: %v", err)
	}
	testhelper.Eventually(t, 20*time.Second, "three processes ended and their dones called", func() bool {
		_, done := jc.counts(t)
		return done >= 3
	})
	if err := w.Stop(ctx, true); err != nil {
		t.Fatalf("stop: %v", err)
	}
	w.Close() // waits for the dones it started
	joins, done := jc.counts(t)
	if done != joins {
		t.Errorf("%d joins, %d dones called", joins, done)
	}
}

// A spawn that fails after Join (here: its directory does not exist)
// calls that Join's done.
func TestJoinDoneSpawnFails(t *testing.T) {
	jc := newJoinCounter(t)
	spec := Spec{
		Name: "jdf", Argv: []string{"/bin/true"}, Dir: filepath.Join(t.TempDir(), "missing"), Umask: -1,
		StopSignal: "TERM", GracefulTimeout: helperGrace, NumProcesses: 1, Join: jc.join,
		Policy: Policy{Respawn: true, BackoffMax: 10 * time.Millisecond, MaxRetry: 1000,
			Flapping: Flapping{Attempts: 1000, Window: time.Second, RetryIn: time.Second, MaxRetry: 5}},
	}
	w := New(spec, DirectSpawner{}, testLog, nil)
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.Start(ctx, false); err != nil {
		t.Fatalf("start: %v", err)
	}
	testhelper.Eventually(t, 20*time.Second, "two failed spawns' dones called", func() bool {
		_, done := jc.counts(t)
		return done >= 2
	})
	w.Close()
	joins, done := jc.counts(t)
	if joins == 0 || done != joins {
		t.Errorf("%d joins, %d dones called", joins, done)
	}
}
