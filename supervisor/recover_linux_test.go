package supervisor

// Issue 12 §5: circled's own death never duplicates a child. A helper
// process (this test binary, TestHelperCrashDaemon) runs a Supervisor
// the way circled does, with Options.Socket; it is killed with SIGKILL
// while its 2 children run, and a second one starts on the same socket
// and config: the 2 orphans get TERM (their 0.3 s cleanup finishes),
// each is logged as a warning, and only then do 2 new children start.
// With cgroups and without (then the state file next to the socket is
// what finds them). A recorded pid that now belongs to another process
// is never signalled.

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/procstate"
	"github.com/circle-supervisor/circle/internal/testhelper"
	"github.com/circle-supervisor/circle/supervisor/config"
)

// TestHelperCrashDaemon is not a test: it is the daemon the crash test
// runs and kills.
func TestHelperCrashDaemon(t *testing.T) {
	cfgPath := os.Getenv("CIRCLE_CRASH_CFG")
	if cfgPath == "" {
		t.Skip("helper process for TestCrashRecovery")
	}
	cfg, err := config.Load(cfgPath, config.Options{Environ: os.Environ()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	r := NewReaper(log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	go r.Run(context.Background())
	s := New(cfg, Options{Log: log, Spawner: r, Environ: os.Environ(), Socket: os.Getenv("CIRCLE_CRASH_SOCK")})
	s.Run(ctx)
	s.Close()
	os.Exit(0)
}

func startCrashDaemon(t *testing.T, cfg, sock string, env []string) (*exec.Cmd, *testhelper.SyncBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCrashDaemon$")
	cmd.Env = append(append(os.Environ(), "CIRCLE_CRASH_CFG="+cfg, "CIRCLE_CRASH_SOCK="+sock), env...)
	out := &testhelper.SyncBuffer{}
	cmd.Stderr, cmd.Stdout = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
			}
		}
	})
	return cmd, out
}

// lines returns the pids of the lines of file that start with word.
func linePids(file, word string) []int {
	b, _ := os.ReadFile(file)
	var pids []int
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == word {
			n, _ := strconv.Atoi(f[1])
			pids = append(pids, n)
		}
	}
	return pids
}

func procAlive(pid int) bool {
	st, err := procstate.Stat(pid)
	return err == nil && st.State != 'Z' && st.State != 'X'
}

func TestCrashRecovery(t *testing.T) {
	for _, mode := range []struct {
		name string
		env  []string
	}{{"cgroups", nil}, {"pgroups", []string{NoCgroupsEnv + "=1"}}} {
		t.Run(mode.name, func(t *testing.T) { testCrashRecovery(t, mode.env) })
	}
}

func testCrashRecovery(t *testing.T, env []string) {
	dir, err := os.MkdirTemp("", "crash")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	out := filepath.Join(dir, "out")
	worker := filepath.Join(dir, "worker.sh")
	os.WriteFile(worker, []byte(`trap 'sleep 0.3; echo done $$ >> "$OUT"; exit 0' TERM
echo ready $$ >> "$OUT"
sleep 1000 &
wait
`), 0o755)
	cfg := writeConfig(t, dir, fmt.Sprintf("[watcher:pair]\ncmd = /bin/sh %s\nnumprocesses = 2\ngraceful_timeout = 10\n[env]\nOUT = %s\n", worker, out))
	sock := filepath.Join(dir, "c.sock")

	d1, log1 := startCrashDaemon(t, cfg, sock, env)
	testhelper.Eventually(t, 10*time.Second, "2 children", func() bool { return len(linePids(out, "ready")) == 2 })
	old := linePids(out, "ready")
	t.Cleanup(func() {
		for _, pid := range old {
			syscall.Kill(-pid, syscall.SIGKILL) // with their sleep
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	// The state file is written within moments of the starts.
	testhelper.Eventually(t, 20*time.Second, "the state file", func() bool {
		b, _ := os.ReadFile(sock + ".state")
		if strings.Contains(log1.String(), "process containment: one cgroup") {
			return bytes.Contains(b, []byte("cgroup "))
		}
		return bytes.Count(b, []byte("\nproc ")) == 2
	})
	d1.Process.Kill()
	d1.Wait()
	for _, pid := range old {
		if !procAlive(pid) {
			t.Fatalf("child %d died with its circled: the test proves nothing", pid)
		}
	}
	// A stranger whose pid is recorded with another start time: a pid
	// that now belongs to another process.
	stranger := exec.Command("sleep", "1000")
	stranger.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := stranger.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stranger.Process.Kill(); stranger.Wait() }()
	sst, _ := procstate.StartTime(stranger.Process.Pid)
	f, err := os.OpenFile(sock+".state", os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "proc %d %d %d 1 \"pair\"\n", stranger.Process.Pid, sst-1, stranger.Process.Pid)
	f.Close()

	_, log2 := startCrashDaemon(t, cfg, sock, env)
	testhelper.Eventually(t, 20*time.Second, "2 new children", func() bool { return len(linePids(out, "ready")) == 4 })
	b, _ := os.ReadFile(out)
	var kinds []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		kinds = append(kinds, strings.Fields(l)[0])
	}
	// The orphans got TERM, finished their cleanup, and only then did the
	// new children start.
	if got := strings.Join(kinds, " "); got != "ready ready done done ready ready" {
		t.Fatalf("events %q, want \"ready ready done done ready ready\":\n%s\nlog:\n%s", got, b, log2)
	}
	for _, pid := range old {
		if procAlive(pid) {
			t.Errorf("orphan %d still runs", pid)
		}
		if !strings.Contains(log2.String(), "pid="+strconv.Itoa(pid)+" ") || !strings.Contains(log2.String(), "level=WARN msg=\"crash recovery: stopping a process") {
			t.Errorf("no warning naming orphan %d:\n%s", pid, log2)
		}
	}
	if !procAlive(stranger.Process.Pid) || strings.Contains(log2.String(), "pid="+strconv.Itoa(stranger.Process.Pid)+" ") {
		t.Errorf("the stranger %d (same pid, other start time) was touched:\n%s", stranger.Process.Pid, log2)
	}
}
