//go:build unix

package watcher

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

// MaxAge replaces each process once it is old enough, one slot at a
// time, the new one ready before the old one stops: every slot has a
// running process throughout.
func TestMaxAgeReplacesSlotBySlot(t *testing.T) {
	spec := testSpec(t, "age", "sleep", 2)
	spec.Policy.MinUptime = 200 * time.Millisecond // "ready" after 200 ms
	spec.MaxAge = time.Second
	spec.MaxAgeVariance = 200 * time.Millisecond
	w := startWatcher(t, spec)
	first := w.PIDs()
	replaced := map[int]bool{}
	deadline := time.Now().Add(20 * time.Second)
	for len(replaced) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s only slots %v were replaced: %+v", replaced, w.Status())
		}
		st := w.Status()
		seen := map[int]bool{}
		for _, p := range st.Processes {
			if seen[p.WID] {
				continue // a process replaced or a replacement not ready: not the slot's
			}
			seen[p.WID] = true
			if p.State != ProcRunning {
				t.Fatalf("slot %d is %s during a max-age replacement: %+v", p.WID, p.State, st)
			}
			if !slices.Contains(first, p.PID) {
				replaced[p.WID] = true
				if p.PlannedRestarts < 1 {
					t.Fatalf("slot %d replaced but PlannedRestarts = %d", p.WID, p.PlannedRestarts)
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, pid := range first {
		testhelper.Eventually(t, 10*time.Second, "the old process to go", func() bool { return !alive(pid) })
	}
}

// hookLog records the hooks called and vetoes the points in veto.
type hookLog struct {
	mu     sync.Mutex
	events []HookEvent
	veto   map[HookPoint]bool
}

func (h *hookLog) hook(_ context.Context, ev HookEvent) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, ev)
	if h.veto[ev.Point] {
		return errors.New("vetoed by test")
	}
	return nil
}

func (h *hookLog) set(p HookPoint, veto bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.veto[p] = veto
}

func (h *hookLog) count(p HookPoint) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, e := range h.events {
		if e.Point == p {
			n++
		}
	}
	return n
}

func (h *hookLog) has(p HookPoint, n int) func() bool {
	return func() bool { return h.count(p) >= n }
}

func TestHooks(t *testing.T) {
	h := &hookLog{veto: map[HookPoint]bool{}}
	spec := testSpec(t, "hk", "sleep", 2)
	spec.Policy.MinUptime = 0
	spec.Hook = h.hook
	w := New(spec, DirectSpawner{}, testLog, nil)
	t.Cleanup(func() {
		h.set(BeforeStop, false)
		w.Stop(context.Background(), true)
		w.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// before_start vetoes the start: the error and the status say why.
	h.set(BeforeStart, true)
	err := w.Start(ctx, true)
	if err == nil || !strings.Contains(err.Error(), "before_start hook: vetoed by test") {
		t.Fatalf("vetoed start: err = %v", err)
	}
	if st := w.Status(); st.State != StateStopped || !strings.Contains(st.Error, "vetoed by test") || len(w.PIDs()) != 0 {
		t.Fatalf("after a vetoed start: %+v", st)
	}
	if h.count(BeforeSpawn) != 0 {
		t.Fatal("a vetoed start spawned")
	}

	// A start runs before_start, before_spawn and after_spawn for each
	// process, then after_start.
	h.set(BeforeStart, false)
	if err := w.Start(ctx, true); err != nil {
		t.Fatal(err)
	}
	testhelper.Eventually(t, 10*time.Second, "after_start", h.has(AfterStart, 1))
	testhelper.Eventually(t, 10*time.Second, "after_spawn x2", h.has(AfterSpawn, 2))
	if h.count(BeforeSpawn) != 2 {
		t.Fatalf("before_spawn called %d times", h.count(BeforeSpawn))
	}
	pids := w.PIDs()
	h.mu.Lock()
	for _, e := range h.events {
		if e.Watcher != "hk" || (e.Point == AfterSpawn && !slices.Contains(pids, e.PID)) || (e.Point == BeforeSpawn && e.WID == 0) {
			t.Errorf("hook event %+v (pids %v)", e, pids)
		}
	}
	h.mu.Unlock()

	// before_signal vetoes the signal (USR1 would kill the helper).
	h.set(BeforeSignal, true)
	if err := w.Signal("USR1", 0, false); err == nil || !strings.Contains(err.Error(), "vetoed by test") {
		t.Fatalf("vetoed signal: err = %v", err)
	}
	for _, pid := range pids {
		if !alive(pid) {
			t.Fatalf("pid %d got a vetoed signal", pid)
		}
	}
	h.set(BeforeSignal, false)
	if err := w.Signal("CONT", 0, false); err != nil {
		t.Fatal(err)
	}
	testhelper.Eventually(t, 10*time.Second, "after_signal", h.has(AfterSignal, 1))

	// before_stop vetoes the stop: the processes keep running.
	h.set(BeforeStop, true)
	if err := w.Stop(ctx, true); err == nil || !strings.Contains(err.Error(), "before_stop hook: vetoed by test") {
		t.Fatalf("vetoed stop: err = %v", err)
	}
	if st := w.Status(); st.State != StateActive || !slices.Equal(w.PIDs(), pids) {
		t.Fatalf("after a vetoed stop: %+v", st)
	}
	h.set(BeforeStop, false)
	if err := w.Stop(ctx, true); err != nil {
		t.Fatal(err)
	}
	testhelper.Eventually(t, 10*time.Second, "after_stop", h.has(AfterStop, 1))
	testhelper.Eventually(t, 10*time.Second, "on_exit x2", h.has(OnExit, 2))
	h.mu.Lock()
	for _, e := range h.events {
		if e.Point == OnExit && (e.Exit == nil || !slices.Contains(pids, e.PID)) {
			t.Errorf("on_exit %+v", e)
		}
	}
	h.mu.Unlock()

	// before_spawn vetoes each spawn: the start fails naming it.
	h.set(BeforeSpawn, true)
	err = w.Start(ctx, true)
	if err == nil || !strings.Contains(err.Error(), "before_spawn hook: vetoed by test") {
		t.Fatalf("vetoed spawn: err = %v", err)
	}
	if st := w.Status(); !strings.Contains(st.Processes[0].Error, "before_spawn hook") {
		t.Fatalf("after vetoed spawns: %+v", st)
	}
	h.set(BeforeSpawn, false)
	w.Stop(ctx, true)
}

// on_fatal runs when the watcher gives up.
func TestHookOnFatal(t *testing.T) {
	h := &hookLog{veto: map[HookPoint]bool{}}
	spec := testSpec(t, "ft", "sleep", 1)
	spec.Argv = []string{"/nonexistent/circle-test"}
	spec.Policy.MaxRetry = 0
	spec.Hook = h.hook
	w := newWatcher(t, spec)
	w.Start(ctx30(t), true)
	testhelper.Eventually(t, 10*time.Second, "on_fatal", h.has(OnFatal, 1))
	if st := w.Status(); st.State != StateFatal {
		t.Fatalf("status %+v", st)
	}
}

// Stdin's file is the process's standard input, and circled's copy is
// closed once the process has it.
func TestStdin(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	spec := shSpec(t, "in", "read line; echo \"got $line $CIRCLED_WID\" > "+out+"; exec sleep 100")
	var mu sync.Mutex
	var given []*os.File
	var writers []*os.File
	spec.Stdin = func(wid int) (*os.File, error) {
		r, wr, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		given = append(given, r)
		writers = append(writers, wr)
		return r, nil
	}
	w := newWatcher(t, spec)
	if err := w.Start(ctx30(t), false); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(given) != 1 {
		t.Fatalf("Stdin called %d times", len(given))
	}
	r, wr := given[0], writers[0]
	mu.Unlock()
	t.Cleanup(func() { wr.Close() })
	if _, err := r.Stat(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("circled's copy of the child's stdin is still open (stat: %v)", err)
	}
	if _, err := wr.WriteString("hello\n"); err != nil {
		t.Fatal(err)
	}
	testhelper.Eventually(t, 10*time.Second, "the child to read its stdin", func() bool {
		b, _ := os.ReadFile(out)
		return strings.TrimSpace(string(b)) == "got hello 1"
	})
}

// With ReloadSignal and Ready.Notify, Reload returns once each process
// has sent RELOADING=1 then READY=1 (systemd's notify-reload); one that
// does not answer in ready.timeout is an error, and keeps running.
func TestReloadSignalWaitsForNotify(t *testing.T) {
	dir := t.TempDir()
	mark := filepath.Join(dir, "reloaded")
	spec := testSpec(t, "nr", "notify-reload", 1)
	spec.Env = append(spec.Env, "CIRCLE_MARK="+mark)
	spec.Ready = ReadySpec{Notify: true, Timeout: 20 * time.Second}
	spec.ReloadSignal = "HUP"
	spec.RuntimeDir = filepath.Join(dir, "run")
	w := startWatcher(t, spec)
	pid := w.PIDs()[0]
	if err := w.Reload(ctx30(t), true); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(mark); err != nil || string(b) != strconv.Itoa(pid) {
		t.Fatalf("Reload returned before READY=1 (mark: %q, %v)", b, err)
	}
	if got := w.PIDs(); !slices.Equal(got, []int{pid}) {
		t.Fatalf("pids after a signal reload: %v, want %d", got, pid)
	}

	mute := testSpec(t, "mute", "notify-reload", 1)
	mute.Env = append(mute.Env, "CIRCLE_MUTE=1")
	// Long enough for a -race helper's first READY=1 on a loaded host.
	mute.Ready = ReadySpec{Notify: true, Timeout: 5 * time.Second}
	mute.ReloadSignal = "HUP"
	mute.RuntimeDir = filepath.Join(dir, "run")
	m := startWatcher(t, mute)
	err := m.Reload(ctx30(t), true)
	if err == nil || !strings.Contains(err.Error(), "no RELOADING=1 within 5s") {
		t.Fatalf("reload of a process that does not answer: err = %v", err)
	}
	if st := m.Status(); st.State != StateActive {
		t.Fatalf("after a failed signal reload: %+v", st)
	}
}

// Update then Replace: every process is replaced slot by slot with the
// new spec, even with a ReloadSignal (a changed command needs new
// processes); a stopped watcher stays stopped.
func TestUpdateThenReplace(t *testing.T) {
	dir := t.TempDir()
	spec := testSpec(t, "rp", "sleep", 2)
	spec.Policy.MinUptime = 100 * time.Millisecond
	spec.ReloadSignal = "CONT"
	w := startWatcher(t, spec)
	old := w.PIDs()
	next := spec
	next.Env = append(slices.Clone(spec.Env), "CIRCLE_PIDFILE="+filepath.Join(dir, "unused"))
	w.Update(next)
	if err := w.Replace(ctx30(t), true); err != nil {
		t.Fatal(err)
	}
	now := w.PIDs()
	if len(now) != 2 || slices.Contains(now, old[0]) || slices.Contains(now, old[1]) {
		t.Fatalf("pids %v -> %v: want two new processes", old, now)
	}
	for _, pid := range old {
		if alive(pid) {
			t.Fatalf("old pid %d alive after Replace returned", pid)
		}
	}
	if err := w.Stop(ctx30(t), true); err != nil {
		t.Fatal(err)
	}
	if err := w.Replace(ctx30(t), true); err != nil || len(w.PIDs()) != 0 {
		t.Fatalf("replace of a stopped watcher: %v, pids %v", err, w.PIDs())
	}
}

// MaxFailedStarts (supervisord's startretries + 1): a process that keeps
// exiting before MinUptime makes the watcher fatal after that many
// failed starts in a row, with the reason in its status.
func TestMaxFailedStarts(t *testing.T) {
	spec := testSpec(t, "fs", "exit", 1)
	spec.Env = append(spec.Env, "CIRCLE_CODE=3")
	spec.Policy.MinUptime = 30 * time.Second // every run fails its start, however slow a -race helper is to exit
	spec.Policy.MaxFailedStarts = 3
	spec.Policy.Flapping.Attempts = 0
	var spawns sync.Map
	h := &hookLog{veto: map[HookPoint]bool{}}
	spec.Hook = func(ctx context.Context, ev HookEvent) error {
		if ev.Point == AfterSpawn {
			spawns.Store(ev.PID, true)
		}
		return h.hook(ctx, ev)
	}
	w := newWatcher(t, spec)
	w.Start(ctx30(t), false)
	testhelper.Eventually(t, 20*time.Second, "fatal", func() bool { return w.Status().State == StateFatal })
	st := w.Status()
	if !strings.Contains(st.Error, "3 failed starts in a row") || !strings.Contains(st.Error, "exited with code 3") {
		t.Fatalf("status %+v", st)
	}
	n := 0
	spawns.Range(func(any, any) bool { n++; return true })
	if n != 3 {
		t.Fatalf("%d spawns, want 3", n)
	}
	// A start begins a new count.
	w.Start(ctx30(t), false)
	testhelper.Eventually(t, 20*time.Second, "fatal again", func() bool {
		c := 0
		spawns.Range(func(any, any) bool { c++; return true })
		return w.Status().State == StateFatal && c == 6
	})
}
