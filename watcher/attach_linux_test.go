//go:build linux

package watcher

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/cgroup"
	"github.com/circle-supervisor/circle/internal/testhelper"
)

// v2CgroupOf is pid's cgroup v2 path (the "0::" line), or "".
func v2CgroupOf(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			return p
		}
	}
	return ""
}

// Spec.Attach is given the process's own containment cgroup before the
// process starts (it is empty then) and the process runs in it; its done
// is called once the process has ended.
func TestAttachGetsTheProcessCgroup(t *testing.T) {
	tree, err := cgroup.Setup(fmt.Sprintf("circled-attach-test-%d", os.Getpid()), false)
	if err != nil {
		t.Skipf("no writable cgroup v2 for process containment: %v", err)
	}
	defer tree.Close()
	var mu sync.Mutex
	var dirs []string
	var dones int
	attach := func(wid int, dir string) (func(), error) {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil || len(strings.TrimSpace(string(b))) != 0 {
			return nil, fmt.Errorf("cgroup.procs of %s before the start: %q %v", dir, b, err)
		}
		mu.Lock()
		dirs = append(dirs, dir)
		mu.Unlock()
		return func() { mu.Lock(); dones++; mu.Unlock() }, nil
	}
	spec := Spec{
		Name: "att", Argv: []string{"sleep", "100"}, Umask: -1, StopSignal: "TERM",
		GracefulTimeout: helperGrace, NumProcesses: 1, Attach: attach,
		Policy: Policy{Respawn: true, BackoffMax: 10 * time.Millisecond, MaxRetry: 1000,
			Flapping: Flapping{Attempts: 1000, Window: time.Second, RetryIn: time.Second, MaxRetry: 5}},
	}
	w := New(spec, DirectSpawner{}, testLog, nil)
	defer w.Close()
	w.SetCgroups(tree)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.Start(ctx, true); err != nil {
		t.Fatalf("start: %v", err)
	}
	pid := w.Status().Processes[0].PID
	mu.Lock()
	got := append([]string(nil), dirs...)
	mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("Attach called %d times for one process: %v", len(got), got)
	}
	testhelper.Eventually(t, 10*time.Second, "the process in the attached cgroup", func() bool {
		return strings.HasSuffix(got[0], v2CgroupOf(pid)) && v2CgroupOf(pid) != "/"
	})
	if err := w.Stop(ctx, true); err != nil {
		t.Fatalf("stop: %v", err)
	}
	w.Close()
	mu.Lock()
	defer mu.Unlock()
	if dones != 1 {
		t.Fatalf("Attach's done called %d times after the process ended, want 1", dones)
	}
}

// With Spec.Attach but no cgroup of its own the process is not started:
// its limits could not hold it.
func TestAttachWithoutCgroupFails(t *testing.T) {
	called := false
	spec := Spec{
		Name: "attno", Argv: []string{"sleep", "100"}, Umask: -1, StopSignal: "TERM",
		GracefulTimeout: helperGrace, NumProcesses: 1,
		Attach: func(int, string) (func(), error) { called = true; return func() {}, nil },
		Policy: Policy{Respawn: false},
	}
	w := New(spec, DirectSpawner{}, testLog, nil)
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := w.Start(ctx, true)
	if err == nil || !strings.Contains(err.Error(), "no cgroup v2 of its own") {
		t.Fatalf("start without a cgroup: %v, want the limits' refusal", err)
	}
	if called {
		t.Fatal("Attach called without a cgroup")
	}
}
