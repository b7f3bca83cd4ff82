//go:build unix

package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/evlistener"
	"github.com/circle-supervisor/circle/internal/testhelper"
	"github.com/circle-supervisor/circle/supervisor/config"
	"github.com/circle-supervisor/circle/watcher"
)

// evRec is one event internal/evlistener/testdata/listener.py recorded.
type evRec struct {
	pid, name, payload string
	serial             int
}

func readEvRecs(t *testing.T, path string) []evRec {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []evRec
	for l := range strings.Lines(string(b)) {
		f := strings.SplitN(strings.TrimSuffix(l, "\n"), "\t", 3)
		if len(f) != 3 || !strings.HasSuffix(l, "\n") {
			continue
		}
		name := ""
		for _, kv := range strings.Fields(f[1]) {
			if v, ok := strings.CutPrefix(kv, "eventname:"); ok {
				name = v
			}
		}
		serial := -1
		for _, kv := range strings.Fields(f[1]) {
			if v, ok := strings.CutPrefix(kv, "serial:"); ok {
				serial, _ = strconv.Atoi(v)
			}
		}
		out = append(out, evRec{pid: f[0], name: name, payload: strings.ReplaceAll(f[2], `\n`, "\n"), serial: serial})
	}
	return out
}

func (r evRec) String() string { return strings.TrimSpace(r.name + " " + r.payload) }

// listenerScript is python3 and the recording event listener the tests
// run (internal/evlistener/testdata/listener.py); skips without python3.
func listenerScript(t *testing.T) (py, script string) {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("SKIP: python3 is not installed: the event listener of this test is a Python script")
	}
	script, err = filepath.Abs(filepath.Join("..", "internal", "evlistener", "testdata", "listener.py"))
	if err != nil {
		t.Fatal(err)
	}
	return py, script
}

// A listener under a Supervisor, through reloads: it gets
// SUPERVISOR_STATE_CHANGE_RUNNING and its own group's PROCESS_GROUP_ADDED
// at startup (as supervisord, where a pool sees only the groups added
// after it), then PROCESS_GROUP_ADDED / _REMOVED for the programs
// a reload adds and removes; a reload that changes its events gives it a
// new pool (it is restarted and gets the new types only); a watcher that
// is no listener has no pool; Close ends the goroutine and the bus.
func TestEvListenerReload(t *testing.T) {
	py, script := listenerScript(t)
	dir := t.TempDir()
	rec := filepath.Join(dir, "rec")
	// circled's format (its eventlistener.* keys): a supervisord file
	// sets a umask, which needs the trampoline this test binary lacks.
	conf := func(events string, programs ...string) string {
		c := "[watcher:rec]\ncmd = " + py + " " + script + "\neventlistener.events = " + events +
			"\neventlistener.buffer_size = 50\ncopy_env = true\nmin_uptime = 0\n[env:rec]\nRECORD = " + rec + "\n"
		for _, p := range programs {
			c += "[watcher:" + p + "]\ncmd = sleep 1000\nmin_uptime = 0\n"
		}
		return c
	}
	path := writeConfig(t, dir, conf("PROCESS_GROUP,SUPERVISOR_STATE_CHANGE", "a"))
	s, stop := newSup(t, path)
	has := func(want ...string) func() (bool, string) {
		return func() (bool, string) {
			var got []string
			for _, r := range readEvRecs(t, rec) {
				got = append(got, r.String())
			}
			for _, w := range want {
				if !slices.Contains(got, w) {
					return false, fmt.Sprintf("no %q in %q", w, got)
				}
			}
			return true, ""
		}
	}
	testhelper.Poll(t, 30*time.Second, "startup events", has("SUPERVISOR_STATE_CHANGE_RUNNING", "PROCESS_GROUP_ADDED groupname:rec"))
	if first := readEvRecs(t, rec)[0]; first.name != "SUPERVISOR_STATE_CHANGE_RUNNING" && first.name != "PROCESS_GROUP_ADDED" {
		t.Errorf("first event %s", first)
	}

	writeConfig(t, dir, conf("PROCESS_GROUP,SUPERVISOR_STATE_CHANGE", "b"))
	if sum, err := s.ReloadConfig(context.Background()); err != nil || sum.Failed != nil {
		t.Fatalf("reload: %s %v", sum, err)
	}
	testhelper.Poll(t, 30*time.Second, "reload events", has("PROCESS_GROUP_ADDED groupname:b", "PROCESS_GROUP_REMOVED groupname:a"))
	pids := map[string]bool{}
	for _, r := range readEvRecs(t, rec) {
		pids[r.pid] = true
	}
	if len(pids) != 1 {
		t.Errorf("the listener was restarted by a reload that did not change it: pids %v", pids)
	}

	// New events: a new pool, a new listener process, only the new types.
	writeConfig(t, dir, conf("PROCESS_STATE_RUNNING", "b"))
	if sum, err := s.ReloadConfig(context.Background()); err != nil || !slices.Equal(sum.Restarted, []string{"rec"}) {
		t.Fatalf("reload: %s %v", sum, err)
	}
	n := len(readEvRecs(t, rec))
	if _, err := s.Restart(context.Background(), []string{"b"}, true); err != nil {
		t.Fatal(err)
	}
	testhelper.Poll(t, 30*time.Second, "b RUNNING after its restart", func() (bool, string) {
		rs := readEvRecs(t, rec)
		for _, r := range rs[n:] {
			if r.name == "PROCESS_STATE_RUNNING" && strings.HasPrefix(r.payload, "processname:b ") {
				return true, ""
			}
		}
		return false, fmt.Sprint(rs[n:])
	})
	for _, r := range readEvRecs(t, rec)[n:] {
		if pids[r.pid] {
			t.Errorf("the old listener got %s after its events changed", r)
		}
		if r.name != "PROCESS_STATE_RUNNING" {
			t.Errorf("the new pool sent %s", r)
		}
	}
	s.evl.mu.Lock()
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range s.evl.pools {
			if !yield(n) {
				return
			}
		}
	})
	done := s.evl.done
	s.evl.mu.Unlock()
	if !slices.Equal(names, []string{"rec"}) {
		t.Errorf("pools %v, want [rec]", names)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	default:
		t.Error("the event goroutine still runs after Close")
	}
}

// A config without a listener makes no bus and starts no goroutine.
func TestEvListenerNoneNoBus(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, "[watcher:a]\ncmd = sleep 1000\n")
	s, stop := newSup(t, path)
	testhelper.Eventually(t, 10*time.Second, "all active", allActive(s))
	s.evl.mu.Lock()
	bus := s.evl.bus
	s.evl.mu.Unlock()
	if bus != nil {
		t.Error("a bus without a listener")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestEvNamesAndServerURL(t *testing.T) {
	for _, c := range []struct {
		wc      config.Watcher
		wid     int
		g, proc string
	}{
		{config.Watcher{Name: "web", NumProcesses: 1}, 1, "web", "web"},
		{config.Watcher{Name: "web", NumProcesses: 2, ProcessNames: []string{"web_01", "web_02"}}, 2, "web", "web_02"},
		{config.Watcher{Name: "web", NumProcesses: 3, ProcessNames: []string{"w1", "w2"}}, 3, "web", "web_3"},
		{config.Watcher{Name: "g:prog", NumProcesses: 1, ProcessNames: []string{"prog"}}, 1, "g", "prog"},
		{config.Watcher{Name: "g:prog", NumProcesses: 1}, 1, "g", "prog"},
	} {
		if g, p := evNames(&c.wc, c.wid); g != c.g || p != c.proc {
			t.Errorf("%s wid %d: %s %s, want %s %s", c.wc.Name, c.wid, g, p, c.g, c.proc)
		}
	}
	env := []string{"A=1", "SUPERVISOR_ENABLED=1", "SUPERVISOR_GROUP_NAME=x", "Z=2"}
	got := svServerURL(env, "/run/c.sock")
	want := []string{"A=1", "SUPERVISOR_ENABLED=1", "SUPERVISOR_GROUP_NAME=x", "SUPERVISOR_SERVER_URL=unix:///run/c.sock", "Z=2"}
	if !slices.Equal(got, want) || len(env) != 4 || env[3] != "Z=2" {
		t.Errorf("got %v (input now %v)", got, env)
	}
	set := []string{"SUPERVISOR_ENABLED=1", "SUPERVISOR_SERVER_URL=http://localhost:9001"}
	if got := svServerURL(set, "/run/c.sock"); !slices.Equal(got, set) {
		t.Errorf("a set URL changed: %v", got)
	}
	if got := svServerURL([]string{"A=1"}, "/run/c.sock"); !slices.Equal(got, []string{"A=1"}) {
		t.Errorf("a circled watcher got a URL: %v", got)
	}
}

// A process whose ready event never came (the status diff missed a
// process that ran briefly) is still told RUNNING before EXITED when it
// ended after min_uptime, and BACKOFF when it ended before; a watcher
// "stopped" while wanted makes BACKOFF FATAL, a real stop STOPPING then
// STOPPED.
func TestEvTranslateMissedReady(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, "[watcher:w]\ncmd = sleep 1000\nmin_uptime = 0\n[watcher:slow]\ncmd = sleep 1000\nmin_uptime = 5\n")
	s, _ := newSup(t, path)
	testhelper.Eventually(t, 10*time.Second, "all active", allActive(s))
	bus := evlistener.NewBus("")
	defer bus.Close()
	pool, err := bus.AddPool(evlistener.PoolConfig{Name: "p", Events: []string{"PROCESS_STATE"}, BufferSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	x := &evTranslator{bus: bus, tr: evlistener.NewTracker(), spawned: map[evSlot]time.Time{}}
	t0 := time.Now()
	zero := 0
	const pid = 1 << 22 // no process's: the events are made up
	for _, ev := range []Event{
		{Type: EventSpawn, Watcher: "w", WID: 1, PID: pid, Time: t0},
		{Type: EventExit, Watcher: "w", WID: 1, PID: pid, Code: &zero, Time: t0.Add(time.Millisecond)},
		{Type: EventSpawn, Watcher: "slow", WID: 1, PID: pid + 1, Time: t0},
		{Type: EventExit, Watcher: "slow", WID: 1, PID: pid + 1, Code: &zero, Time: t0.Add(time.Second)},
	} {
		s.evTranslate(x, ev)
	}
	if st := x.tr.State("w", "w"); st != evlistener.StateExited {
		t.Errorf("w: %s, want EXITED (through RUNNING)", st)
	}
	if st := x.tr.State("slow", "slow"); st != evlistener.StateBackoff {
		t.Errorf("slow: %s, want BACKOFF", st)
	}
	// STARTING, RUNNING, EXITED of w; STARTING, BACKOFF of slow.
	if n := pool.Buffered(); n != 5 {
		t.Errorf("%d events, want 5", n)
	}
	// Still wanted, all left down (respawn = never): no retry comes, so
	// the process in BACKOFF is FATAL, not STOPPED.
	s.evTranslate(x, Event{Type: EventState, Watcher: "slow", State: watcher.StateStopped})
	if st := x.tr.State("slow", "slow"); st != evlistener.StateFatal {
		t.Errorf("slow left down: %s, want FATAL", st)
	}
	// A real stop: the RUNNING process goes STOPPING, its exit STOPPED.
	s.evTranslate(x, Event{Type: EventSpawn, Watcher: "w", WID: 1, PID: pid + 2, Time: t0})
	s.evTranslate(x, Event{Type: EventReady, Watcher: "w", WID: 1, PID: pid + 2})
	if _, err := s.Stop(context.Background(), []string{"w"}, true); err != nil {
		t.Fatal(err)
	}
	s.evTranslate(x, Event{Type: EventState, Watcher: "w", State: watcher.StateStopped})
	if st := x.tr.State("w", "w"); st != evlistener.StateStopping {
		t.Errorf("w after its stop: %s, want STOPPING", st)
	}
	s.evTranslate(x, Event{Type: EventExit, Watcher: "w", WID: 1, PID: pid + 2, Code: &zero, Time: t0.Add(time.Second)})
	if st := x.tr.State("w", "w"); st != evlistener.StateStopped {
		t.Errorf("w after its exit: %s, want STOPPED", st)
	}
	if len(x.spawned) != 0 {
		t.Errorf("spawn times kept after the exits: %v", x.spawned)
	}
}

// A live upgrade's freeze with an event listener: a binary reading
// format 1 only is refused (nothing changes); otherwise the state is
// format 2 with the pool, its listener (its pid, its input's
// descriptor among the files handed over) and the tracker; nothing is
// sent while frozen, and after an aborted upgrade what was published
// meanwhile arrives, serials without gap or repeat.
func TestEvListenerUpgradeFreeze(t *testing.T) {
	py, script := listenerScript(t)
	dir := t.TempDir()
	rec := filepath.Join(dir, "rec")
	path := writeConfig(t, dir, "[watcher:rec]\ncmd = "+py+" "+script+"\neventlistener.events = PROCESS_STATE,PROCESS_GROUP"+
		"\neventlistener.buffer_size = 50\ncopy_env = true\nmin_uptime = 0\n[env:rec]\nRECORD = "+rec+"\n"+
		"[watcher:a]\ncmd = sleep 1000\nmin_uptime = 0\n")
	s, stop := newSup(t, path)
	names := func() []string {
		var got []string
		for _, r := range readEvRecs(t, rec) {
			got = append(got, r.String())
		}
		return got
	}
	testhelper.Poll(t, 30*time.Second, "a RUNNING", func() (bool, string) {
		got := names()
		return slices.ContainsFunc(got, func(n string) bool { return strings.HasPrefix(n, "PROCESS_STATE_RUNNING processname:a ") }), fmt.Sprint(got)
	})
	listenerPID := 0
	testhelper.Poll(t, 30*time.Second, "the listener's pid", func() (bool, string) {
		st, _, err := s.Status([]string{"rec"})
		if err != nil || len(st) != 1 || len(st[0].Processes) != 1 {
			return false, fmt.Sprint(st, err)
		}
		listenerPID = st[0].Processes[0].PID
		return listenerPID > 0, ""
	})

	s.evl.mu.Lock()
	pool := s.evl.pools["rec"].pool
	s.evl.mu.Unlock()
	// Quiet: the listener waits for an event (nothing more happens).
	testhelper.Poll(t, 30*time.Second, "the listener READY, nothing buffered", func() (bool, string) {
		n, state := pool.Buffered(), pool.ListenerState(1)
		return n == 0 && state == evlistener.Ready, fmt.Sprintf("%d buffered, listener %s", n, state)
	})

	if h, err := s.PrepareUpgrade(context.Background()); err == nil || !errors.Is(err, ErrUpgrade) || !strings.Contains(err.Error(), "format 2") {
		if h != nil {
			h.Abort()
		}
		t.Fatalf("PrepareUpgrade for a binary reading format 1 only: %v, want a refusal naming format 2", err)
	}

	h, err := s.PrepareUpgradeFor(context.Background(), UpgradeFormats)
	if err != nil {
		t.Fatal(err)
	}
	aborted := false
	defer func() {
		if !aborted {
			h.Abort()
		}
	}()
	st := h.State
	if st.Format != UpgradeFormatEvListeners || h.Format() != UpgradeFormatEvListeners || st.EvListeners == nil {
		t.Fatalf("format %d, listeners %v", st.Format, st.EvListeners)
	}
	if _, err := json.Marshal(st); err != nil {
		t.Fatal(err)
	}
	ev := st.EvListeners
	if len(ev.Bus.Pools) != 1 || ev.Bus.Pools[0].Name != "rec" || len(ev.Bus.Pools[0].Listeners) != 1 {
		t.Fatalf("pools %+v", ev.Bus.Pools)
	}
	ls := ev.Bus.Pools[0].Listeners[0]
	if ls.PID != listenerPID || ls.WID != 1 {
		t.Errorf("listener %+v, want pid %d", ls, listenerPID)
	}
	if !slices.ContainsFunc(h.Files, func(f *os.File) bool { return evFileFD(f) == ls.FD }) {
		t.Errorf("the listener's input (fd %d) is not among the descriptors handed over", ls.FD)
	}
	if !slices.ContainsFunc(ev.Tracker.Procs, func(p evlistener.TrackedState) bool {
		return p.Process == "a" && p.State == evlistener.StateRunning && p.PID > 0
	}) {
		t.Errorf("tracker %+v: no RUNNING a", ev.Tracker.Procs)
	}
	if ev.Bus.Serial < 0 {
		t.Errorf("bus serial %d", ev.Bus.Serial)
	}

	if ls.State != evlistener.Ready || ls.Inflight != nil {
		t.Errorf("listener %+v, want READY", ls)
	}
	// Frozen: an event is buffered, not sent. (Publish dispatches before
	// it returns: the READY listener would be BUSY with it.)
	s.evPublish(evlistener.ProcessGroupAdded("during-freeze"))
	if n, state := pool.Buffered(), pool.ListenerState(1); n != 1 || state != evlistener.Ready {
		t.Fatalf("frozen: %d buffered, listener %s: want the event buffered, the listener READY", n, state)
	}
	aborted = true
	h.Abort()
	testhelper.Poll(t, 30*time.Second, "the event published during the freeze", func() (bool, string) {
		got := names()
		return slices.Contains(got, "PROCESS_GROUP_ADDED groupname:during-freeze"), fmt.Sprint(got)
	})
	// Everything runs again: a restart of a is told.
	if _, err := s.Restart(context.Background(), []string{"a"}, true); err != nil {
		t.Fatal(err)
	}
	testhelper.Poll(t, 30*time.Second, "a restarted", func() (bool, string) {
		got := names()
		i := slices.Index(got, "PROCESS_GROUP_ADDED groupname:during-freeze")
		return slices.ContainsFunc(got[i:], func(n string) bool { return strings.HasPrefix(n, "PROCESS_STATE_RUNNING processname:a ") }), fmt.Sprint(got)
	})
	for i, r := range readEvRecs(t, rec) {
		if r.serial != i || r.pid != strconv.Itoa(listenerPID) {
			t.Errorf("event %d: serial %d, pid %s (want %d): %s", i, r.serial, r.pid, listenerPID, r)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// evFileFD is f's descriptor, read without Fd (which makes it blocking).
func evFileFD(f *os.File) int {
	n := -1
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { n = int(fd) })
	}
	return n
}
