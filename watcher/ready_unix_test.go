//go:build unix

package watcher

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

// Readiness, liveness and exit-code policy (issue 15) with real
// processes: sh and python3.

// python is python3's interpreter itself (testhelper.Python3).
var python = testhelper.Python3

func needPython(t *testing.T) string {
	t.Helper()
	py, err := python()
	if err != nil {
		t.Skip("python3 not found")
	}
	return py
}

// shSpec runs script with sh in one slot.
func shSpec(t *testing.T, name, script string) Spec {
	t.Helper()
	spec := testSpec(t, name, "", 1)
	spec.Argv = []string{"/bin/sh", "-c", script}
	spec.Env = []string{"PATH=" + os.Getenv("PATH")}
	spec.GracefulTimeout = 5 * time.Second
	return spec
}

// freePort returns a TCP port nobody listens on (right now).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func newWatcher(t *testing.T, spec Spec) *Watcher {
	t.Helper()
	w := New(spec, DirectSpawner{}, testLog, nil)
	t.Cleanup(func() {
		// A hang, not a slow machine: stopping TestStatusDuringMassSpawn's
		// 2000 processes took more than 20 s at a load of 35 on 2 cores.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := w.Stop(ctx, true); err != nil {
			t.Errorf("cleanup stop: %v", err)
		}
	})
	return w
}

func ctx30(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestStartFailsWhenNeverReady(t *testing.T) {
	spec := shSpec(t, "never", "exec sleep 100")
	spec.Ready = ReadySpec{TCP: fmt.Sprintf("127.0.0.1:%d", freePort(t)), Timeout: 500 * time.Millisecond, Interval: 50 * time.Millisecond}
	w := newWatcher(t, spec)
	t0 := time.Now()
	err := w.Start(ctx30(t), true)
	if err == nil || !strings.Contains(err.Error(), "never.1: ready.tcp 127.0.0.1:") || !strings.Contains(err.Error(), "not ready in time") {
		t.Fatalf("start: err = %v, want the ready.tcp failure", err)
	}
	if d := time.Since(t0); d < 500*time.Millisecond {
		t.Fatalf("start failed after %s, before ready.timeout", d)
	}
	// The process was stopped as a failed start: the slot backs off and
	// shows why.
	testhelper.Eventually(t, 10*time.Second, "the slot in backoff with the reason", func() bool {
		st := w.Status()
		return len(st.Processes) == 1 && strings.Contains(st.Processes[0].Error, "ready.tcp") &&
			(st.Processes[0].State == ProcBackoff || st.Processes[0].State == ProcStarting)
	})
	if st := w.Status(); st.State == StateActive {
		t.Fatalf("state = %s with a process that is never ready", st.State)
	}
}

func TestStartWaitsForHTTPReady(t *testing.T) {
	py := needPython(t)
	port := freePort(t)
	spec := shSpec(t, "web", fmt.Sprintf("sleep 0.5; exec %s -m http.server --bind 127.0.0.1 %d", py, port))
	spec.Ready = ReadySpec{HTTP: fmt.Sprintf("http://127.0.0.1:%d/", port), Timeout: 20 * time.Second, Interval: 50 * time.Millisecond}
	w := newWatcher(t, spec)
	if err := w.Start(ctx30(t), true); err != nil {
		t.Fatal(err)
	}
	// Start returned: the server answers now, not testhelper.Eventually.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatalf("GET right after start: %v", err)
	}
	resp.Body.Close()
	st := w.Status()
	if st.State != StateActive || !st.Processes[0].Ready || st.Processes[0].State != ProcRunning {
		t.Fatalf("status = %+v", st)
	}
	// restart: returns once the new server answers.
	old := st.Processes[0].PID
	if err := restart(w)(ctx30(t), true); err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatalf("GET right after restart: %v", err)
	}
	resp.Body.Close()
	if p := w.Status().Processes[0]; p.PID == old || !p.Ready {
		t.Fatalf("after restart: %+v (old pid %d)", p, old)
	}
}

func TestStartFailsOnQuickExit(t *testing.T) {
	spec := shSpec(t, "quick", "sleep 0.3; exit 3")
	// Far above the 0.3 s the script lives: a loaded machine that takes
	// seconds to fork sh and sleep must still see the exit before
	// min_uptime counts the process as up.
	spec.Policy.MinUptime = 20 * time.Second
	w := newWatcher(t, spec)
	err := w.Start(ctx30(t), true)
	if err == nil || !strings.Contains(err.Error(), "quick.1: exited with code 3 after") {
		t.Fatalf("start: err = %v, want the exit code", err)
	}
}

func TestStartWaitsMinUptimeWithoutChecks(t *testing.T) {
	spec := shSpec(t, "up", "exec sleep 100")
	spec.Policy.MinUptime = 300 * time.Millisecond
	w := newWatcher(t, spec)
	t0 := time.Now()
	if err := w.Start(ctx30(t), true); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Fatalf("start returned after %s, before min_uptime", d)
	}
	if st := w.Status(); st.State != StateActive || !st.Processes[0].Ready {
		t.Fatalf("status = %+v", st)
	}
	if ok, why := w.Reached(CondReady); !ok {
		t.Fatalf("Reached(ready) = false, %s", why)
	}
}

func TestReadyLog(t *testing.T) {
	spec := shSpec(t, "log", "echo booting; sleep 0.2; echo 'listening on port 1'; exec sleep 100")
	spec.Ready = ReadySpec{Log: `^listening on port \d+$`, Timeout: 10 * time.Second}
	spec.Stdout = discardSink{}
	w := newWatcher(t, spec)
	if err := w.Start(ctx30(t), true); err != nil {
		t.Fatal(err)
	}
	if p := w.Status().Processes[0]; !p.Ready {
		t.Fatalf("not ready: %+v", p)
	}
}

type discardSink struct{}

func (discardSink) Open(int, int) io.WriteCloser { return nopCloser{} }

type nopCloser struct{}

func (nopCloser) Write(b []byte) (int, error) { return len(b), nil }
func (nopCloser) Close() error                { return nil }

// notifyScript speaks sd_notify: READY=1 and STATUS= after a moment,
// then WATCHDOG=1 pings until the file STOP exists.
const notifyScript = `
import os, socket, sys, time
addr = os.environ["NOTIFY_SOCKET"]
if addr.startswith("@"):
    addr = "\0" + addr[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
def send(m):
    s.sendto(m.encode(), addr)
time.sleep(0.2)
send("STATUS=warming up")
send("READY=1\nSTATUS=serving 42 clients")
stop = sys.argv[1]
while not os.path.exists(stop):
    send("WATCHDOG=1")
    time.sleep(0.05)
time.sleep(100)
`

func TestNotifyReadyStatusWatchdog(t *testing.T) {
	py := needPython(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "n.py")
	if err := os.WriteFile(script, []byte(notifyScript), 0o644); err != nil {
		t.Fatal(err)
	}
	stop := filepath.Join(dir, "STOP")
	spec := shSpec(t, "nt", "")
	spec.Argv = []string{py, script, stop}
	spec.Ready = ReadySpec{Notify: true, Timeout: 20 * time.Second}
	// The watchdog runs from the spawn: its first period covers the
	// interpreter's start and the script's first ping, which a loaded
	// machine can stretch to seconds (a pyenv shim took 1-2 s at a load
	// of 18 on 2 cores; 5 s was too close). The period is also how long
	// the missed-ping restart below takes.
	spec.Watchdog = 10 * time.Second
	spec.RuntimeDir = filepath.Join(dir, "run")
	w := newWatcher(t, spec)
	if err := w.Start(ctx30(t), true); err != nil {
		t.Fatal(err)
	}
	p := w.Status().Processes[0]
	if !p.Ready || p.StatusText != "serving 42 clients" {
		t.Fatalf("after start: %+v", p)
	}
	if fi, err := os.Stat(spec.RuntimeDir); err != nil || fi.Mode().Perm() != 0o711 {
		t.Fatalf("runtime dir: %v %v", fi, err)
	}
	// Pings stop: the watchdog restarts it as a failure.
	os.WriteFile(stop, nil, 0o644)
	testhelper.Eventually(t, 30*time.Second, "a restart after the missed ping", func() bool {
		q := w.Status().Processes[0]
		return q.PID != p.PID && q.Restarts >= 1
	})
	if q := w.Status().Processes[0]; q.LastExit.Signal != "TERM" {
		t.Fatalf("after the watchdog: %+v", q)
	}
}

func TestReloadSignal(t *testing.T) {
	dir := t.TempDir()
	got := filepath.Join(dir, "hup")
	armed := filepath.Join(dir, "armed")
	spec := shSpec(t, "hup", fmt.Sprintf("trap 'echo hup >> %s' HUP; touch %s; while :; do sleep 0.05; done", got, armed))
	spec.ReloadSignal = "HUP"
	// Ready once the trap is set.
	spec.Ready = ReadySpec{Exec: "test -e " + armed, Interval: 20 * time.Millisecond}
	w := newWatcher(t, spec)
	if err := w.Start(ctx30(t), true); err != nil {
		t.Fatal(err)
	}
	pid := w.Status().Processes[0].PID
	if err := w.Reload(ctx30(t), true); err != nil {
		t.Fatal(err)
	}
	testhelper.Eventually(t, 10*time.Second, "the trap to run", func() bool {
		b, _ := os.ReadFile(got)
		return string(b) == "hup\n"
	})
	if p := w.Status().Processes[0]; p.PID != pid {
		t.Fatalf("reload with reload_signal replaced the process: %+v", p)
	}
}

func TestReloadReplacesAfterReady(t *testing.T) {
	dir := t.TempDir()
	spec := shSpec(t, "rr", "touch "+dir+"/$$; exec sleep 100")
	spec.NumProcesses = 2
	spec.Ready = ReadySpec{Exec: "test -e " + dir + "/go", Timeout: 20 * time.Second, Interval: 20 * time.Millisecond}
	os.WriteFile(filepath.Join(dir, "go"), nil, 0o644)
	w := newWatcher(t, spec)
	if err := w.Start(ctx30(t), true); err != nil {
		t.Fatal(err)
	}
	before := w.PIDs()
	// Not ready: the new processes fail, the old ones stay.
	os.Remove(filepath.Join(dir, "go"))
	w.Update(func() Spec { s := spec; s.Ready.Timeout = 400 * time.Millisecond; return s }())
	err := w.Reload(ctx30(t), true)
	if err == nil || !strings.Contains(err.Error(), "rr.1: ready.exec") || !strings.Contains(err.Error(), "rr.2: ready.exec") {
		t.Fatalf("reload: err = %v", err)
	}
	if after := w.PIDs(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("pids %v after a failed reload, want %v", after, before)
	}
	if st := w.Status(); st.State != StateActive {
		t.Fatalf("state = %s", st.State)
	}
	// Ready: each is replaced.
	os.WriteFile(filepath.Join(dir, "go"), nil, 0o644)
	if err := w.Reload(ctx30(t), true); err != nil {
		t.Fatal(err)
	}
	after := w.PIDs()
	if len(after) != 2 || after[0] == before[0] || after[1] == before[1] {
		t.Fatalf("pids %v after reload, before %v", after, before)
	}
	for _, pid := range before {
		if alive(pid) {
			t.Errorf("old pid %d still alive after reload", pid)
		}
	}
}

func TestOnFailureExitCodes(t *testing.T) {
	dir := t.TempDir()
	code := filepath.Join(dir, "code")
	os.WriteFile(code, []byte("2"), 0o644)
	spec := shSpec(t, "of", "sleep 0.1; exit $(cat "+code+")")
	spec.Policy.MinUptime = 0
	spec.Policy.OnFailure = true
	spec.Policy.ExitCodes = []int{0, 2}
	w := newWatcher(t, spec)
	if err := w.Start(ctx30(t), true); err != nil {
		t.Fatal(err)
	}
	// exit 2 is expected: left down.
	testhelper.Eventually(t, 10*time.Second, "the slot left down", func() bool {
		p := w.Status().Processes[0]
		return p.State == ProcExited && p.LastExit.Code == 2
	})
	if p := w.Status().Processes[0]; p.Restarts != 0 {
		t.Fatalf("restarted after an expected exit: %+v", p)
	}
	// exit 3 is a failure: restarted.
	os.WriteFile(code, []byte("3"), 0o644)
	w.Stop(ctx30(t), true)
	if err := w.Start(ctx30(t), true); err != nil {
		t.Fatal(err)
	}
	testhelper.Eventually(t, 10*time.Second, "a restart after exit 3", func() bool {
		return w.Status().Processes[0].Restarts >= 1
	})
	// A signal circled did not send is a failure; one it sent is not.
	os.WriteFile(code, []byte("0"), 0o644)
	spec.Argv = []string{"/bin/sh", "-c", "exec sleep 100"}
	w2 := newWatcher(t, spec)
	if err := w2.Start(ctx30(t), true); err != nil {
		t.Fatal(err)
	}
	p := w2.Status().Processes[0]
	syscall.Kill(p.PID, syscall.SIGKILL)
	testhelper.Eventually(t, 10*time.Second, "a restart after an outside SIGKILL", func() bool {
		q := w2.Status().Processes[0]
		return q.Restarts == 1 && q.PID != p.PID && q.PID != 0
	})
	q := w2.Status().Processes[0]
	if err := w2.Signal("KILL", 0, false); err != nil {
		t.Fatal(err)
	}
	testhelper.Eventually(t, 10*time.Second, "left down after circled's SIGKILL", func() bool {
		r := w2.Status().Processes[0]
		return r.State == ProcExited && r.LastExit.Signal == "KILL" && r.PID == 0
	})
	if r := w2.Status().Processes[0]; r.Restarts != 1 || q.PID == 0 {
		t.Fatalf("after circled's signal: %+v", r)
	}
}

func TestHealthUnhealthyRestarts(t *testing.T) {
	py := needPython(t)
	dir := t.TempDir()
	port := freePort(t)
	// Serves until the file DOWN exists, then stops answering but lives on.
	script := fmt.Sprintf(`
import os, socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", %d)); s.listen(16)
s.settimeout(0.05)
while not os.path.exists(%q):
    try:
        c, _ = s.accept(); c.close()
    except socket.timeout:
        pass
s.close()
time.sleep(100)
`, port, filepath.Join(dir, "DOWN"))
	os.WriteFile(filepath.Join(dir, "s.py"), []byte(script), 0o644)
	spec := shSpec(t, "hl", "")
	spec.Argv = []string{py, filepath.Join(dir, "s.py")}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	spec.Ready = ReadySpec{TCP: addr, Timeout: 20 * time.Second, Interval: 20 * time.Millisecond}
	spec.Health = HealthSpec{TCP: addr, Interval: 50 * time.Millisecond, Timeout: time.Second, Retries: 2}
	w := newWatcher(t, spec)
	if err := w.Start(ctx30(t), true); err != nil {
		t.Fatal(err)
	}
	testhelper.Eventually(t, 10*time.Second, "healthy", func() bool { return w.Status().Processes[0].Health == "healthy" })
	pid := w.Status().Processes[0].PID
	os.WriteFile(filepath.Join(dir, "DOWN"), nil, 0o644)
	testhelper.Eventually(t, 15*time.Second, "a restart after unhealthy", func() bool {
		p := w.Status().Processes[0]
		return p.PID != pid && p.Restarts == 1
	})
}

func TestWIDFormat(t *testing.T) {
	dir := t.TempDir()
	spec := shSpec(t, "wf", "echo $CIRCLED_WID > "+dir+"/"+WIDToken+"; exec sleep 100")
	spec.NumProcesses = 2
	spec.WIDOffset, spec.WIDWidth = 4, 3
	spec.Policy.MinUptime = 0
	w := newWatcher(t, spec)
	if err := w.Start(ctx30(t), true); err != nil {
		t.Fatal(err)
	}
	for wid, name := range map[int]string{1: "005", 2: "006"} {
		testhelper.Eventually(t, 10*time.Second, name, func() bool {
			b, _ := os.ReadFile(filepath.Join(dir, name))
			return strings.TrimSpace(string(b)) == fmt.Sprint(wid)
		})
	}
	if got := FormatWID(7, 0, 0); got != "7" {
		t.Fatalf("FormatWID(7, 0, 0) = %q", got)
	}
}

func TestReached(t *testing.T) {
	spec := shSpec(t, "up", "exec sleep 100")
	spec.Policy.MinUptime = 300 * time.Millisecond
	w := newWatcher(t, spec)
	if ok, why := w.Reached(CondStarted); ok || why != StateStopped {
		t.Fatalf("stopped: Reached(started) = %v, %q", ok, why)
	}
	if err := w.Start(ctx30(t), false); err != nil {
		t.Fatal(err)
	}
	if ok, _ := w.Reached(CondStarted); !ok {
		t.Fatal("Reached(started) = false with a process running")
	}
	testhelper.Eventually(t, 10*time.Second, "ready", func() bool { ok, _ := w.Reached(CondReady); return ok })
	if ok, why := w.Reached(CondCompleted); ok || !strings.Contains(why, "respawns") {
		t.Fatalf("Reached(completed) = %v, %q for a respawning watcher", ok, why)
	}

	for code, want := range map[int]bool{0: true, 1: false} {
		spec := shSpec(t, "once", fmt.Sprintf("exit %d", code))
		spec.Policy.Respawn = false
		spec.Policy.MinUptime = 0
		w := newWatcher(t, spec)
		if err := w.Start(ctx30(t), false); err != nil {
			t.Fatal(err)
		}
		testhelper.Eventually(t, 10*time.Second, "the one-shot to end", func() bool {
			st := w.Status()
			return len(st.Processes) == 1 && st.Processes[0].State == ProcExited
		})
		ok, why := w.Reached(CondCompleted)
		if ok != want || (!ok && why != "exited with code 1") {
			t.Fatalf("exit %d: Reached(completed) = %v, %q", code, ok, why)
		}
	}
}

func TestStartFailsOnSpawnError(t *testing.T) {
	spec := shSpec(t, "nosuch", "")
	spec.Argv = []string{"/nonexistent/circle-test-program"}
	w := newWatcher(t, spec)
	err := w.Start(ctx30(t), true)
	if err == nil || !strings.Contains(err.Error(), "nosuch.1: ") || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("start: err = %v", err)
	}
}
