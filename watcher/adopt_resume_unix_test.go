//go:build unix

package watcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/ready"
	"github.com/circle-supervisor/circle/internal/testhelper"
	"golang.org/x/sys/unix"
)

// Live upgrade, in one test process: a watcher is frozen (Freeze,
// StopPumps) and a second one adopts its state (Adopt) through a JSON
// round trip, with every descriptor duplicated as exec would keep it.
// The first watcher's checks are cancelled, as exec would end them; it
// stays frozen until the test ends. These tests check what is resumed:
// readiness checks in progress (with their deadline and ready.log tap),
// health checks, notify sockets with their watchdog, and max_age's due
// time.

// init makes this test binary a notify child when asked
// (CIRCLE_ADOPT_HELPER=ping, before TestMain): READY=1 with a STATUS=,
// then WATCHDOG=1 every 50 ms until the file CIRCLE_STOP exists.
func init() {
	if os.Getenv("CIRCLE_ADOPT_HELPER") != "ping" {
		return
	}
	addr := os.Getenv("NOTIFY_SOCKET")
	if strings.HasPrefix(addr, "@") {
		addr = "\x00" + addr[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		os.Exit(4)
	}
	c.Write([]byte("READY=1\nSTATUS=serving 42 clients"))
	stop := os.Getenv("CIRCLE_STOP")
	for {
		if _, err := os.Stat(stop); err == nil {
			for {
				time.Sleep(time.Hour)
			}
		}
		c.Write([]byte("WATCHDOG=1"))
		time.Sleep(50 * time.Millisecond) // the child's ping period
	}
}

// adoptSpawner starts processes like DirectSpawner, but a process's exit
// goes to whoever registered it last (the adopting watcher, as with the
// reaper's adopt).
type adoptSpawner struct {
	mu sync.Mutex
	cb map[int]func(ExitStatus)
}

func newAdoptSpawner() *adoptSpawner { return &adoptSpawner{cb: map[int]func(ExitStatus){}} }

func (s *adoptSpawner) Start(cmd *exec.Cmd, onExit func(ExitStatus)) (int, error) {
	release, err := startCmd(cmd)
	if err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	s.register(pid, onExit)
	go func() {
		cmd.Wait()
		release()
		st := exitStatus(cmd.ProcessState, time.Now())
		s.mu.Lock()
		f := s.cb[pid]
		delete(s.cb, pid)
		s.mu.Unlock()
		f(st)
	}()
	return pid, nil
}

func (s *adoptSpawner) register(pid int, onExit func(ExitStatus)) {
	s.mu.Lock()
	s.cb[pid] = onExit
	s.mu.Unlock()
}

// adoptRig is a watcher started for a test, to be frozen and adopted.
type adoptRig struct {
	t    *testing.T
	spec Spec
	sp   *adoptSpawner
	w1   *Watcher
	f    *Frozen
	w2   *Watcher
	st   AdoptState            // what w2 adopted (after the JSON round trip)
	at   time.Time             // when w2 adopted it
	log  testhelper.SyncBuffer // w2's log
}

// failedFor checks that w2 logged p's failure with why in its reason.
func (r *adoptRig) failedFor(why string) {
	r.t.Helper()
	testhelper.Poll(r.t, 20*time.Second, "the failure logged", func() (bool, string) {
		for _, l := range strings.Split(r.log.String(), "\n") {
			if strings.Contains(l, "process failed") && strings.Contains(l, why) {
				return true, ""
			}
		}
		return false, r.log.String()
	})
}

// startRig starts spec (waiting for it when wait) with an adoptSpawner.
func startRig(t *testing.T, spec Spec, wait bool) *adoptRig {
	t.Helper()
	r := &adoptRig{t: t, spec: spec, sp: newAdoptSpawner()}
	r.w1 = New(spec, r.sp, testLog, nil)
	t.Cleanup(r.cleanup)
	if err := r.w1.Start(ctx30(t), wait); err != nil {
		t.Fatalf("start: %v", err)
	}
	return r
}

// freeze freezes w1 at a quiet moment (a spawn in flight is busy) and
// stops its pumps and notify sockets.
func (r *adoptRig) freeze() {
	r.t.Helper()
	var err error
	ok, desc := testhelper.Wait(20*time.Second, func() (bool, string) {
		r.f, err = r.w1.Freeze()
		if err == nil || !errors.Is(err, ErrBusy) {
			return true, ""
		}
		return false, err.Error()
	})
	if !ok || err != nil {
		r.t.Fatalf("freeze: %v (%s)", err, desc)
	}
	r.f.StopPumps()
}

// adopt does what exec and the new binary do: the state goes through
// JSON, each descriptor of Files is duplicated (the copy the new binary
// owns) and renumbered in the state, the old checks end, and w2 adopts.
// before runs first (the time the upgrade takes).
func (r *adoptRig) adopt(before func()) {
	r.t.Helper()
	fds := map[int]int{}
	for _, f := range r.f.Files() {
		old := fileFD(f)
		nfd, err := unix.Dup(old)
		if err != nil {
			r.t.Fatal(err)
		}
		unix.CloseOnExec(nfd)
		fds[old] = nfd
	}
	for _, p := range r.f.procs {
		if p != nil {
			p.prober.Cancel()
			p.health.Stop()
		}
	}
	data, err := json.Marshal(r.f.State)
	if err != nil {
		r.t.Fatal(err)
	}
	var st AdoptState
	if err := json.Unmarshal(data, &st); err != nil {
		r.t.Fatal(err)
	}
	for i := range st.Pipes {
		st.Pipes[i].FD = fds[st.Pipes[i].FD]
	}
	for _, s := range st.Slots {
		if s.Proc != nil && s.Proc.Notify != nil {
			s.Proc.Notify.FD = fds[s.Proc.Notify.FD]
		}
	}
	if before != nil {
		before()
	}
	r.st = st
	r.w2 = New(r.spec, r.sp, slog.New(slog.NewTextHandler(&r.log, &slog.HandlerOptions{Level: slog.LevelDebug})), nil)
	r.at = time.Now()
	if err := r.w2.Adopt(st, r.sp.register); err != nil {
		r.t.Fatalf("adopt: %v", err)
	}
}

// cleanup stops w2's processes, then lets w1 go.
func (r *adoptRig) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if r.w2 != nil {
		if err := r.w2.Stop(ctx, true); err != nil {
			r.t.Errorf("cleanup stop: %v", err)
		}
		r.w2.Close()
	} else if r.f == nil {
		if err := r.w1.Stop(ctx, true); err != nil {
			r.t.Errorf("cleanup stop: %v", err)
		}
	}
	if r.f == nil {
		r.w1.Close()
		return
	}
	// w1 ends as if exec had replaced it: what queued while it was frozen
	// (timers that fired, reports) is dropped, not run.
	closed := make(chan struct{})
	go func() {
		r.w1.Close()
		close(closed)
	}()
	testhelper.Poll(r.t, 20*time.Second, "the frozen watcher closing", func() (bool, string) {
		r.w1.o.inMu.Lock()
		defer r.w1.o.inMu.Unlock()
		return r.w1.o.closed, ""
	})
	r.w1.o.inMu.Lock()
	r.w1.o.inbox = nil
	r.w1.o.inMu.Unlock()
	r.f.Thaw()
	<-closed
}

// proc1 is the state's first slot's process.
func (r *adoptRig) proc1() *AdoptProc {
	r.t.Helper()
	if len(r.st.Slots) == 0 || r.st.Slots[0].Proc == nil {
		r.t.Fatalf("no process in the adopted state: %+v", r.st)
	}
	return r.st.Slots[0].Proc
}

// untilPast waits for the clock to pass at (the time an upgrade takes).
func untilPast(t *testing.T, at time.Time) {
	t.Helper()
	testhelper.Poll(t, time.Until(at)+30*time.Second, "the clock passing "+at.Format(time.RFC3339Nano), func() (bool, string) {
		return time.Now().After(at), ""
	})
}

// waitGone waits until w's first slot no longer runs pid and returns
// when that was seen.
func waitGone(t *testing.T, w *Watcher, pid int, what string) (ProcStatus, time.Time) {
	t.Helper()
	var q ProcStatus
	testhelper.Poll(t, 60*time.Second, what, func() (bool, string) {
		q = w.Status().Processes[0]
		return q.PID != pid, fmt.Sprintf("%+v", q)
	})
	return q, time.Now()
}

// TestAdoptResumesReadinessChecks: a process still in its readiness
// checks (ready.exec) is handed over (no ErrBusy) and becomes ready
// under the adopting watcher once its condition holds; the deadline it
// had is recorded.
func TestAdoptResumesReadinessChecks(t *testing.T) {
	dir := t.TempDir()
	spec := shSpec(t, "rdy", "exec sleep 100")
	spec.Ready = ReadySpec{Exec: "test -e " + filepath.Join(dir, "go"), Timeout: 60 * time.Second, Interval: 20 * time.Millisecond}
	r := startRig(t, spec, false)
	var p0 ProcStatus
	testhelper.Poll(t, 30*time.Second, "the process running", func() (bool, string) {
		p0 = r.w1.Status().Processes[0]
		return p0.PID > 0, fmt.Sprintf("%+v", p0)
	})
	if p0.Ready {
		t.Fatalf("ready before its condition: %+v", p0)
	}
	r.freeze()
	if !r.f.HandsChecks() {
		t.Error("HandsChecks false with a process in its readiness checks")
	}
	r.adopt(nil)
	ap := r.proc1()
	if !ap.Checking || ap.Ready {
		t.Fatalf("state: checking %v ready %v, want checking", ap.Checking, ap.Ready)
	}
	if want := p0.StartedAt.Add(spec.Ready.Timeout); ap.ReadyDue.Before(p0.StartedAt) || ap.ReadyDue.After(want.Add(5*time.Second)) {
		t.Fatalf("ReadyDue %v: want about %v (started %v + ready.timeout)", ap.ReadyDue, want, p0.StartedAt)
	}
	if q := r.w2.Status().Processes[0]; q.PID != p0.PID || q.Ready {
		t.Fatalf("adopted: %+v, want pid %d not ready", q, p0.PID)
	}
	if ok, _ := r.w2.Reached(CondReady); ok {
		t.Fatal("the adopted watcher is ready before its process")
	}
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	testhelper.Poll(t, 30*time.Second, "ready under the adopting watcher", func() (bool, string) {
		q := r.w2.Status().Processes[0]
		return q.Ready, fmt.Sprintf("%+v", q)
	})
	if q := r.w2.Status().Processes[0]; q.PID != p0.PID || q.Restarts != 0 {
		t.Fatalf("after ready: %+v, want the same process (pid %d)", q, p0.PID)
	}
}

// TestAdoptResumesReadyLog: ready.log keeps reading the output across
// the hand-over (the tap is resumed on the adopted pipe).
func TestAdoptResumesReadyLog(t *testing.T) {
	dir := t.TempDir()
	gate := filepath.Join(dir, "go")
	spec := shSpec(t, "rlog", fmt.Sprintf("echo starting; while [ ! -e %s ]; do sleep 0.02; done; echo listening on port 80; exec sleep 100", gate))
	spec.Ready = ReadySpec{Log: `^listening on port \d+$`, Timeout: 60 * time.Second}
	spec.Stdout = discardSink{}
	r := startRig(t, spec, false)
	var p0 ProcStatus
	testhelper.Poll(t, 30*time.Second, "the process running", func() (bool, string) {
		p0 = r.w1.Status().Processes[0]
		return p0.PID > 0, fmt.Sprintf("%+v", p0)
	})
	r.freeze()
	r.adopt(nil)
	if ap := r.proc1(); !ap.Checking || ap.LogMatched {
		t.Fatalf("state: checking %v log matched %v", ap.Checking, ap.LogMatched)
	}
	if len(r.st.Pipes) == 0 {
		t.Fatal("no pipe handed over")
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	testhelper.Poll(t, 30*time.Second, "ready (its line read by the adopted pump)", func() (bool, string) {
		q := r.w2.Status().Processes[0]
		return q.Ready, fmt.Sprintf("%+v", q)
	})
	if q := r.w2.Status().Processes[0]; q.PID != p0.PID {
		t.Fatalf("after ready: %+v, want pid %d", q, p0.PID)
	}
}

// TestAdoptKeepsReadyDeadline: a process whose readiness deadline passed
// during the upgrade fails at once under the adopting watcher, not a
// whole ready.timeout after the upgrade.
func TestAdoptKeepsReadyDeadline(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const timeout = 8 * time.Second
	spec := shSpec(t, "rdl", "exec sleep 100")
	spec.Ready = ReadySpec{Exec: "test -e " + filepath.Join(dir, "never"), Timeout: timeout, Interval: 20 * time.Millisecond}
	spec.Policy.Respawn = false
	r := startRig(t, spec, false)
	var p0 ProcStatus
	testhelper.Poll(t, 30*time.Second, "the process running", func() (bool, string) {
		p0 = r.w1.Status().Processes[0]
		return p0.PID > 0, fmt.Sprintf("%+v", p0)
	})
	r.freeze()
	due := r.f.State.Slots[0].Proc.ReadyDue
	if due.IsZero() {
		t.Fatal("no readiness deadline recorded")
	}
	r.adopt(func() { untilPast(t, due) })
	q, seen := waitGone(t, r.w2, p0.PID, "the process failed by its readiness deadline")
	if !seen.Before(r.at.Add(timeout)) {
		t.Fatalf("failed at %v, adopted at %v: the deadline (%v) was restarted from the upgrade", seen, r.at, due)
	}
	r.failedFor("not ready in time")
	if q.LastExit.Signal == "" {
		t.Fatalf("after the deadline: %+v, want it stopped as not ready in time", q)
	}
}

// TestAdoptResumesHealth: health checks of an adopted ready process go
// on under the adopting watcher, which restarts it when it becomes
// unhealthy.
func TestAdoptResumesHealth(t *testing.T) {
	dir := t.TempDir()
	sick := filepath.Join(dir, "sick")
	spec := shSpec(t, "hl", "exec sleep 100")
	spec.Policy.MinUptime = 0
	spec.Health = HealthSpec{Exec: "test ! -e " + sick, Interval: 50 * time.Millisecond, Timeout: 5 * time.Second, Retries: 2}
	r := startRig(t, spec, true)
	testhelper.Poll(t, 30*time.Second, "healthy", func() (bool, string) {
		q := r.w1.Status().Processes[0]
		return q.Health == string(ready.HealthHealthy), fmt.Sprintf("%+v", q)
	})
	p0 := r.w1.Status().Processes[0]
	r.freeze()
	if r.f.HandsChecks() {
		t.Error("HandsChecks true for a ready process with health checks only")
	}
	r.adopt(nil)
	if h := r.proc1().Health; h == nil || h.State != ready.HealthHealthy {
		t.Fatalf("state: health %+v, want healthy", h)
	}
	if q := r.w2.Status().Processes[0]; q.PID != p0.PID || q.Health != string(ready.HealthHealthy) {
		t.Fatalf("adopted: %+v, want pid %d healthy", q, p0.PID)
	}
	if err := os.WriteFile(sick, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	q, _ := waitGone(t, r.w2, p0.PID, "restarted once unhealthy")
	r.failedFor("health.exec")
	if q.LastExit.Signal == "" {
		t.Fatalf("after unhealthy: %+v, want an unplanned restart", q)
	}
}

// TestAdoptKeepsMaxAge: a process whose max age passed during the
// upgrade is replaced at once, not max_age after the upgrade.
func TestAdoptKeepsMaxAge(t *testing.T) {
	t.Parallel()
	const age = 8 * time.Second
	spec := shSpec(t, "age", "exec sleep 100")
	spec.Policy.MinUptime = 100 * time.Millisecond
	spec.MaxAge = age
	r := startRig(t, spec, true)
	p0 := r.w1.Status().Processes[0]
	r.freeze()
	due := r.f.State.Slots[0].Proc.AgeDue
	if due.IsZero() || due.Before(p0.StartedAt.Add(age)) {
		t.Fatalf("AgeDue %v: want started (%v) + max_age at least", due, p0.StartedAt)
	}
	r.adopt(func() { untilPast(t, due) })
	q, seen := waitGone(t, r.w2, p0.PID, "replaced at its max age")
	if !seen.Before(r.at.Add(age)) {
		t.Fatalf("replaced at %v, adopted at %v: the max age (due %v) was restarted from the upgrade", seen, r.at, due)
	}
	if q.PlannedRestarts < 1 || q.Restarts != 0 {
		t.Fatalf("after max age: %+v, want a planned restart", q)
	}
}

// TestAdoptKeepsMaxAgeAhead: a max age not yet reached keeps its due
// time in the adopting watcher (recorded again by a second freeze).
func TestAdoptKeepsMaxAgeAhead(t *testing.T) {
	spec := shSpec(t, "age2", "exec sleep 100")
	spec.Policy.MinUptime = 100 * time.Millisecond
	spec.MaxAge = time.Hour
	r := startRig(t, spec, true)
	r.freeze()
	due := r.f.State.Slots[0].Proc.AgeDue
	r.adopt(nil)
	f2, err := r.w2.Freeze()
	if err != nil {
		t.Fatal(err)
	}
	got := f2.State.Slots[0].Proc.AgeDue
	f2.Thaw()
	if !got.Equal(due) {
		t.Fatalf("adopted max age due %v, was %v", got, due)
	}
}

// TestAdoptWatchdogDueKept: a process that never pings (it sent
// READY=1 only) is failed by the watchdog at the due time it had, even
// when that passed during the upgrade; the socket path survives.
func TestAdoptWatchdogDueKept(t *testing.T) {
	t.Parallel()
	const period = 8 * time.Second
	dir := testhelper.ShortDir(t)
	spec := testSpec(t, "wdk", "notify-reload", 1)
	spec.Ready = ReadySpec{Notify: true, Timeout: 20 * time.Second}
	spec.Watchdog = period
	spec.RuntimeDir = filepath.Join(dir, "run")
	spec.Policy.Respawn = false
	r := startRig(t, spec, true)
	p0 := r.w1.Status().Processes[0]
	r.freeze()
	n := r.f.State.Slots[0].Proc.Notify
	if n == nil || n.WatchdogDue.IsZero() || n.PID != p0.PID || !n.State.Ready {
		t.Fatalf("state: notify %+v, want the socket with its watchdog due", n)
	}
	r.adopt(func() { untilPast(t, n.WatchdogDue) })
	if _, err := os.Stat(n.Addr); err != nil {
		t.Fatalf("the notify socket's path: %v", err)
	}
	q, seen := waitGone(t, r.w2, p0.PID, "failed by the watchdog")
	if !seen.Before(r.at.Add(period)) {
		t.Fatalf("failed at %v, adopted at %v: the watchdog (due %v) was restarted from the upgrade", seen, r.at, n.WatchdogDue)
	}
	r.failedFor("watchdog: no WATCHDOG=1")
	if q.LastExit.Signal != "TERM" {
		t.Fatalf("after the watchdog: %+v", q)
	}
}

// TestAdoptNotifyWatchdogPings: a process that keeps pinging across the
// hand-over is never failed (the adopted socket reads its pings, those
// sent during the upgrade included), STATUS= is kept, and once it stops
// pinging the adopting watcher fails it. A Freeze undone (Thaw) first
// must leave the socket read as before.
func TestAdoptNotifyWatchdogPings(t *testing.T) {
	t.Parallel()
	const period = 3 * time.Second
	dir := testhelper.ShortDir(t)
	stop := filepath.Join(dir, "STOP")
	spec := testSpec(t, "wdp", "", 1)
	spec.Env = []string{"CIRCLE_ADOPT_HELPER=ping", "CIRCLE_STOP=" + stop}
	spec.Ready = ReadySpec{Notify: true, Timeout: 20 * time.Second}
	spec.Watchdog = period
	spec.RuntimeDir = filepath.Join(dir, "run")
	r := startRig(t, spec, true)
	p0 := r.w1.Status().Processes[0]
	if !p0.Ready || p0.StatusText != "serving 42 clients" {
		t.Fatalf("after start: %+v", p0)
	}
	same := func(w *Watcher, until time.Time, what string) {
		t.Helper()
		testhelper.Poll(t, time.Until(until)+30*time.Second, what, func() (bool, string) {
			q := w.Status().Processes[0]
			if q.PID != p0.PID || q.Restarts != 0 {
				t.Fatalf("%s: %+v, want pid %d never restarted", what, q, p0.PID)
			}
			return time.Now().After(until), ""
		})
	}
	// An upgrade that does not happen.
	r.freeze()
	r.f.Thaw()
	r.f = nil
	thawed := time.Now()
	same(r.w1, thawed.Add(period+2*time.Second), "pinging after a freeze undone")

	r.freeze()
	n := r.f.State.Slots[0].Proc.Notify
	if n == nil || n.FD < 0 || n.State.Status != "serving 42 clients" {
		t.Fatalf("state: notify %+v", n)
	}
	if !r.f.HandsChecks() {
		t.Error("HandsChecks false with a notify socket")
	}
	r.adopt(nil)
	if q := r.w2.Status().Processes[0]; q.StatusText != "serving 42 clients" {
		t.Fatalf("adopted: %+v, want STATUS= kept", q)
	}
	if _, err := os.Stat(n.Addr); err != nil {
		t.Fatalf("the notify socket's path: %v", err)
	}
	same(r.w2, r.at.Add(period+2*time.Second), "pinging after the hand-over")
	if err := os.WriteFile(stop, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	q, _ := waitGone(t, r.w2, p0.PID, "failed once the pings stopped")
	r.failedFor("watchdog: no WATCHDOG=1")
	if q.LastExit.Signal != "TERM" {
		t.Fatalf("after the watchdog: %+v", q)
	}
	if !strings.HasPrefix(n.Addr, spec.RuntimeDir) {
		t.Fatalf("socket %s not in %s", n.Addr, spec.RuntimeDir)
	}
}

// TestAdoptStateWithoutNewFields: a state written by a binary before the
// resumed checks (no Checking, Health, Notify, AgeDue) adopts as before:
// health checks start afresh, max age is a whole max_age from the
// adoption. Empty, the new fields are left out of the JSON.
func TestAdoptStateWithoutNewFields(t *testing.T) {
	b, err := json.Marshal(AdoptProc{PID: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"Checking", "ReadyDue", "LogMatched", "Health", "Notify", "AgeDue"} {
		if strings.Contains(string(b), `"`+k+`"`) {
			t.Errorf("empty %s written: %s", k, b)
		}
	}
	dir := t.TempDir()
	spec := shSpec(t, "old", "exec sleep 100")
	spec.Policy.MinUptime = 0
	spec.MaxAge = time.Hour
	spec.Health = HealthSpec{Exec: "test ! -e " + filepath.Join(dir, "sick"), Interval: 50 * time.Millisecond, Timeout: 5 * time.Second, Retries: 2}
	r := startRig(t, spec, true)
	p0 := r.w1.Status().Processes[0]
	r.freeze()
	for _, s := range r.f.State.Slots {
		if p := s.Proc; p != nil {
			p.Checking, p.ReadyDue, p.LogMatched, p.Health, p.Notify, p.AgeDue = false, time.Time{}, false, nil, nil, time.Time{}
		}
	}
	r.adopt(nil)
	testhelper.Poll(t, 30*time.Second, "healthy (checks started afresh)", func() (bool, string) {
		q := r.w2.Status().Processes[0]
		return q.PID == p0.PID && q.Health == string(ready.HealthHealthy), fmt.Sprintf("%+v", q)
	})
	f2, err := r.w2.Freeze()
	if err != nil {
		t.Fatal(err)
	}
	due := f2.State.Slots[0].Proc.AgeDue
	f2.Thaw()
	if due.Before(r.at.Add(spec.MaxAge)) {
		t.Fatalf("max age due %v, want a whole max_age from the adoption (%v)", due, r.at)
	}
}
