package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

// recListener is a supervisord event listener written from supervisord's
// documented protocol (standard library only). At start it appends
// "env<TAB>PID<TAB>" and its SUPERVISOR_* variables to $RECORD; then it
// says READY, reads a header line and `len` characters of payload,
// appends "ev<TAB>PID<TAB>header<TAB>payload" (newlines as \n) and
// answers RESULT 2\nOK. With $MARK set and missing, it creates $MARK and
// exits 3 on its first event without answering (a listener that
// crashes).
const recListener = `import os, sys
rec = open(os.environ["RECORD"], "a", encoding="utf-8")
env = " ".join("%s=%s" % (k, os.environ.get(k, "-")) for k in
    ("SUPERVISOR_ENABLED", "SUPERVISOR_PROCESS_NAME", "SUPERVISOR_GROUP_NAME", "SUPERVISOR_SERVER_URL"))
rec.write("env\t%d\t%s\n" % (os.getpid(), env))
rec.flush()
die = False
mark = os.environ.get("MARK")
if mark and not os.path.exists(mark):
    open(mark, "w").close()
    die = True
while True:
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    line = sys.stdin.readline()
    if not line:
        sys.exit(0)
    h = dict(x.split(":", 1) for x in line.split())
    payload = sys.stdin.read(int(h["len"]))
    rec.write("ev\t%d\t%s\t%s\n" % (os.getpid(), line.rstrip("\n"), payload.replace("\n", "\\n")))
    rec.flush()
    if die:
        os._exit(3)
    sys.stdout.write("RESULT 2\nOK")
    sys.stdout.flush()
`

// evRecord is one event a recListener received.
type evRecord struct {
	pid     string
	header  map[string]string
	line    string
	payload string
}

func (r evRecord) name() string { return r.header["eventname"] }

// process is the processname of a PROCESS_STATE payload.
func (r evRecord) process() string {
	f := strings.Fields(r.payload)
	if len(f) == 0 {
		return ""
	}
	return strings.TrimPrefix(f[0], "processname:")
}

// readRecords reads a recListener's file: its events, and the env line
// of each of its processes (by pid).
func readRecords(t *testing.T, path string) (evs []evRecord, envs map[string]string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	envs = map[string]string{}
	for l := range strings.Lines(string(b)) {
		if !strings.HasSuffix(l, "\n") {
			break // being written
		}
		f := strings.Split(strings.TrimSuffix(l, "\n"), "\t")
		switch {
		case f[0] == "env" && len(f) == 3:
			envs[f[1]] = f[2]
		case f[0] == "ev" && len(f) == 4:
			h := map[string]string{}
			for _, kv := range strings.Fields(f[2]) {
				k, v, _ := strings.Cut(kv, ":")
				h[k] = v
			}
			evs = append(evs, evRecord{pid: f[1], header: h, line: f[2], payload: strings.ReplaceAll(f[3], `\n`, "\n")})
		}
	}
	return evs, envs
}

// listenerSetup writes recListener and finds python3 (skipping without it).
func listenerSetup(t *testing.T, dir string) (py, script string) {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("SKIP: python3 is not installed: the event listener of this test is a Python script")
	}
	script = filepath.Join(dir, "listener.py")
	if err := os.WriteFile(script, []byte(recListener), 0o644); err != nil {
		t.Fatal(err)
	}
	return py, script
}

// svConf is a supervisord.conf in dir with the given sections.
func svConf(dir, sections string) string {
	return "[unix_http_server]\nfile=" + dir + "/s.sock\n\n" +
		"[supervisord]\nnodaemon=true\nlogfile=" + dir + "/supervisord.log\npidfile=" + dir + "/supervisord.pid\nchildlogdir=" + dir + "\n\n" +
		"[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n" +
		"[supervisorctl]\nserverurl=unix://" + dir + "/s.sock\n\n" + sections
}

// daemon runs argv (supervisord or circled) in its own process group
// until the test ends it with stop.
type daemon struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	out  *testhelper.SyncBuffer
	done chan struct{}
}

func startDaemon(t *testing.T, name string, argv ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, name: name, cmd: exec.Command(argv[0], argv[1:]...), out: &testhelper.SyncBuffer{}, done: make(chan struct{})}
	d.cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=10")
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	t.Cleanup(d.stop)
	return d
}

// stop ends the daemon with SIGTERM (SIGKILL to its group after 30 s).
func (d *daemon) stop() {
	select {
	case <-d.done:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		d.t.Errorf("%s did not stop on SIGTERM\n%s", d.name, d.out.String())
	}
	syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	<-d.done
}

var pidField = regexp.MustCompile(` pid:\d+`)

// The same supervisord.conf, with an event listener subscribed to
// PROCESS_STATE, runs under Debian's supervisord and under circled; the
// listener (a Python script speaking the protocol) must receive the same
// events about each program: one that crashes after startsecs (RUNNING
// then EXITED expected:0), one that never stays up (BACKOFF until FATAL
// after startretries + 1 starts), one stopped with supervisorctl
// (STOPPING, STOPPED), one with startsecs = 0 that exits 0 at once
// (RUNNING, then EXITED expected:1, though circled's status may never
// have shown it running). flappy's startsecs is 5 s: a start (through
// circled's -race trampoline on a loaded machine) may take over 1 s. Payloads are compared whole but for pids (a pid
// must be the one the earlier event of its process gave), headers but
// for serials (which must count up from 0 without a gap, the pool
// getting every event), and the listener's SUPERVISOR_* variables.
func TestSupervisordEventListenerSameAsCircled(t *testing.T) {
	sd := supervisordPath(t)
	ctl, err := exec.LookPath("supervisorctl")
	if err != nil {
		t.Skip("SKIP: supervisorctl missing (Debian package supervisor)")
	}
	dir, err := os.MkdirTemp("", "sve") // short: a unix socket path
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	py, script := listenerSetup(t, dir)
	rec := filepath.Join(dir, "rec")
	cf := filepath.Join(dir, "supervisord.conf")
	conf := svConf(dir, "[eventlistener:rec]\ncommand = "+py+" "+script+"\nevents = PROCESS_STATE\nbuffer_size = 100\n"+
		"environment = RECORD=\""+rec+"\",PYTHONUTF8=\"1\"\n\n"+
		"[program:crashy]\ncommand = sh -c \"sleep 2; exit 3\"\nstartsecs = 1\nautorestart = false\n\n"+
		"[program:flappy]\ncommand = sh -c \"exit 1\"\nstartsecs = 5\nstartretries = 1\n\n"+
		"[program:sleeper]\ncommand = sleep 1000\nstartsecs = 1\n\n"+
		"[program:quick]\ncommand = true\nstartsecs = 0\nautorestart = false\n")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}

	type result struct {
		byProc map[string][]string // process -> "EVENT payload" with pids normalised
		env    string
	}
	run := func(name string, argv ...string) result {
		os.Remove(rec)
		d := startDaemon(t, name, argv...)
		defer d.stop()
		has := func(evs []evRecord, event, process string) bool {
			return slices.ContainsFunc(evs, func(r evRecord) bool { return r.name() == event && r.process() == process })
		}
		testhelper.Poll(t, 60*time.Second, name+": crashy EXITED, flappy FATAL, sleeper RUNNING", func() (bool, string) {
			evs, _ := readRecords(t, rec)
			var got []string
			for _, r := range evs {
				got = append(got, r.name()+" "+r.process())
			}
			return has(evs, "PROCESS_STATE_EXITED", "crashy") && has(evs, "PROCESS_STATE_FATAL", "flappy") &&
				has(evs, "PROCESS_STATE_RUNNING", "sleeper") && has(evs, "PROCESS_STATE_EXITED", "quick"), fmt.Sprintf("%v\n%s", got, d.out.String())
		})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, ctl, "-c", cf, "stop", "sleeper").CombinedOutput(); err != nil {
			t.Fatalf("%s: supervisorctl stop sleeper: %v\n%s", name, err, out)
		}
		testhelper.Eventually(t, 30*time.Second, name+": sleeper STOPPED", func() bool {
			evs, _ := readRecords(t, rec)
			return has(evs, "PROCESS_STATE_STOPPED", "sleeper")
		})
		evs, envs := readRecords(t, rec)
		res := result{byProc: map[string][]string{}}
		lastPID := map[string]string{}
		for i, r := range evs {
			if s := strconv.Itoa(i); r.header["serial"] != s || r.header["poolserial"] != s {
				t.Errorf("%s: event %d has serial %s, poolserial %s (want %d: one pool gets every event)", name, i, r.header["serial"], r.header["poolserial"], i)
			}
			want := fmt.Sprintf("ver:3.0 server:supervisor serial:%d pool:rec poolserial:%d eventname:%s len:%d",
				i, i, r.name(), utf8.RuneCountInString(r.payload))
			if r.line != want {
				t.Errorf("%s: header %q, want %q", name, r.line, want)
			}
			p := r.process()
			if m := pidField.FindString(r.payload); m != "" {
				// The pid of a RUNNING, EXITED, STOPPING, STOPPED event is
				// the process's: the same from RUNNING to its end.
				if prev := lastPID[p]; prev != "" && prev != m && r.name() != "PROCESS_STATE_RUNNING" {
					t.Errorf("%s: %s %s has%s, the process had%s", name, p, r.name(), m, prev)
				}
				lastPID[p] = m
			}
			res.byProc[p] = append(res.byProc[p], r.name()+" "+pidField.ReplaceAllString(r.payload, " pid:N"))
		}
		if len(envs) != 1 {
			t.Errorf("%s: %d listener processes, want 1: %v", name, len(envs), envs)
		}
		for _, e := range envs {
			res.env = e
		}
		return res
	}
	sv := run("supervisord", sd, "-n", "-c", cf)
	ci := run("circled", filepath.Join(binDir, "circled"), "-c", cf)

	// What supervisord sends (a check of the test itself).
	wantSV := map[string][]string{
		"crashy": {"PROCESS_STATE_STARTING processname:crashy groupname:crashy from_state:STOPPED tries:0",
			"PROCESS_STATE_RUNNING processname:crashy groupname:crashy from_state:STARTING pid:N",
			"PROCESS_STATE_EXITED processname:crashy groupname:crashy from_state:RUNNING expected:0 pid:N"},
		"flappy": {"PROCESS_STATE_STARTING processname:flappy groupname:flappy from_state:STOPPED tries:0",
			"PROCESS_STATE_BACKOFF processname:flappy groupname:flappy from_state:STARTING tries:1",
			"PROCESS_STATE_STARTING processname:flappy groupname:flappy from_state:BACKOFF tries:1",
			"PROCESS_STATE_BACKOFF processname:flappy groupname:flappy from_state:STARTING tries:2",
			"PROCESS_STATE_FATAL processname:flappy groupname:flappy from_state:BACKOFF"},
		"quick": {"PROCESS_STATE_STARTING processname:quick groupname:quick from_state:STOPPED tries:0",
			"PROCESS_STATE_RUNNING processname:quick groupname:quick from_state:STARTING pid:N",
			"PROCESS_STATE_EXITED processname:quick groupname:quick from_state:RUNNING expected:1 pid:N"},
		"sleeper": {"PROCESS_STATE_STARTING processname:sleeper groupname:sleeper from_state:STOPPED tries:0",
			"PROCESS_STATE_RUNNING processname:sleeper groupname:sleeper from_state:STARTING pid:N",
			"PROCESS_STATE_STOPPING processname:sleeper groupname:sleeper from_state:RUNNING pid:N",
			"PROCESS_STATE_STOPPED processname:sleeper groupname:sleeper from_state:STOPPING pid:N"},
	}
	for p, want := range wantSV {
		if !slices.Equal(sv.byProc[p], want) {
			// supervisord's own timing may differ on a loaded machine
			// (`exit 1` outliving startsecs): the comparison below is
			// what matters; this says why it may fail.
			t.Logf("supervisord sent for %s:\n  %s\nexpected:\n  %s", p, strings.Join(sv.byProc[p], "\n  "), strings.Join(want, "\n  "))
		}
	}
	for _, p := range []string{"crashy", "flappy", "sleeper", "quick", "rec"} {
		if !slices.Equal(ci.byProc[p], sv.byProc[p]) {
			t.Errorf("events about %s:\ncircled:\n  %s\nsupervisord:\n  %s", p, strings.Join(ci.byProc[p], "\n  "), strings.Join(sv.byProc[p], "\n  "))
		}
	}
	if ci.env != sv.env {
		t.Errorf("listener environment:\ncircled:     %s\nsupervisord: %s", ci.env, sv.env)
	}
}

// A listener that crashes on an event (exits without its RESULT) is
// restarted, and its successor gets that event again (same serial) and
// the events after it, under circled as under supervisord.
func TestSupervisordEventListenerRestarted(t *testing.T) {
	sd := supervisordPath(t)
	dir, err := os.MkdirTemp("", "svl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	py, script := listenerSetup(t, dir)
	rec, mark := filepath.Join(dir, "rec"), filepath.Join(dir, "mark")
	cf := filepath.Join(dir, "supervisord.conf")
	conf := svConf(dir, "[eventlistener:rec]\ncommand = "+py+" "+script+"\nevents = PROCESS_STATE_EXITED,PROCESS_STATE_RUNNING\n"+
		"environment = RECORD=\""+rec+"\",MARK=\""+mark+"\",PYTHONUTF8=\"1\"\n\n"+
		"[program:crashy]\ncommand = sh -c \"sleep 2; exit 3\"\nstartsecs = 1\nautorestart = false\n")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		argv []string
	}{
		{"supervisord", []string{sd, "-n", "-c", cf}},
		{"circled", []string{filepath.Join(binDir, "circled"), "-c", cf}},
	} {
		os.Remove(rec)
		os.Remove(mark)
		d := startDaemon(t, c.name, c.argv...)
		var evs []evRecord
		var envs map[string]string
		testhelper.Poll(t, 60*time.Second, c.name+": crashy EXITED seen by a restarted listener", func() (bool, string) {
			evs, envs = readRecords(t, rec)
			return slices.ContainsFunc(evs, func(r evRecord) bool {
				return r.name() == "PROCESS_STATE_EXITED" && r.process() == "crashy"
			}), fmt.Sprintf("%+v\n%s", evs, d.out.String())
		})
		d.stop()
		if len(envs) < 2 {
			t.Errorf("%s: %d listener processes, want 2 (the first crashed): %v", c.name, len(envs), envs)
			continue
		}
		first := evs[0]
		var firstN, again int
		for _, r := range evs {
			if r.pid == first.pid {
				firstN++
			} else if r.header["serial"] == first.header["serial"] {
				again++
				if r.payload != first.payload || r.name() != first.name() {
					t.Errorf("%s: event %s sent again as %s %q, first %s %q", c.name, r.header["serial"], r.name(), r.payload, first.name(), first.payload)
				}
			}
		}
		if firstN != 1 {
			t.Errorf("%s: the crashing listener got %d events, want 1: %+v", c.name, firstN, evs)
		}
		if again != 1 {
			t.Errorf("%s: the event the listener crashed on (serial %s) was sent again %d times, want 1: %+v", c.name, first.header["serial"], again, evs)
		}
		if last := evs[len(evs)-1]; last.pid == first.pid {
			t.Errorf("%s: crashy's EXITED went to the crashed listener", c.name)
		}
	}
}

// callbackListener is built on supervisor.childutils, as superlance's
// listeners are: on crashy's PROCESS_STATE_EXITED it calls back the
// supervisor over XML-RPC at $SUPERVISOR_SERVER_URL
// (childutils.getRPCInterface) and records crashy's exit status and
// sleeper's state and pid.
const callbackListener = `import os, sys
from supervisor import childutils
rec = open(os.environ["RECORD"], "a", encoding="utf-8")
exits = 0
while True:
    headers, payload = childutils.listener.wait(sys.stdin, sys.stdout)
    ph, _ = childutils.eventdata(payload + "\n")
    if headers["eventname"] == "PROCESS_STATE_EXITED" and ph["processname"] == "crashy":
        rpc = childutils.getRPCInterface(os.environ)
        crashy = rpc.supervisor.getProcessInfo("crashy")
        exits += 1
        if exits == 1:
            sleeper = rpc.supervisor.getProcessInfo("sleeper")
            rec.write("crashy exitstatus=%d expected=%s sleeper %s pid=%d\n" % (
                crashy["exitstatus"], ph["expected"], sleeper["statename"], sleeper["pid"]))
            rec.flush()
            # Start it again (it was left down: autorestart = false).
            rec.write("startProcess crashy: %s\n" % rpc.supervisor.startProcess("crashy"))
        else:
            rec.write("crashy exited again: %s exitstatus=%d\n" % (crashy["statename"], crashy["exitstatus"]))
        rec.flush()
    childutils.listener.ok(sys.stdout)
`

// A listener written for supervisord that calls it back over XML-RPC
// (SUPERVISOR_SERVER_URL, supervisor.childutils) while it handles an
// event works under circled as under supervisord: same record, with
// sleeper's real pid; it then starts crashy again with startProcess
// (left down after its exit: autorestart = false), which runs and exits
// again, EXITED under both.
func TestSupervisordChildutilsListenerCallsBack(t *testing.T) {
	sd := supervisordPath(t)
	ctl, err := exec.LookPath("supervisorctl")
	if err != nil {
		t.Skip("SKIP: supervisorctl missing (Debian package supervisor)")
	}
	py := ""
	for _, c := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(c, "-c", "import supervisor.childutils").Run() == nil {
			py = c
			break
		}
	}
	if py == "" {
		t.Skip("SKIP: no python3 can import supervisor.childutils (Debian package supervisor)")
	}
	dir, err := os.MkdirTemp("", "svb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	script := filepath.Join(dir, "callback.py")
	if err := os.WriteFile(script, []byte(callbackListener), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := filepath.Join(dir, "rec")
	cf := filepath.Join(dir, "supervisord.conf")
	conf := svConf(dir, "[eventlistener:cb]\ncommand = "+py+" "+script+"\nevents = PROCESS_STATE_EXITED\n"+
		"environment = RECORD=\""+rec+"\",PYTHONUTF8=\"1\"\n\n"+
		"[program:crashy]\ncommand = sh -c \"sleep 2; exit 3\"\nstartsecs = 1\nautorestart = false\n\n"+
		"[program:sleeper]\ncommand = sleep 1000\nstartsecs = 1\n")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		argv []string
	}{
		{"supervisord", []string{sd, "-n", "-c", cf}},
		{"circled", []string{filepath.Join(binDir, "circled"), "-c", cf}},
	} {
		os.Remove(rec)
		d := startDaemon(t, c.name, c.argv...)
		var lines []string
		testhelper.Poll(t, 60*time.Second, c.name+": the listener's three records", func() (bool, string) {
			b, _ := os.ReadFile(rec)
			lines = strings.Split(strings.TrimSpace(string(b)), "\n")
			return strings.HasSuffix(string(b), "\n") && len(lines) >= 3, string(b) + d.out.String()
		})
		out, _ := exec.Command(ctl, "-c", cf, "pid", "sleeper").Output()
		want := []string{
			"crashy exitstatus=3 expected=0 sleeper RUNNING pid=" + strings.TrimSpace(string(out)),
			// A program left down (EXITED) starts again on request,
			"startProcess crashy: True",
			// runs past startsecs and exits again: EXITED, not STOPPED.
			"crashy exited again: EXITED exitstatus=3",
		}
		if !slices.Equal(lines, want) {
			t.Errorf("%s: listener recorded %q, want %q", c.name, lines, want)
		}
		d.stop()
	}
}
