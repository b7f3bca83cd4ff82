//go:build linux

package main

// Issue 18 §3 against the real circled binary (built by TestMain in
// script_test.go): supervisord's XML-RPC on the control socket, driven by
// Python's xmlrpc.client, Debian's supervisorctl and Ansible's
// community.general.supervisorctl. Every check polls with a deadline;
// nothing sleeps to let something happen.

import (
	"bufio"
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

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/internal/testhelper"
)

// rpc2Watchers: web (sleep), printer (a shell printing a line per process,
// logged to a file per wid), chatty (a shell printing a line per second on
// circled's stdout), hup (traps HUP and USR1 into a file), cron (not
// autostarted).
const rpc2Watchers = `
[watcher:web]
cmd = sleep 1001

[watcher:printer]
cmd = sh -c 'echo "printer $CIRCLED_WID says hello"; echo "printer $CIRCLED_WID on stderr" >&2; exec sleep 1002'
numprocesses = 2
stdout_stream.class = FileStream
stdout_stream.filename = {dir}/printer.$(circle.wid).log

[watcher:chatty]
cmd = sh -c 'i=0; while :; do echo "chatty line $i"; i=$((i+1)); sleep 0.2; done'

[watcher:hup]
cmd = sh -c 'trap "echo got HUP >> {dir}/hup.out" HUP; trap "echo got USR1 >> {dir}/hup.out" USR1; echo ready >> {dir}/hup.out; while :; do sleep 0.1; done'

[watcher:cron]
cmd = sleep 1004
autostart = false
`

// startRPC2Circled runs circled with rpc2Watchers and waits for every
// autostart watcher to be active.
func startRPC2Circled(t *testing.T) (*circledProc, string) {
	t.Helper()
	dir := t.TempDir()
	p := startCircled(t, dir, strings.ReplaceAll(rpc2Watchers, "{dir}", dir))
	p.up()
	for _, n := range []string{"web", "printer", "chatty", "hup"} {
		p.waitState(n, "active")
	}
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.ctl("quit")
			p.exit()
		}
	})
	return p, dir
}

// watcher returns `circlectl status --json name`.
func (p *circledProc) watcher(name string) ctl.WatcherStatus {
	p.t.Helper()
	var st ctl.Status
	if err := json.Unmarshal([]byte(p.mustCtl("status", "--json", name)), &st); err != nil {
		p.t.Fatal(err)
	}
	if len(st.Watchers) != 1 {
		p.t.Fatalf("status %s: %+v", name, st)
	}
	return st.Watchers[0]
}

// livePIDs are the pids of name's running processes in slot (wid)
// order: printer_1's pid first. Slots spawn in parallel, so pid order is
// not slot order.
func (p *circledProc) livePIDs(name string) []int {
	procs := slices.Clone(p.watcher(name).Processes)
	slices.SortFunc(procs, func(a, b ctl.ProcessStatus) int { return a.WID - b.WID })
	var pids []int
	for _, pr := range procs {
		if pr.PID > 0 && pr.State == "running" {
			pids = append(pids, pr.PID)
		}
	}
	return pids
}

// waitState polls until watcher name is in state (and, when active, has
// all its processes running).
func (p *circledProc) waitState(name, state string) ctl.WatcherStatus {
	p.t.Helper()
	var w ctl.WatcherStatus
	testhelper.Poll(p.t, waitTimeout, name+" "+state, func() (bool, string) {
		w = p.watcher(name)
		ok := w.State == state && (state != "active" || len(p.livePIDs(name)) == w.NumProcesses)
		return ok, fmt.Sprintf("%+v", w)
	})
	return w
}

// pyUnix is an xmlrpc.client over circled's unix socket, reading JSON
// calls [[method, args...], ...] from argv and printing one JSON result
// (or {"fault": [code, string]}) per call.
const pyUnix = `
import http.client, json, socket, sys, xmlrpc.client
class UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path):
        super().__init__()
        self.path = path
    def make_connection(self, host):
        c = http.client.HTTPConnection("localhost")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.path)
        c.sock = s
        return c
s = xmlrpc.client.ServerProxy("http://localhost/RPC2", transport=UnixTransport(sys.argv[1]))
for call in json.loads(sys.argv[2]):
    name, args = call[0], call[1:]
    f = s
    for part in name.split("."):
        f = getattr(f, part)
    try:
        print(json.dumps(f(*args)))
    except xmlrpc.client.Fault as e:
        print(json.dumps({"fault": [e.faultCode, e.faultString]}))
    sys.stdout.flush()
`

// pyCall runs calls through Python's xmlrpc.client and returns one raw
// JSON result per call.
func pyCall(t *testing.T, py, script, socket string, calls ...[]any) []json.RawMessage {
	t.Helper()
	in, err := json.Marshal(calls)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, script, socket, string(in))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python %s: %v\n%s", in, err, stderr.String())
	}
	var res []json.RawMessage
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		res = append(res, json.RawMessage(l))
	}
	if len(res) != len(calls) {
		t.Fatalf("python %s: %d results:\n%s", in, len(res), out)
	}
	return res
}

type procInfo struct {
	Name, Group, Statename, Description string
	PID, State                          int
	StdoutLogfile                       string `json:"stdout_logfile"`
}

type groupResult struct {
	Name, Group, Description string
	Status                   int
}

func TestRPC2PythonXMLRPC(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("SKIP: python3 is not on PATH: cannot drive circled with xmlrpc.client")
	}
	p, dir := startRPC2Circled(t)
	script := filepath.Join(t.TempDir(), "client.py")
	if err := os.WriteFile(script, []byte(pyUnix), 0o644); err != nil {
		t.Fatal(err)
	}
	call := func(calls ...[]any) []json.RawMessage { return pyCall(t, py, script, p.socket, calls...) }

	// getAllProcessInfo matches circlectl status.
	var infos []procInfo
	if err := json.Unmarshal(call([]any{"supervisor.getAllProcessInfo"})[0], &infos); err != nil {
		t.Fatal(err)
	}
	byName := map[string]procInfo{}
	for _, i := range infos {
		byName[i.Group+":"+i.Name] = i
	}
	want := map[string]int{} // group:name -> pid
	for _, g := range []string{"web", "printer", "chatty", "hup"} {
		for _, pr := range p.watcher(g).Processes {
			name := g
			if g == "printer" {
				name = "printer_" + strconv.Itoa(pr.WID)
			}
			want[g+":"+name] = pr.PID
		}
	}
	want["cron:cron"] = 0
	if len(byName) != len(want) {
		t.Errorf("getAllProcessInfo: %+v, want %v", infos, want)
	}
	for k, pid := range want {
		i, ok := byName[k]
		switch {
		case !ok:
			t.Errorf("getAllProcessInfo has no %s: %+v", k, infos)
		case k == "cron:cron" && (i.Statename != "STOPPED" || i.PID != 0 || i.Description != "Not started"):
			t.Errorf("cron: %+v", i)
		case k != "cron:cron" && (i.Statename != "RUNNING" || i.PID != pid || !strings.HasPrefix(i.Description, "pid "+strconv.Itoa(pid)+", uptime ")):
			t.Errorf("%s: %+v, want RUNNING pid %d", k, i, pid)
		}
	}
	if got, w := byName["printer:printer_2"].StdoutLogfile, filepath.Join(dir, "printer.2.log"); got != w {
		t.Errorf("printer_2 stdout_logfile %q, want %q", got, w)
	}

	// stopProcessGroup stops both printers; circlectl sees it.
	old := p.livePIDs("printer")
	var res []groupResult
	if err := json.Unmarshal(call([]any{"supervisor.stopProcessGroup", "printer"})[0], &res); err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Name != "printer_1" || res[1].Name != "printer_2" || res[0].Status != 80 || res[1].Status != 80 {
		t.Errorf("stopProcessGroup: %+v", res)
	}
	if w := p.watcher("printer"); w.State != "stopped" || len(p.livePIDs("printer")) != 0 {
		t.Errorf("after stopProcessGroup (wait): %+v", w)
	}
	for _, pid := range old {
		if pid1Alive(pid) {
			t.Errorf("printer pid %d still alive after stopProcessGroup", pid)
		}
	}
	r := call([]any{"supervisor.getProcessInfo", "printer:printer_1"}, []any{"supervisor.stopProcessGroup", "printer"})
	var info procInfo
	json.Unmarshal(r[0], &info)
	if info.Statename != "STOPPED" || info.PID != 0 {
		t.Errorf("getProcessInfo after stop: %s", r[0])
	}
	if string(r[1]) != "[]" {
		t.Errorf("stopProcessGroup of a stopped group: %s, want []", r[1])
	}

	// startProcessGroup starts them again, with new pids.
	res = nil
	if err := json.Unmarshal(call([]any{"supervisor.startProcessGroup", "printer"})[0], &res); err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Status != 80 || res[1].Status != 80 {
		t.Errorf("startProcessGroup: %+v", res)
	}
	w := p.waitState("printer", "active")
	if now := p.livePIDs("printer"); len(now) != 2 || slices.Contains(now, old[0]) || slices.Contains(now, old[1]) {
		t.Errorf("after startProcessGroup: pids %v (before %v): %+v", now, old, w)
	}

	// Faults.
	r = call([]any{"supervisor.startProcess", "web"}, []any{"supervisor.getProcessInfo", "nope"},
		[]any{"supervisor.startProcess", "printer:printer_1"}, []any{"supervisor.signalProcess", "web", "NOPE"})
	for i, want := range []string{`{"fault": [60, "ALREADY_STARTED: web"]}`, `{"fault": [10, "BAD_NAME: nope"]}`,
		`{"fault": [60, "ALREADY_STARTED: printer:printer_1"]}`, `{"fault": [11, "BAD_SIGNAL: NOPE"]}`} {
		if string(r[i]) != want {
			t.Errorf("fault %d: %s, want %s", i, r[i], want)
		}
	}
	// A printer's log file, by offset, and no log for a watcher on circled's stdout.
	r = call([]any{"supervisor.readProcessStdoutLog", "printer:printer_2", 0, 0},
		[]any{"supervisor.tailProcessStdoutLog", "printer:printer_1", 0, 1000},
		[]any{"supervisor.readProcessStdoutLog", "web", -100, 0},
		[]any{"supervisor.getState"})
	var logText string
	json.Unmarshal(r[0], &logText)
	if !strings.Contains(logText, "printer 2 says hello\n") || strings.Contains(logText, "printer 1") || strings.Contains(logText, "stderr") {
		t.Errorf("readProcessStdoutLog printer_2: %q", logText)
	}
	var tail []any
	json.Unmarshal(r[1], &tail)
	if len(tail) != 3 || !strings.Contains(fmt.Sprint(tail[0]), "printer 1 says hello") || tail[2] != false {
		t.Errorf("tailProcessStdoutLog printer_1: %s", r[1])
	}
	if !strings.HasPrefix(string(r[2]), `{"fault": [20, "NO_FILE: web's stdout does not go to a file"]}`) {
		t.Errorf("readProcessStdoutLog web: %s, want NO_FILE", r[2])
	}
	if string(r[3]) != `{"statecode": 1, "statename": "RUNNING"}` {
		t.Errorf("getState: %s", r[3])
	}
	// ctl's API still answers on the same socket.
	if out := p.mustCtl("list"); !strings.Contains(out, "printer") {
		t.Errorf("circlectl list: %q", out)
	}
	p.quit()
}

// supervisorctlBin finds Debian's supervisorctl, installing it with
// packaging/test-deps-supervisor.sh when it is missing and this machine
// can; otherwise the test skips and says why.
func supervisorctlBin(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("supervisorctl"); err == nil {
		return p
	}
	installDeps(t, "test-deps-supervisor.sh", "supervisorctl")
	p, err := exec.LookPath("supervisorctl")
	if err != nil {
		t.Fatal("supervisorctl still missing after packaging/test-deps-supervisor.sh")
	}
	return p
}

// installDeps runs packaging/SCRIPT; its exit code 2 means "cannot
// install here" and skips the test with its reason.
func installDeps(t *testing.T, script, what string) {
	t.Helper()
	path, err := filepath.Abs(filepath.Join("..", "..", "packaging", script))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("bash", path).CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 2 {
			t.Skipf("SKIP: %s missing and not installable: %s", what, strings.TrimSpace(string(out)))
		}
		t.Fatalf("%s: %v\n%s", path, err, out)
	}
	if len(out) > 0 {
		t.Logf("%s", out)
	}
}

type sctl struct {
	t    *testing.T
	bin  string
	args []string
}

func (s sctl) run(args ...string) (string, int) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, s.bin, append(slices.Clone(s.args), args...)...).CombinedOutput()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			s.t.Fatalf("supervisorctl %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return string(out), code
}

// expect runs supervisorctl, checks its exit code and that every want
// appears in its output, and returns the output.
func (s sctl) expect(code int, args []string, want ...string) string {
	s.t.Helper()
	out, c := s.run(args...)
	if c != code {
		s.t.Errorf("supervisorctl %s: exit %d, want %d\n%s", strings.Join(args, " "), c, code, out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			s.t.Errorf("supervisorctl %s: no %q in\n%s", strings.Join(args, " "), w, out)
		}
	}
	if strings.Contains(out, "Traceback") || strings.Contains(out, "error: <class") {
		s.t.Errorf("supervisorctl %s crashed:\n%s", strings.Join(args, " "), out)
	}
	return out
}

func TestRPC2Supervisorctl(t *testing.T) {
	bin := supervisorctlBin(t)
	p, dir := startRPC2Circled(t)
	conf := filepath.Join(t.TempDir(), "supervisord.conf")
	if err := os.WriteFile(conf, []byte("[supervisorctl]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := sctl{t: t, bin: bin, args: []string{"-c", conf, "-s", "unix://" + p.socket}}

	web := p.livePIDs("web")
	pr := p.livePIDs("printer")
	// status: exit 3 (LSB "not running") because cron is stopped.
	s.expect(3, []string{"status"},
		"cron                             STOPPED   Not started",
		fmt.Sprintf("web                              RUNNING   pid %d, uptime ", web[0]),
		fmt.Sprintf("printer:printer_1                RUNNING   pid %d, uptime ", pr[0]),
		fmt.Sprintf("printer:printer_2                RUNNING   pid %d, uptime ", pr[1]))
	s.expect(0, []string{"status", "web"}, "web ")
	s.expect(4, []string{"status", "nope"}, "nope: ERROR (no such process)")
	s.expect(0, []string{"version"}, "")
	if out, _ := s.run("version"); strings.TrimSpace(out) == "" {
		t.Error("supervisorctl version printed nothing")
	}
	s.expect(0, []string{"pid"}, strconv.Itoa(p.cmd.Process.Pid))
	s.expect(0, []string{"pid", "web"}, strconv.Itoa(web[0]))
	s.expect(0, []string{"pid", "all"}, strconv.Itoa(pr[0]), strconv.Itoa(pr[1]), strconv.Itoa(web[0]))
	s.expect(0, []string{"avail"}, "cron                             in use    manual", "web                              in use    auto",
		"printer:printer_2                in use    auto")

	// stop / start / restart, checked with circlectl.
	s.expect(0, []string{"stop", "web"}, "web: stopped")
	if w := p.watcher("web"); w.State != "stopped" || len(p.livePIDs("web")) != 0 {
		t.Errorf("circlectl after supervisorctl stop web: %+v", w)
	}
	s.expect(0, []string{"stop", "web"}, "web: ERROR (not running)")
	s.expect(0, []string{"start", "web"}, "web: started")
	p.waitState("web", "active")
	web2 := p.livePIDs("web")
	if len(web2) != 1 || web2[0] == web[0] {
		t.Errorf("web pids after start: %v (before %v)", web2, web)
	}
	s.expect(0, []string{"start", "web"}, "web: ERROR (already started)")
	s.expect(0, []string{"restart", "web"}, "web: stopped", "web: started")
	p.waitState("web", "active")
	if web3 := p.livePIDs("web"); len(web3) != 1 || web3[0] == web2[0] {
		t.Errorf("web pids after restart: %v (before %v)", web3, web2)
	}
	s.expect(0, []string{"restart", "printer:*"}, "printer:printer_1: stopped", "printer:printer_2: stopped",
		"printer:printer_1: started", "printer:printer_2: started")
	p.waitState("printer", "active")
	if now := p.livePIDs("printer"); len(now) != 2 || slices.Contains(now, pr[0]) || slices.Contains(now, pr[1]) {
		t.Errorf("printer pids after restart printer:*: %v (before %v)", now, pr)
	}
	s.expect(0, []string{"start", "cron"}, "cron: started")
	p.waitState("cron", "active")
	s.expect(0, []string{"stop", "cron"}, "cron: stopped")
	s.expect(1, []string{"start", "nope"}, "nope: ERROR (no such process)")
	s.expect(0, []string{"start", "printer:printer_2"}, "printer:printer_2: ERROR (already started)")

	// signal: the trap in hup records it.
	hupOut := filepath.Join(dir, "hup.out")
	s.expect(0, []string{"signal", "HUP", "hup"}, "hup: signalled")
	s.expect(0, []string{"signal", "USR1", "hup"}, "hup: signalled")
	testhelper.Eventually(t, waitTimeout, "hup's trap to record HUP and USR1", func() bool {
		b, _ := os.ReadFile(hupOut)
		return strings.Contains(string(b), "got HUP") && strings.Contains(string(b), "got USR1")
	})
	s.expect(1, []string{"signal", "BOGUS", "hup"}, "hup: ERROR (bad signal name)")
	if w := p.watcher("hup"); w.State != "active" {
		t.Errorf("hup after the signals: %+v", w)
	}

	// tail: a printer's file; web logs to circled's stdout, which has
	// no per-process log file.
	s.expect(0, []string{"tail", "printer:printer_1"}, "printer 1 says hello")
	s.expect(0, []string{"tail", "-8", "printer:printer_2"}, "s hello\n")
	s.expect(1, []string{"tail", "web"}, "web: ERROR (no log file)")
	s.expect(1, []string{"tail", "printer:printer_1", "stderr"}, "printer:printer_1: ERROR (no log file)")

	// tail -f chatty: lines from circled's ring, without their prefix.
	t.Run("tail -f", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "-c", conf, "-s", "unix://"+p.socket, "tail", "-f", "chatty")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Wait()
		defer cmd.Process.Kill()
		sc := bufio.NewScanner(stdout)
		first := -1
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, "|") {
				t.Fatalf("tail -f kept the ring's prefix: %q", line)
			}
			var n int
			if _, err := fmt.Sscanf(strings.TrimPrefix(line, "==> Press Ctrl-C to exit <=="), "chatty line %d", &n); err != nil {
				continue
			}
			if first < 0 {
				first = n
			} else if n >= first+3 {
				return // followed new lines as they came
			}
		}
		t.Fatalf("tail -f ended (err %v) before following 3 new lines (first %d)", sc.Err(), first)
	})
	p.quit()
}

// rpc2Playbook drives community.general.supervisorctl; state comes from
// -e.
const rpc2Playbook = `
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: "{{ prog }} is {{ want }}"
      community.general.supervisorctl:
        name: "{{ prog }}"
        state: "{{ want }}"
        server_url: "{{ url }}"
        config: "{{ conf }}"
`

// ansiblePlaybook finds ansible-playbook with community.general,
// installing Debian's ansible with packaging/test-deps-ansible.sh when
// missing; otherwise the test skips and says why.
func ansiblePlaybook(t *testing.T) string {
	t.Helper()
	installDeps(t, "test-deps-ansible.sh", "ansible (community.general.supervisorctl)")
	p, err := exec.LookPath("ansible-playbook")
	if err != nil {
		t.Fatal("ansible-playbook missing after packaging/test-deps-ansible.sh")
	}
	return p
}

func TestRPC2AnsibleSupervisorctl(t *testing.T) {
	supervisorctlBin(t) // the module runs supervisorctl
	bin := ansiblePlaybook(t)
	p, _ := startRPC2Circled(t)
	tmp := t.TempDir()
	play := filepath.Join(tmp, "play.yml")
	conf := filepath.Join(tmp, "supervisord.conf")
	for f, s := range map[string]string{play: rpc2Playbook, conf: "[supervisorctl]\n"} {
		if err := os.WriteFile(f, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run := func(want string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "-i", "localhost,", play,
			"-e", "prog=web", "-e", "want="+want, "-e", "url=unix://"+p.socket, "-e", "conf="+conf,
			"-e", "ansible_python_interpreter=/usr/bin/python3")
		cmd.Env = append(os.Environ(), "ANSIBLE_NOCOLOR=1", "ANSIBLE_HOME="+filepath.Join(tmp, "home"),
			"ANSIBLE_LOCAL_TEMP="+filepath.Join(tmp, "ltmp"), "ANSIBLE_REMOTE_TEMP="+filepath.Join(tmp, "rtmp"),
			"ANSIBLE_RETRY_FILES_ENABLED=0", "ANSIBLE_DEPRECATION_WARNINGS=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ansible-playbook (state %s): %v\n%s", want, err, out)
		}
		if !strings.Contains(string(out), "changed=1") {
			t.Errorf("ansible-playbook (state %s) changed nothing:\n%s", want, out)
		}
		return string(out)
	}
	before := p.livePIDs("web")
	run("stopped")
	if w := p.watcher("web"); w.State != "stopped" || len(p.livePIDs("web")) != 0 {
		t.Fatalf("after state=stopped: %+v", w)
	}
	run("started")
	p.waitState("web", "active")
	started := p.livePIDs("web")
	if len(started) != 1 || started[0] == before[0] {
		t.Fatalf("after state=started: pids %v (before %v)", started, before)
	}
	run("restarted")
	p.waitState("web", "active")
	if now := p.livePIDs("web"); len(now) != 1 || now[0] == started[0] {
		t.Fatalf("after state=restarted: pids %v, want a new one (before %v)", now, started)
	}
	p.quit()
}

// circled's own logfile (maintail, maintail -f), clear of a process's
// log file, and shutdown.
func TestRPC2SupervisorctlLogfile(t *testing.T) {
	bin := supervisorctlBin(t)
	dir := t.TempDir()
	p := startCircled(t, dir, strings.ReplaceAll(`
[circled]
logfile = {dir}/circled.log

[watcher:printer]
cmd = sh -c 'echo "printer says hello"; exec sleep 1002'
stdout_stream.class = FileStream
stdout_stream.filename = {dir}/printer.log
`, "{dir}", dir))
	p.up()
	p.waitState("printer", "active")
	conf := filepath.Join(t.TempDir(), "supervisord.conf")
	if err := os.WriteFile(conf, []byte("[supervisorctl]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := sctl{t: t, bin: bin, args: []string{"-c", conf, "-s", "unix://" + p.socket}}

	s.expect(0, []string{"maintail"}, "circled started")
	testhelper.Eventually(t, waitTimeout, "printer's line in its file", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "printer.log"))
		return strings.Contains(string(b), "printer says hello")
	})
	s.expect(0, []string{"tail", "printer"}, "printer says hello")
	s.expect(0, []string{"clear", "printer"}, "printer: cleared")
	if fi, err := os.Stat(filepath.Join(dir, "printer.log")); err != nil || fi.Size() != 0 {
		t.Errorf("printer.log after clear: %v %v", fi, err)
	}
	if out := s.expect(0, []string{"tail", "printer"}); strings.Contains(out, "hello") {
		t.Errorf("tail after clear: %q", out)
	}

	// maintail -f: the backlog, then a line circled logs afterwards
	// (circlectl reopen's).
	t.Run("maintail -f", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "-c", conf, "-s", "unix://"+p.socket, "maintail", "-f")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Wait()
		defer cmd.Process.Kill()
		sc := bufio.NewScanner(stdout)
		reopened := false
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, "circled started") && !reopened {
				reopened = true
				p.mustCtl("reopen")
			}
			if reopened && strings.Contains(line, "log files reopened") {
				return
			}
		}
		t.Fatalf("maintail -f ended (err %v) without circlectl reopen's line", sc.Err())
	})

	s.expect(0, []string{"shutdown"}, "Shut down")
	if code := p.exit(); code != 0 {
		t.Fatalf("circled exited %d after supervisorctl shutdown:\n%s", code, p.out)
	}
}

// reread (which applies, as circlectl reloadconfig), update, and reload
// (supervisor.restart: a fresh config, every watcher restarted).
func TestRPC2SupervisorctlRereadReload(t *testing.T) {
	bin := supervisorctlBin(t)
	dir := t.TempDir()
	const base = "[circled]\nwatch_config = false\n\n[watcher:web]\ncmd = sleep 1001\n"
	p := startCircled(t, dir, base)
	p.up()
	p.waitState("web", "active")
	conf := filepath.Join(t.TempDir(), "supervisord.conf")
	if err := os.WriteFile(conf, []byte("[supervisorctl]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := sctl{t: t, bin: bin, args: []string{"-c", conf, "-s", "unix://" + p.socket}}

	if err := os.WriteFile(filepath.Join(dir, "circled.ini"), []byte(base+"\n[watcher:extra]\ncmd = sleep 1005\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.expect(0, []string{"reread"}, "extra: available")
	p.waitState("extra", "active") // reread applied it
	// update re-reads: nothing left to do.
	if out := s.expect(0, []string{"update"}); strings.Contains(out, "ERROR") {
		t.Errorf("update after reread: %q", out)
	}
	s.expect(0, []string{"avail"}, "extra                            in use    auto")
	s.expect(0, []string{"status", "extra"}, "extra                            RUNNING")
	s.expect(0, []string{"reread"}, "No config updates to processes")
	// update alone reads, applies and reports.
	if err := os.WriteFile(filepath.Join(dir, "circled.ini"), []byte(base+"\n[watcher:extra]\ncmd = sleep 1005\n\n[watcher:more]\ncmd = sleep 1006\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.expect(0, []string{"update"}, "more: added process group")
	p.waitState("more", "active")

	// remove of a group still in the config and running.
	s.expect(1, []string{"remove", "more"}, "ERROR: process/group still running: more")

	web, extra := p.livePIDs("web"), p.livePIDs("extra")
	s.expect(0, []string{"reload"}, "Restarted supervisord")
	testhelper.Eventually(t, waitTimeout, "new pids for web and extra after reload", func() bool {
		w, e := p.livePIDs("web"), p.livePIDs("extra")
		return len(w) == 1 && len(e) == 1 && w[0] != web[0] && e[0] != extra[0]
	})
	p.waitState("more", "active")
	p.quit()
}
