package cgroup

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func setup(t *testing.T) *Tree {
	t.Helper()
	tr, err := Setup("circled-test-"+filepath.Base(t.TempDir()), false)
	if err != nil {
		t.Skipf("SKIP: no writable cgroup v2 here: %v", err)
	}
	t.Cleanup(func() {
		KillTree(tr.Path())
		deadline := time.Now().Add(5 * time.Second)
		for PopulatedPath(tr.Path()) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if err := RemoveTree(tr.Path()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return tr
}

// A process that escapes its session (setsid) is still in its cgroup:
// listed, killed with it, and the cgroup's emptying is an event.
func TestProcContainsEscapes(t *testing.T) {
	tr := setup(t)
	c, err := tr.NewProc("web", 1)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", "setsid sleep 1000 & sleep 1000")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Prepare(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := c.Started(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(c.Pids()) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("pids in %s: %v, want sh and two sleeps", c.Path(), c.Pids())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !c.Populated() {
		t.Fatal("not populated")
	}
	changed := make(chan struct{}, 16)
	cancel := c.Watch(func() { changed <- struct{}{} })
	defer cancel()
	c.Kill()
	cmd.Wait()
	// The setsid'd sleep re-parents to init (or a subreaper) and is reaped there.
	for c.Populated() {
		select {
		case <-changed:
		case <-time.After(10 * time.Second):
			t.Fatalf("no cgroup.events change; pids %v", c.Pids())
		}
	}
	if err := c.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.Path()); !os.IsNotExist(err) {
		t.Fatalf("cgroup still there: %v", err)
	}
}

// The per-restart cost cgroups add: make a cell, read cgroup.events
// once, remove it.
func BenchmarkCellLifecycle(b *testing.B) {
	tr, err := Setup("circled-bench-"+strconv.Itoa(os.Getpid()), false)
	if err != nil {
		b.Skipf("SKIP: no writable cgroup v2 here: %v", err)
	}
	defer RemoveTree(tr.Path())
	for b.Loop() {
		c, err := tr.NewProc("w", 1)
		if err != nil {
			b.Fatal(err)
		}
		c.Populated()
		c.Remove()
	}
}

// A process that made cgroups below its own (it may, where it runs as
// root) still has every process listed, and its cgroup is removed
// deepest first once they are gone; a populated one stays. A cgroup
// without children costs a stat, not a listing (hasChildren).
func TestProcNestedCgroups(t *testing.T) {
	tr := setup(t)
	c, err := tr.NewProc("web", 1)
	if err != nil {
		t.Fatal(err)
	}
	if hasChildren(c.Path()) {
		t.Errorf("a new cgroup has children (link count not 2 + subdirectories?)")
	}
	sub := filepath.Join(c.Path(), "a", "b")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if !hasChildren(c.Path()) || !hasChildren(filepath.Join(c.Path(), "a")) || hasChildren(sub) {
		t.Errorf("hasChildren: %v %v %v, want true true false", hasChildren(c.Path()), hasChildren(filepath.Join(c.Path(), "a")), hasChildren(sub))
	}
	cmd := exec.Command("sleep", "1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	if err := writeFile(filepath.Join(sub, "cgroup.procs"), strconv.Itoa(cmd.Process.Pid)); err != nil {
		t.Fatal(err)
	}
	if p := c.Pids(); len(p) != 1 || p[0] != cmd.Process.Pid {
		t.Fatalf("Pids = %v, want [%d] (two levels down)", p, cmd.Process.Pid)
	}
	if err := c.Remove(); err == nil {
		t.Fatal("Remove of a populated tree succeeded")
	}
	if _, err := os.Stat(sub); err != nil {
		t.Fatalf("the populated cgroup went: %v", err)
	}
	c.Kill()
	cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for c.Populated() {
		if time.Now().After(deadline) {
			t.Fatalf("still populated: %v", c.Pids())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := c.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.Path()); !os.IsNotExist(err) {
		t.Fatalf("cgroup still there: %v", err)
	}
	if err := RemoveTree(c.Path()); err != nil {
		t.Errorf("RemoveTree of a removed cgroup: %v", err)
	}
}

// readFile reads files longer than its first buffer, and says why it
// cannot.
func TestReadFile(t *testing.T) {
	want, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skip(err)
	}
	got, err := readFile("/proc/self/maps")
	if err != nil || len(got) < 512 || len(got) < len(want)/2 {
		t.Errorf("readFile = %d bytes, %v; os.ReadFile %d", len(got), err, len(want))
	}
	if _, err := readFile("/nonexistent"); !os.IsNotExist(err) {
		t.Errorf("readFile(missing) = %v", err)
	}
}
