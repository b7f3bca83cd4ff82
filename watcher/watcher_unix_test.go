//go:build unix

package watcher

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func TestStartStatusStop(t *testing.T) {
	w := startWatcher(t, testSpec(t, "sl", "sleep", 3))
	st := w.Status()
	if st.State != StateActive || len(st.Processes) != 3 {
		t.Fatalf("status = %+v", st)
	}
	seen := map[int]bool{}
	for i, p := range st.Processes {
		if p.State != ProcRunning || p.PID <= 0 || p.WID != i+1 || seen[p.PID] {
			t.Fatalf("process %d = %+v", i, p)
		}
		seen[p.PID] = true
	}
	if err := w.Stop(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	for pid := range seen {
		if alive(pid) {
			t.Errorf("pid %d still alive after stop", pid)
		}
	}
	if st := w.Status(); st.State != StateStopped {
		t.Fatalf("state after stop = %s", st.State)
	}
}

func TestKilledChildIsReplaced(t *testing.T) {
	spec := testSpec(t, "kill", "sleep", 1)
	spec.Policy.MinUptime = 0 // count the kill as a healthy exit: replace at once
	w := startWatcher(t, spec)
	old := w.Status().Processes[0].PID
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testhelper.Eventually(t, 20*time.Second, "a new pid", func() bool {
		p := w.Status().Processes[0]
		return p.State == ProcRunning && p.PID != old && p.PID != 0
	})
	p := w.Status().Processes[0]
	if p.Restarts != 1 || p.LastExit.Signal != "KILL" {
		t.Fatalf("after kill: %+v", p)
	}
}

func TestStopKillsGrandchildrenAndIgnorers(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "pids")
	spec := testSpec(t, "gc", "grandchild", 2)
	spec.Env = append(spec.Env, "CIRCLE_PIDFILE="+pidfile)
	spec.GracefulTimeout = 500 * time.Millisecond
	w := startWatcher(t, spec)
	var pids []int
	testhelper.Eventually(t, 20*time.Second, "grandchild pids", func() bool {
		b, _ := os.ReadFile(pidfile)
		pids = pids[:0]
		for _, f := range strings.Fields(string(b)) {
			n, _ := strconv.Atoi(f)
			pids = append(pids, n)
		}
		return len(pids) == 2
	})
	// A stop that waited for the grandchildren, which ignore TERM and
	// would never end on their own, would not return at all: the bound
	// is far above the 500 ms grace so that only that fails it, not a
	// loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.Stop(ctx, true); err != nil {
		t.Fatalf("stop with a 500ms grace: %v", err)
	}
	for _, pid := range pids {
		testhelper.Eventually(t, 20*time.Second, "grandchild "+strconv.Itoa(pid)+" gone", func() bool { return !alive(pid) })
	}
}

func TestIgnoreTermKilledAfterGrace(t *testing.T) {
	spec := testSpec(t, "ign", "ignore-term", 1)
	spec.GracefulTimeout = 700 * time.Millisecond
	pidfile := filepath.Join(t.TempDir(), "pid")
	spec.Env = append(spec.Env, "CIRCLE_PIDFILE="+pidfile)
	w := startWatcher(t, spec)
	// Wait until the handler is installed, or TERM would kill it at once.
	testhelper.Eventually(t, 20*time.Second, "pidfile", func() bool { b, _ := os.ReadFile(pidfile); return len(b) > 0 })
	// The grace is waited for (the lower bound holds on any machine);
	// then KILL ends it (the last exit below). No tight upper bound: a
	// loaded machine can stretch the kill and the reap past any; one that
	// never killed would not return within 20 s.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	if err := w.Stop(ctx, true); err != nil {
		t.Fatalf("stop with a 700ms grace: %v", err)
	}
	if el := time.Since(start); el < 600*time.Millisecond {
		t.Fatalf("stop took %s, before the 700ms grace", el)
	}
	if p := w.Status().Processes; len(p) != 1 || p[0].LastExit.Signal != "KILL" {
		t.Fatalf("last exit = %+v", p)
	}
}

func TestCrashLoopFlaps(t *testing.T) {
	spec := testSpec(t, "crash", "exit", 1)
	spec.Env = append(spec.Env, "CIRCLE_CODE=3")
	spec.Policy.Flapping = Flapping{Attempts: 3, Window: 10 * time.Second, RetryIn: time.Hour, MaxRetry: 1}
	var mu sync.Mutex
	var events []Event
	w := New(spec, DirectSpawner{}, nil, func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() })
	w.Start(context.Background(), false)
	defer w.Stop(context.Background(), true)
	testhelper.Eventually(t, 10*time.Second, "flapping", func() bool { return w.Status().State == StateFlapping })
	if st := w.Status(); !strings.Contains(st.Error, "3 exits within 10s") {
		t.Fatalf("error = %q", st.Error)
	}
	// Events are delivered on their own goroutine: the state may say
	// flapping before the event arrives.
	testhelper.Eventually(t, 10*time.Second, "the flapping event", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(events) > 0
	})
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 1 || events[0].Kind != "flapping" || events[0].Exit.Code != 3 {
		t.Fatalf("events = %+v", events)
	}
}

func TestSpawnErrorBacksOffThenFatal(t *testing.T) {
	spec := testSpec(t, "nofile", "sleep", 1)
	spec.Argv = []string{"/nonexistent/circle-test-binary"}
	spec.Policy.MaxRetry = 2
	w := New(spec, DirectSpawner{}, nil, nil)
	err := w.Start(context.Background(), true)
	if err == nil || !strings.Contains(err.Error(), "no such file or directory") {
		t.Fatalf("start error = %v", err)
	}
	testhelper.Eventually(t, 20*time.Second, "fatal", func() bool { return w.Status().State == StateFatal })
	st := w.Status()
	if !strings.Contains(st.Error, "spawn failed 3 times") || !strings.Contains(st.Processes[0].Error, "no such file") {
		t.Fatalf("status = %+v", st)
	}
}

func TestScaleKeepsSurvivors(t *testing.T) {
	w := startWatcher(t, testSpec(t, "scale", "sleep", 2))
	before := w.PIDs()
	if n := w.Incr(2); n != 4 {
		t.Fatalf("incr -> %d", n)
	}
	testhelper.Eventually(t, 20*time.Second, "4 running", func() bool { return w.Status().State == StateActive && len(w.PIDs()) == 4 })
	after := w.PIDs()
	if after[0] != before[0] || after[1] != before[1] {
		t.Fatalf("survivors changed: %v -> %v", before, after)
	}
	w.Incr(-3)
	testhelper.Eventually(t, 20*time.Second, "1 running", func() bool { return len(w.PIDs()) == 1 })
	if w.PIDs()[0] != before[0] {
		t.Fatalf("wid 1 changed")
	}
	for _, pid := range after[1:] {
		testhelper.Eventually(t, 20*time.Second, "scaled-down pid gone", func() bool { return !alive(pid) })
	}
}

func TestReloadAndRestartGiveNewPids(t *testing.T) {
	w := startWatcher(t, testSpec(t, "rl", "sleep", 2))
	for _, op := range []func(context.Context, bool) error{w.Reload, restart(w)} {
		before := w.PIDs()
		if err := op(context.Background(), true); err != nil {
			t.Fatal(err)
		}
		after := w.PIDs()
		if len(after) != 2 {
			t.Fatalf("pids after = %v", after)
		}
		for _, b := range before {
			if b == after[0] || b == after[1] || alive(b) {
				t.Fatalf("old pid %d survived: %v -> %v", b, before, after)
			}
		}
	}
}

func TestOutputReachesSink(t *testing.T) {
	sink := &bufSink{}
	spec := testSpec(t, "pr", "print", 1)
	spec.Stdout = sink
	spec.Policy.Respawn = false
	w := startWatcher(t, spec)
	testhelper.Eventually(t, 20*time.Second, "output and EOF", func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return sink.closed
	})
	if got := sink.String(); got != "hello from 1\npartial" {
		t.Fatalf("output = %q", got)
	}
	testhelper.Eventually(t, 20*time.Second, "stopped", func() bool { return w.Status().State == StateStopped })
}

// bufSink collects raw output, as a test double for the supervisor's sinks.
type bufSink struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	closed bool
}

func (b *bufSink) Open(wid, pid int) io.WriteCloser { return b }
func (b *bufSink) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}
func (b *bufSink) Close() error { b.mu.Lock(); b.closed = true; b.mu.Unlock(); return nil }
func (b *bufSink) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Flapping is per slot: each of many processes dying once is not flapping.
func TestManyDifferentExitsDoNotFlap(t *testing.T) {
	spec := testSpec(t, "many", "sleep", 6)
	spec.Policy.MinUptime = 0
	spec.Policy.Flapping = Flapping{Attempts: 3, Window: time.Minute, RetryIn: time.Hour, MaxRetry: 1}
	w := startWatcher(t, spec)
	for _, pid := range w.PIDs() {
		syscall.Kill(pid, syscall.SIGKILL)
		testhelper.Eventually(t, 20*time.Second, "replacement", func() bool {
			return w.Status().State == StateActive && !slices.Contains(w.PIDs(), pid) && len(w.PIDs()) == 6
		})
	}
	if st := w.Status(); st.State != StateActive {
		t.Fatalf("state = %s (%s)", st.State, st.Error)
	}
}
