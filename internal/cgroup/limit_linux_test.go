//go:build linux

package cgroup

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// tasksLimitedHelper, set in a child's environment, makes the test
// binary print TasksLimited and exit (see TestTasksLimited).
const tasksLimitedHelper = "CGROUP_TEST_TASKS_LIMITED"

func TestMain(m *testing.M) {
	if os.Getenv(tasksLimitedHelper) != "" {
		fmt.Println("limited", TasksLimited())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A process in a pids cgroup with a pids.max, or below one, is limited;
// the same process outside it is only if something else limits it.
func TestTasksLimited(t *testing.T) {
	const v1 = "/sys/fs/cgroup/pids"
	parent := filepath.Join(v1, fmt.Sprintf("circle-limit-test-%d", os.Getpid()))
	if err := os.Mkdir(parent, 0o755); err != nil {
		t.Skipf("no writable cgroup v1 pids hierarchy at %s: %v", v1, err)
	}
	child := filepath.Join(parent, "leaf")
	t.Cleanup(func() { os.Remove(child); os.Remove(parent) })
	if err := os.Mkdir(child, 0o755); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	run := func(cg string) string {
		t.Helper()
		cmd := exec.Command("sh", "-c", `echo $$ > "$1/cgroup.procs" && exec "$2"`, "sh", cg, exe)
		cmd.Env = append(os.Environ(), tasksLimitedHelper+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helper in %s: %v\n%s", cg, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	outside := run(child) // no pids.max set yet: only what limits the test itself
	if err := os.WriteFile(filepath.Join(parent, "pids.max"), []byte("1000"), 0o644); err != nil {
		t.Skipf("cannot set pids.max: %v", err)
	}
	if got := run(child); got != "limited true" {
		t.Errorf("under pids.max = 1000 (the parent's): %q, want limited true (without: %q)", got, outside)
	}
}
