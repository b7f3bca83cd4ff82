//go:build unix

package evlistener

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSupervisordParity runs Debian's supervisord with a listener
// (testdata/listener.py) subscribed to PROCESS_STATE and three programs:
// one that exits after startsecs, one that never stays up until supervisord
// gives up, one stopped through supervisorctl. Then it feeds the same
// histories to a Tracker and compares what each sends: event names,
// payloads (with supervisord's pids) and the header line but for serials.
func TestSupervisordParity(t *testing.T) {
	py := needPython(t)
	sd, err := exec.LookPath("supervisord")
	if err != nil {
		t.Skip("SKIP: supervisord is not installed (Debian package supervisor)")
	}
	ctl, err := exec.LookPath("supervisorctl")
	if err != nil {
		t.Skip("SKIP: supervisorctl is not installed (Debian package supervisor)")
	}
	dir := t.TempDir()
	script, err := filepath.Abs(filepath.Join("testdata", "listener.py"))
	if err != nil {
		t.Fatal(err)
	}
	rec := filepath.Join(dir, "rec")
	conf := filepath.Join(dir, "supervisord.conf")
	cfg := fmt.Sprintf(`[supervisord]
nodaemon = true
logfile = %[1]s/supervisord.log
pidfile = %[1]s/supervisord.pid
childlogdir = %[1]s
[unix_http_server]
file = %[1]s/s.sock
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[supervisorctl]
serverurl = unix://%[1]s/s.sock
[eventlistener:rec]
command = %[2]s %[3]s
events = PROCESS_STATE,TICK_5,SUPERVISOR_STATE_CHANGE,PROCESS_GROUP
buffer_size = 100
environment = RECORD="%[4]s",PYTHONUTF8="1"
[program:crashy]
command = sh -c "sleep 2; exit 3"
startsecs = 1
autorestart = false
[program:flappy]
command = sh -c "exit 1"
startsecs = 1
startretries = 2
[program:sleeper]
command = sleep 1000
startsecs = 1
`, dir, py, script, rec)
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sd, "-c", conf)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	defer func() {
		syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "supervisord.log"))
			t.Logf("supervisord.log:\n%s", b)
		}
	}()

	// The events about the three programs, in the order sent.
	ours := func() []record {
		var out []record
		for _, r := range records(t, rec) {
			if strings.HasPrefix(r.header["eventname"], "PROCESS_STATE_") && !strings.Contains(r.payload, "groupname:rec ") {
				out = append(out, r)
			}
		}
		return out
	}
	has := func(rs []record, name, process string) bool {
		for _, r := range rs {
			if r.header["eventname"] == name && strings.HasPrefix(r.payload, "processname:"+process+" ") {
				return true
			}
		}
		return false
	}
	others := func() map[string]record { // the first of each other type
		out := map[string]record{}
		for _, r := range records(t, rec) {
			if n := r.header["eventname"]; !strings.HasPrefix(n, "PROCESS_STATE_") {
				if _, ok := out[n]; !ok {
					out[n] = r
				}
			}
		}
		return out
	}
	waitFor(t, 60*time.Second, "crashy EXITED, flappy FATAL, sleeper RUNNING, a TICK_5", func() bool {
		rs := ours()
		_, tick := others()["TICK_5"]
		return has(rs, "PROCESS_STATE_EXITED", "crashy") && has(rs, "PROCESS_STATE_FATAL", "flappy") &&
			has(rs, "PROCESS_STATE_RUNNING", "sleeper") && tick
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, ctl, "-c", conf, "stop", "sleeper").CombinedOutput(); err != nil {
		t.Fatalf("supervisorctl stop sleeper: %v\n%s", err, out)
	}
	waitFor(t, 30*time.Second, "sleeper STOPPED", func() bool { return has(ours(), "PROCESS_STATE_STOPPED", "sleeper") })

	// supervisord's path depends on its timing (on a loaded machine
	// `exit 1` may outlive startsecs by its clock: RUNNING then EXITED),
	// so the Tracker is told the facts of the path it took: a spawn, up,
	// a stop begun, an exit (expected or not), a give-up. It must find
	// every from_state, tries and pid itself.
	got := ours()
	pidRE := regexp.MustCompile(` pid:(\d+)`)
	pidIn := func(r record) int {
		if m := pidRE.FindStringSubmatch(r.payload); m != nil {
			n, _ := strconv.Atoi(m[1])
			return n
		}
		return 0
	}
	procOf := func(r record) string { return strings.TrimPrefix(strings.Fields(r.payload)[0], "processname:") }
	tr := NewTracker()
	cur := map[string]int{} // the pid the Tracker was given at the last spawn
	synthetic := 1 << 22
	var mine []StateChange
	for i, r := range got {
		name := procOf(r)
		var cs []StateChange
		switch strings.TrimPrefix(r.header["eventname"], "PROCESS_STATE_") {
		case StateStarting:
			// The pid shows in the process's next event that has one.
			pid := 0
			for _, n := range got[i+1:] {
				if procOf(n) != name {
					continue
				}
				if e := n.header["eventname"]; e == "PROCESS_STATE_STARTING" || e == "PROCESS_STATE_BACKOFF" {
					break
				}
				pid = pidIn(n)
				break
			}
			if pid == 0 {
				synthetic++
				pid = synthetic
			}
			cur[name] = pid
			cs = tr.Spawned(name, name, pid)
		case StateRunning:
			cs = tr.Running(name, name, pidIn(r))
		case StateBackoff:
			cs = tr.Exited(name, name, cur[name], false)
		case StateExited:
			cs = tr.Exited(name, name, pidIn(r), strings.Contains(r.payload, " expected:1 "))
		case StateStopping:
			cs = tr.Stopping(name, name, pidIn(r))
		case StateStopped:
			if tr.State(name, name) == StateBackoff {
				cs = tr.Stopping(name, name, 0)
			} else {
				cs = tr.Exited(name, name, pidIn(r), false)
			}
		case StateFatal:
			cs = tr.GaveUp(name, name)
		default:
			t.Fatalf("unexpected event %q", r.line)
		}
		if len(cs) != 1 {
			t.Fatalf("event %d %q %q: the Tracker made %d changes: %+v", i, r.line, r.payload, len(cs), cs)
		}
		mine = append(mine, cs[0])
	}
	for _, want := range []string{"PROCESS_STATE_EXITED processname:crashy groupname:crashy from_state:RUNNING expected:0",
		"PROCESS_STATE_FATAL processname:flappy", "PROCESS_STATE_BACKOFF processname:flappy",
		"PROCESS_STATE_STOPPING processname:sleeper", "PROCESS_STATE_STOPPED processname:sleeper"} {
		found := false
		for _, r := range got {
			found = found || strings.HasPrefix(r.header["eventname"]+" "+r.payload, want)
		}
		if !found {
			t.Errorf("supervisord sent no %q", want)
		}
	}
	want := got
	b := NewBus("")
	defer b.Close()
	p, _ := newPool(t, b, "rec", 100, "PROCESS_STATE")
	serials := regexp.MustCompile(`serial:\d+`)
	same := func(what string, ev Event, w record) {
		t.Helper()
		header, _, _ := strings.Cut(string(p.envelope(&queued{ev: ev})), "\n")
		if ev.Name != w.header["eventname"] || ev.Payload != w.payload ||
			serials.ReplaceAllString(header, "serial:N") != serials.ReplaceAllString(w.line, "serial:N") {
			t.Errorf("%s:\n mine %s | %q\nsupervisord %s | %q", what, header, ev.Payload, w.line, w.payload)
		}
	}
	for i, sc := range mine {
		same(fmt.Sprintf("event %d", i), sc.Event(), want[i])
	}
	o := others()
	when, _ := strconv.ParseInt(strings.TrimPrefix(o["TICK_5"].payload, "when:"), 10, 64)
	same("TICK_5", Tick(5, time.Unix(when+3, 0)), o["TICK_5"])
	same("SUPERVISOR_STATE_CHANGE_RUNNING", SupervisorRunning(), o["SUPERVISOR_STATE_CHANGE_RUNNING"])
	g := strings.TrimSuffix(strings.TrimPrefix(o["PROCESS_GROUP_ADDED"].payload, "groupname:"), "\n")
	same("PROCESS_GROUP_ADDED", ProcessGroupAdded(g), o["PROCESS_GROUP_ADDED"])
}
