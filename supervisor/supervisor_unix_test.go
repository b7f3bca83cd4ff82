//go:build unix

package supervisor

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
	"github.com/circle-supervisor/circle/supervisor/config"
	"github.com/circle-supervisor/circle/watcher"
)

// Tests in this package run a wait4(-1) reaper: nothing here may use
// exec.Cmd.Wait/Run/Output, or the reaper would steal its status.

// allActive reports whether every autostart watcher is active.
func allActive(s *Supervisor) func() bool {
	return func() bool {
		for _, n := range s.autostartNames() {
			if e, err := s.get(n); err == nil && !e.w.Active() {
				return false
			}
		}
		return true
	}
}

// orphans is how many unregistered children r reaped.
func orphans(r *Reaper) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.orphans
}

func runReaper(t *testing.T) *Reaper {
	r := NewReaper(slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// No stolen statuses: many children exiting 7, started from several
// goroutines at once (the reaper's lock is not held across fork/exec, so
// some die and are reaped before their Start has registered them) while
// orphans are reaped alongside; every registered exit arrives once, with
// its own code.
func TestReaperDeliversEveryStatus(t *testing.T) {
	r := runReaper(t)
	const n, starters = 200, 4
	var mu sync.Mutex
	codes := map[int]int{}
	calls := 0
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for g := 0; g < starters; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += starters {
				script := "exit 7"
				if i%10 == 0 {
					script = "(sleep 0.01 &) ; (sleep 0.02 &) ; exit 7" // orphans re-parent to us (subreaper)
				}
				cmd := exec.Command("/bin/sh", "-c", script)
				var pid int
				var known sync.Mutex
				known.Lock() // held across Start so the callback sees pid
				pid, err := r.Start(cmd, func(st watcher.ExitStatus) {
					known.Lock()
					defer known.Unlock()
					mu.Lock()
					defer mu.Unlock()
					calls++
					codes[pid] = st.Code
				})
				known.Unlock()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	testhelper.Eventually(t, 10*time.Second, "every exit", func() bool { mu.Lock(); defer mu.Unlock(); return calls >= n })
	mu.Lock()
	defer mu.Unlock()
	if _, ok := codes[0]; ok {
		t.Fatal("an exit was reported before Start returned its pid")
	}
	if len(codes) != n || calls != n {
		t.Fatalf("%d exits delivered for %d pids, want %d each", calls, len(codes), n)
	}
	for pid, c := range codes {
		if c != 7 {
			t.Errorf("pid %d: code %d, want 7", pid, c)
		}
	}
	testhelper.Eventually(t, 20*time.Second, "orphans reaped", func() bool { r.Sweep(); return orphans(r) >= 2*n/10 })
}

// A child that exits and is reaped between its start and its
// registration (forced here: the hook waits until it is a zombie and
// sweeps) still gets its exit delivered once, after Start returned.
func TestReaperEarlyExit(t *testing.T) {
	r := runReaper(t)
	afterStartHook = func(pid int) {
		testhelper.Eventually(t, 20*time.Second, "child is a zombie", func() bool {
			b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
			if err != nil {
				return true // not Linux /proc, or already reaped by the sweeper
			}
			i := bytes.LastIndexByte(b, ')')
			return i > 0 && len(b) > i+2 && b[i+2] == 'Z'
		})
		r.Sweep()
	}
	t.Cleanup(func() { afterStartHook = nil })
	got := make(chan watcher.ExitStatus, 2)
	pid, err := r.Start(exec.Command("/bin/sh", "-c", "exit 5"), func(st watcher.ExitStatus) { got <- st })
	if err != nil {
		t.Fatal(err)
	}
	select {
	case st := <-got:
		if st.Code != 5 {
			t.Fatalf("pid %d: code %d, want 5", pid, st.Code)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the exit of pid %d, reaped before it was registered, was never delivered", pid)
	}
	if n := orphans(r); n != 0 {
		t.Fatalf("%d orphans counted, want 0 (the early exit is not an orphan's)", n)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.early) != 0 || len(r.procs) != 0 {
		t.Fatalf("left behind: %d parked, %d registered", len(r.early), len(r.procs))
	}
}

func writeConfig(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "circled.ini")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func newSup(t *testing.T, path string) (*Supervisor, func() error) {
	t.Helper()
	cfg, err := config.Load(path, config.Options{Environ: os.Environ()})
	if err != nil {
		t.Fatal(err)
	}
	r := runReaper(t)
	s := New(cfg, Options{Spawner: r, Environ: os.Environ(), Stdout: discardW{}, Stderr: discardW{}})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() { cancel(); runErr = <-errc; s.Close() })
		return runErr
	}
	t.Cleanup(func() { stop() })
	return s, stop
}

type discardW struct{}

func (discardW) Write(p []byte) (int, error) { return len(p), nil }

func state(s *Supervisor, name string) string {
	st, _, err := s.Status([]string{name})
	if err != nil || len(st) != 1 {
		return ""
	}
	return st[0].State
}

func TestStopOrderIsReversePriority(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "order")
	ready := filepath.Join(dir, "ready")
	var b strings.Builder
	b.WriteString("[circled]\nsocket = " + filepath.Join(dir, "s.sock") + "\n")
	for _, w := range []struct{ name, prio string }{{"low", "0"}, {"mid", "5"}, {"mid2", "5"}, {"high", "10"}} {
		b.WriteString("[watcher:" + w.name + "]\npriority = " + w.prio + "\n")
		b.WriteString("cmd = /bin/sh -c 'trap \"echo " + w.name + " >> " + log + "; exit 0\" TERM; echo " + w.name + " >> " + ready + "; while :; do sleep 0.05; done'\n")
	}
	_, stop := newSup(t, writeConfig(t, dir, b.String()))
	// Wait until every trap is installed, or TERM would kill a shell first.
	testhelper.Eventually(t, 20*time.Second, "all traps set", func() bool {
		b, _ := os.ReadFile(ready)
		return len(strings.Fields(string(b))) == 4
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(log)
	lines := strings.Fields(string(got))
	if len(lines) != 4 || lines[0] != "low" || lines[3] != "high" || !slices.Contains(lines[1:3], "mid") || !slices.Contains(lines[1:3], "mid2") {
		t.Fatalf("stop order = %v, want low, {mid, mid2}, high", lines)
	}
}

func TestReloadConfigTouchesOnlyWhatChanged(t *testing.T) {
	dir := t.TempDir()
	base := "[watcher:same]\ncmd = sleep 1000\n[watcher:scale]\ncmd = sleep 1001\n[watcher:change]\ncmd = sleep 1002\n[watcher:gone]\ncmd = sleep 1003\n"
	path := writeConfig(t, dir, base)
	s, _ := newSup(t, path)
	testhelper.Eventually(t, 20*time.Second, "all active", allActive(s))
	pids := func(n string) []int { p, _ := s.PIDs(n); slices.Sort(p); return p }
	same, scale, change, gone := pids("same"), pids("scale"), pids("change"), pids("gone")

	// A broken config changes nothing and is reported.
	writeConfig(t, dir, base+"[watcher:bad]\ncmdd = x\n")
	if _, err := s.ReloadConfig(context.Background()); !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), "cmdd") {
		t.Fatalf("bad reload err = %v", err)
	}
	if _, lastErr, _ := s.Status(nil); !strings.Contains(lastErr, "cmdd") {
		t.Fatalf("last reload error = %q", lastErr)
	}

	writeConfig(t, dir, "[watcher:same]\ncmd = sleep 1000\n[watcher:scale]\ncmd = sleep 1001\nnumprocesses = 2\n"+
		"[watcher:change]\ncmd = sleep 1012\n[watcher:new]\ncmd = sleep 1004\n")
	sum, err := s.ReloadConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := ReloadSummary{Added: []string{"new"}, Removed: []string{"gone"}, Restarted: []string{"change"}, Scaled: []string{"scale"}, Unchanged: []string{"same"}}
	if sum.String() != want.String() {
		t.Fatalf("summary = %s, want %s", sum, want)
	}
	if got := pids("same"); !slices.Equal(got, same) {
		t.Errorf("unchanged watcher's pids changed: %v -> %v", same, got)
	}
	testhelper.Eventually(t, 20*time.Second, "scaled to 2", func() bool { return len(pids("scale")) == 2 })
	if got := pids("scale"); !slices.Contains(got, scale[0]) {
		t.Errorf("scaled watcher lost its first process: %v -> %v", scale, got)
	}
	if got := pids("change"); len(got) != 1 || got[0] == change[0] {
		t.Errorf("changed watcher not restarted: %v -> %v", change, got)
	}
	if syscall.Kill(gone[0], 0) == nil {
		t.Errorf("removed watcher's pid %d still alive", gone[0])
	}
	if _, err := s.PIDs("gone"); !errors.Is(err, ErrNoSuchWatcher) {
		t.Errorf("removed watcher still known: %v", err)
	}
	if _, lastErr, _ := s.Status(nil); lastErr != "" {
		t.Errorf("last reload error not cleared: %q", lastErr)
	}
}

func TestCriticalWatcherExitCode(t *testing.T) {
	for _, c := range []struct {
		cmd  string
		code int
	}{{"/bin/sh -c 'sleep 0.2; exit 3'", 3}, {"/bin/sh -c 'sleep 0.2; kill -9 $$'", 137}} {
		t.Run(strconv.Itoa(c.code), func(t *testing.T) { testCritical(t, c.cmd, c.code) })
	}
}

func testCritical(t *testing.T, cmd string, code int) {
	{
		dir := t.TempDir()
		path := writeConfig(t, dir, "[watcher:crit]\ncritical = true\nrespawn = false\ncmd = "+cmd+"\n[watcher:other]\ncmd = sleep 1000\n")
		cfg, err := config.Load(path, config.Options{Environ: os.Environ()})
		if err != nil {
			t.Fatal(err)
		}
		s := New(cfg, Options{Spawner: runReaper(t), Stdout: discardW{}, Stderr: discardW{}})
		errc := make(chan error, 1)
		go func() { errc <- s.Run(context.Background()) }()
		select {
		case err := <-errc:
			s.Close() // removes its cgroups
			var ee *ExitError
			if !errors.As(err, &ee) || ee.Code != code {
				t.Fatalf("%s: Run = %v, want exit code %d", cmd, err, code)
			}
		case <-time.After(60 * time.Second): // a hang, not a slow machine
			t.Fatalf("%s: circled did not shut down", cmd)
		}
	}
}

// 50 MB of numbered lines through max_bytes = 1MB, backup_count = 100:
// every number exactly once, in order, across the rotated files.
func TestFileStreamRotationLosesNothing(t *testing.T) {
	if _, err := exec.LookPath("seq"); err != nil {
		t.Skip("seq not installed")
	}
	dir := t.TempDir()
	const n = 6500000 // about 50 MB of lines
	out := filepath.Join(dir, "out.log")
	path := writeConfig(t, dir, "[watcher:gen]\nrespawn = false\ncmd = seq 1 "+strconv.Itoa(n)+"\n"+
		"stdout_stream.class = FileStream\nstdout_stream.filename = "+out+"\n"+
		"stdout_stream.max_bytes = 1MB\nstdout_stream.backup_count = 100\n")
	s, _ := newSup(t, path)
	last := []byte("\n" + strconv.Itoa(n) + "\n")
	testhelper.Eventually(t, 60*time.Second, "the last line written", func() bool {
		b, _ := os.ReadFile(out)
		return state(s, "gen") == "stopped" && bytes.HasSuffix(b, last)
	})
	files, _ := filepath.Glob(filepath.Join(dir, "out-*.log"))
	slices.Sort(files) // lumberjack's timestamped names sort in time order
	files = append(files, out)
	if len(files) < 40 {
		t.Fatalf("only %d files: rotation did not happen", len(files))
	}
	next := 1
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 1<<20 {
			t.Errorf("%s is %d bytes > max_bytes", f, len(b))
		}
		for _, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
			if string(line) != strconv.Itoa(next) {
				t.Fatalf("%s: got line %q, want %d", f, line, next)
			}
			next++
		}
	}
	if next != n+1 {
		t.Fatalf("read %d lines, want %d", next-1, n)
	}
}

// A watcher the operator stopped stays stopped when its config changes.
func TestReloadKeepsStoppedWatcherStopped(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, "[watcher:a]\ncmd = sleep 1000\n")
	s, _ := newSup(t, path)
	testhelper.Eventually(t, 20*time.Second, "active", allActive(s))
	if _, err := s.Stop(context.Background(), []string{"a"}, true); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, dir, "[watcher:a]\ncmd = sleep 1001\n")
	sum, err := s.ReloadConfig(context.Background())
	if err != nil || len(sum.Restarted) != 1 {
		t.Fatalf("reload: %v %+v", err, sum)
	}
	if st := state(s, "a"); st != "stopped" {
		t.Fatalf("state after reload = %s, want stopped", st)
	}
	if _, err := s.Start(context.Background(), []string{"a"}, true); err != nil {
		t.Fatal(err)
	}
	pids, _ := s.PIDs("a")
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pids[0]) + "/cmdline")
	if !strings.Contains(string(b), "1001") {
		t.Fatalf("started with the old config: %q", b)
	}
}

// Concurrent increases through the supervisor cannot take a watcher beyond
// config.MaxProcesses, nor a singleton beyond one process (issue 13 point
// 4): the bound is checked under the watcher's lock. The watchers are not
// started, so no process runs.
func TestIncrBoundExactUnderConcurrency(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, "[watcher:w]\ncmd = sleep 1000\nautostart = false\n"+
		"[watcher:one]\ncmd = sleep 1001\nautostart = false\nsingleton = true\n")
	s, _ := newSup(t, path)
	if n, err := s.Incr("one", -1); err != nil || n != 0 {
		t.Fatalf("decr singleton: %d, %v", n, err)
	}
	for _, tc := range []struct {
		name     string
		n, limit int
	}{{"w", config.MaxProcesses/2 + 1, config.MaxProcesses}, {"one", 1, 1}} {
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = s.Incr(tc.name, tc.n)
			}()
		}
		wg.Wait()
		passed := 0
		for _, err := range errs {
			switch {
			case err == nil:
				passed++
			case !errors.Is(err, watcher.ErrTooManyProcesses):
				t.Errorf("%s: incr: %v, want ErrTooManyProcesses", tc.name, err)
			}
		}
		got, err := s.NumProcesses(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if got > tc.limit || passed != 1 {
			t.Errorf("%s: %d of %d concurrent incr %d passed, numprocesses = %d (limit %d)", tc.name, passed, len(errs), tc.n, got, tc.limit)
		}
	}
}
