package watcher

// These tests run under Wine (make test-windows) and on Windows. Wine 8
// cannot deliver CTRL_BREAK, so here a graceful stop always ends with the
// job being terminated after graceful_timeout; the test that a CTRL_BREAK
// is received is in proc_realwindows_test.go (build tag realwindows).

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

func readPids(path string) []int {
	b, _ := os.ReadFile(path)
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			pids = append(pids, n)
		}
	}
	return pids
}

func TestWindowsParseStopSignal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want stopAction
	}{
		{"TERM", ctrlBreak}, {"SIGTERM", ctrlBreak}, {"15", ctrlBreak},
		{"INT", ctrlBreak}, {"sigint", ctrlBreak}, {"2", ctrlBreak},
		{"BREAK", ctrlBreak}, {"SIGBREAK", ctrlBreak}, {"21", ctrlBreak},
		{"KILL", terminate}, {"SIGKILL", terminate}, {"9", terminate},
		{"HUP", 0}, {"USR1", 0}, {"1", 0}, {"", 0},
	} {
		got, err := parseStopSignal(tc.in)
		if got != tc.want || (err != nil) != (tc.want == 0) {
			t.Errorf("parseStopSignal(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if err != nil && !strings.Contains(err.Error(), "not supported on windows") {
			t.Errorf("parseStopSignal(%q) error = %v", tc.in, err)
		}
	}
}

func TestWindowsBuildCmdRejectsPosixKeys(t *testing.T) {
	uid := 0
	spec := Spec{Umask: 0o22, UID: &uid, Rlimits: []Rlimit{{Name: "nofile", Value: 10}}}
	_, err := buildCmd(spec, 1, []string{"cmd.exe"}, nil, "")
	if err == nil || !strings.Contains(err.Error(), "uid, umask, rlimit_nofile: not supported on windows") {
		t.Fatalf("err = %v", err)
	}
}

func TestWindowsBuildCmdFlags(t *testing.T) {
	exe, _ := os.Executable()
	cmd, err := buildCmd(Spec{Umask: -1}, 1, []string{exe}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	const want = 0x00000200 | 0x00000004 // CREATE_NEW_PROCESS_GROUP | CREATE_SUSPENDED
	if cmd.SysProcAttr.CreationFlags&want != want {
		t.Fatalf("creation flags = %#x", cmd.SysProcAttr.CreationFlags)
	}
}

func TestWindowsSignalUnsupported(t *testing.T) {
	if err := signalProc(os.Getpid(), "HUP", true); err == nil || !strings.Contains(err.Error(), "not supported on windows") {
		t.Fatalf("err = %v", err)
	}
}

// A process started suspended in its job runs (it was resumed) and
// reports its exit code; its job is released after the wait.
func TestWindowsSpawnerResumesAndReportsExit(t *testing.T) {
	exe, _ := os.Executable()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "CIRCLE_HELPER=exit", "CIRCLE_CODE=7")
	done := make(chan ExitStatus, 1)
	pid, err := DirectSpawner{}.Start(cmd, func(st ExitStatus) { done <- st })
	if err != nil {
		t.Fatal(err)
	}
	select {
	case st := <-done:
		if st.Code != 7 {
			t.Fatalf("exit = %+v, want code 7", st)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit: the process was never resumed?")
	}
	jobs.Lock()
	_, held := jobs.m[pid]
	jobs.Unlock()
	if held {
		t.Fatal("job still registered after exit")
	}
}

func TestWindowsStartStatusStop(t *testing.T) {
	w := startWatcher(t, testSpec(t, "sl", "sleep", 2))
	st := w.Status()
	if st.State != StateActive || len(st.Processes) != 2 {
		t.Fatalf("status = %+v", st)
	}
	var pids []int
	for _, p := range st.Processes {
		if p.State != ProcRunning || p.PID <= 0 {
			t.Fatalf("process = %+v", p)
		}
		pids = append(pids, p.PID)
	}
	if err := w.Stop(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("pid %d alive after stop", pid)
		}
	}
	if st := w.Status(); st.State != StateStopped {
		t.Fatalf("state after stop = %s", st.State)
	}
}

// Stop reaches the whole tree: the child and its grandchild are gone
// after graceful_timeout, because the job is terminated.
func TestWindowsStopKillsTree(t *testing.T) {
	pidfile := filepath.Join(tempDir(t), "pids")
	spec := testSpec(t, "gc", "grandchild", 1)
	spec.Env = append(spec.Env, "CIRCLE_PIDFILE="+pidfile)
	w := startWatcher(t, spec)
	var pids []int
	testhelper.Eventually(t, 20*time.Second, "child and grandchild pids", func() bool { pids = readPids(pidfile); return len(pids) == 2 })
	start := time.Now()
	if err := w.Stop(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		testhelper.Eventually(t, 5*time.Second, "pid "+strconv.Itoa(pid)+" gone", func() bool { return !alive(pid) })
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("stop took %s", el)
	}
}

// stop_signal = KILL terminates the job at once, without graceful_timeout.
func TestWindowsStopSignalKill(t *testing.T) {
	pidfile := filepath.Join(tempDir(t), "pids")
	spec := testSpec(t, "k", "grandchild", 1)
	spec.Env = append(spec.Env, "CIRCLE_PIDFILE="+pidfile)
	spec.StopSignal = "KILL"
	spec.GracefulTimeout = time.Hour
	w := startWatcher(t, spec)
	var pids []int
	testhelper.Eventually(t, 20*time.Second, "child and grandchild pids", func() bool { pids = readPids(pidfile); return len(pids) == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := w.Stop(ctx, true); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		testhelper.Eventually(t, 5*time.Second, "pid "+strconv.Itoa(pid)+" gone", func() bool { return !alive(pid) })
	}
}

// When the main process exits on its own, closing its job kills the
// grandchild it left behind.
func TestWindowsLeaderExitKillsRest(t *testing.T) {
	pidfile := filepath.Join(tempDir(t), "pids")
	exe, _ := os.Executable()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "CIRCLE_HELPER=grandchild", "CIRCLE_PIDFILE="+pidfile)
	done := make(chan struct{})
	pid, err := DirectSpawner{}.Start(cmd, func(ExitStatus) { close(done) })
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	testhelper.Eventually(t, 20*time.Second, "child and grandchild pids", func() bool { pids = readPids(pidfile); return len(pids) == 2 })
	if err := terminateProcess(pid); err != nil { // the leader only
		t.Fatal(err)
	}
	<-done
	testhelper.Eventually(t, 5*time.Second, "grandchild gone", func() bool { return !alive(pids[1]) })
}

// When circled itself dies, the kernel closes its job handles and every
// tree it started dies too.
func TestWindowsSupervisorDeathKillsTrees(t *testing.T) {
	pidfile := filepath.Join(tempDir(t), "pids")
	exe, _ := os.Executable()
	sup := exec.Command(exe)
	sup.Env = append(os.Environ(), "CIRCLE_HELPER=supervise", "CIRCLE_PIDFILE="+pidfile)
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	var pids []int
	testhelper.Eventually(t, 20*time.Second, "child and grandchild pids", func() bool { pids = readPids(pidfile); return len(pids) == 2 })
	if err := sup.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	sup.Wait()
	for _, pid := range pids {
		testhelper.Eventually(t, 5*time.Second, "pid "+strconv.Itoa(pid)+" gone", func() bool { return !alive(pid) })
	}
}

// tempDir is t.TempDir without its cleanup check: under Wine 8 Go's
// RemoveAll fails ("Invalid function") on files just closed by a child.
func tempDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "circled-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}
