package watcher

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Join with a real cgroup v1 controller (the CI machines' layout): the
// child is in the pids cgroup before its program runs, and so is what it
// forks.
func TestJoinRealCgroupV1(t *testing.T) {
	root := "/sys/fs/cgroup/pids"
	if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
		t.Skipf("no cgroup v1 pids hierarchy at %s: %v", root, err)
	}
	name := fmt.Sprintf("circle-test-join-%d", os.Getpid())
	dir := filepath.Join(root, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot make a pids cgroup (needs root and a writable hierarchy): %v", err)
	}
	t.Cleanup(func() {
		// The cgroup empties once the child and its fork have exited.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if err := os.Remove(dir); err == nil || time.Now().After(deadline) {
				return
			}
		}
	})
	out := filepath.Join(t.TempDir(), "cgroup")
	spec := Spec{Name: "lim", Umask: -1, Join: func(int) ([]string, func(), error) { return []string{dir}, nil, nil }}
	// The program and a process it forks both report their cgroup.
	argv := []string{"/bin/sh", "-c", "cat /proc/self/cgroup > " + out + "; (cat /proc/self/cgroup >> " + out + ")"}
	cmd, err := buildCmd(spec, 1, argv, []string{"PATH=/usr/bin:/bin"}, "")
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v; stderr %s", err, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "pids:/"+name+"\n"); n != 2 {
		t.Errorf("the child and its fork are not both in %s:\n%s", dir, b)
	}
}
